"""A resolved loss, called: its output brought to one form and checked against the batch.

Why apart from the registry: the trainer only ever calls a ``LossSpec``; turning the
shorthands (a bare tensor, ``loss`` with ``n_tokens``) into ``terms`` here, and checking that
every term's count is its unit's count in the batch, lets ``negtune.training.step`` see one
form and normalise by global counts.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from negtune.errors import UserError
from negtune.losses.contract import LossContext, LossOutput, Term
from negtune.losses.units import count_units, rows, unit_name  # torch-free at import


@dataclass
class LossSpec:
    """A resolved, validated loss: call it as ``spec(model, batch, ctx)``."""

    name: str
    fn: Callable[..., Any]
    needs: frozenset
    args: dict[str, Any]
    imported: bool = True  # False: a user loss located but not imported (dry runs; see locate_user_loss)

    def __call__(self, model: Any, batch: dict, ctx: LossContext) -> LossOutput:
        """Call the loss; return a ``LossOutput`` with ``terms`` whose counts match the batch."""
        out = self.fn(model, batch, ctx, **self.args)
        if not isinstance(out, LossOutput):
            if hasattr(out, "backward") and getattr(out, "ndim", 1) == 0:  # a bare scalar tensor
                out = LossOutput(out, {})
            else:
                raise UserError(
                    f"loss {self.name}: returned {type(out).__name__}; expected negtune.losses.LossOutput "
                    "(or a scalar tensor)"
                )
        if out.terms is None:
            if out.n_tokens is not None:
                expected = int(batch["n_target_tokens"])
                if int(out.n_tokens) != expected:
                    raise UserError(
                        f"loss {self.name}: returned n_tokens={out.n_tokens} but the batch has {expected} "
                        "target tokens; n_tokens must be batch['n_target_tokens'] (loss = mean over the "
                        "target tokens) or None"
                    )
                term = Term(out.loss * expected, expected, "n_target_tokens")
            else:
                n = rows(batch)
                term = Term(out.loss * n, n, rows)
            converted = LossOutput(terms={"loss": term}, components=dict(out.components))
            converted.loss = out.loss  # the value exactly as the loss computed it
            return converted
        for key, term in out.terms.items():
            try:
                expected = count_units(batch, term.unit)
            except Exception as err:
                raise UserError(f"loss {self.name}: term {key!r}: cannot count its unit "
                                f"{unit_name(term.unit)!r} in the batch: {err}") from None
            got = float(term.count)
            if abs(got - expected) > 1e-6 * max(1.0, abs(expected)):
                raise UserError(
                    f"loss {self.name}: term {key!r} reports count {got:g} but its unit "
                    f"{unit_name(term.unit)!r} counts {expected:g} in the batch; the trainer normalises by "
                    "the unit's count, so count must be unit(batch)"
                )
        return out
