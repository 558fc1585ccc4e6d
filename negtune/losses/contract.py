"""What a loss receives and returns, and how it declares what it needs.

Why a module of its own: these are the types a researcher's own loss file imports
(``from negtune.losses import LossOutput, Term, declare``); the full statement of the contract
they implement (the batch's keys, terms normalised by their units over the global batch, the
shorthands) is ``docs/losses.md``, "The loss contract". Torch-free at import.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional

# What a loss may declare it needs: partner rows, every option's tokens, the base model's logits.
NEEDS = frozenset({"paired", "all_options", "reference_model"})


@dataclass
class Term:
    """One normalised part of a loss: ``weight * total / count``.

    The trainer divides ``total`` by the count of ``unit`` over the whole global batch, not by
    this micro-batch's ``count`` (``docs/losses.md``, "The loss contract")."""

    total: Any  # scalar tensor: the sum over this micro-batch's units (differentiable)
    count: Any  # how many units this micro-batch holds (int, float or 0-d tensor)
    unit: Any  # str (a batch key) or Callable[[dict], number]: counts the units of any batch
    weight: float = 1.0  # 0: logged, not trained

    def mean(self) -> Any:
        """``total / count`` (0 when the micro-batch has none of these units)."""
        count = float(self.count)
        return self.total / count if count > 0 else self.total * 0.0


@dataclass
class LossOutput:
    """What a loss returns: ``terms`` or one of the shorthands (``docs/losses.md``).

    With ``terms``, ``loss`` is derived: ``sum(weight * total / count)``, the value for this
    micro-batch. ``LossSpec`` turns the shorthands into ``terms`` so the trainer sees one form.
    """

    loss: Any = None
    components: dict[str, float] = field(default_factory=dict)
    n_tokens: Optional[int] = None
    terms: Optional[dict[str, Term]] = None

    def __post_init__(self) -> None:
        if self.terms is None:
            if self.loss is None:
                raise ValueError("LossOutput: give terms={...} (or a loss tensor)")
            return
        if self.loss is not None or self.n_tokens is not None:
            raise ValueError("LossOutput: give terms, or loss (with optional n_tokens), not both")
        if not self.terms:
            raise ValueError("LossOutput: terms is empty")
        trained = [t for t in self.terms.values() if t.weight != 0]
        parts = [t.weight * t.mean() for t in trained] or [0.0 * next(iter(self.terms.values())).total]
        self.loss = sum(parts[1:], parts[0])


@dataclass
class LossContext:
    """What the trainer gives a loss besides model and batch."""

    # (input_ids, attention_mask) -> the frozen base model's logits; None unless "reference_model" is declared
    reference_logits: Optional[Callable[[Any, Any], Any]] = None
    step: int = 0  # completed optimizer steps


def set_declarations(fn: Any, needs: Iterable[str], ranges: Optional[dict] = None) -> None:
    needs = frozenset(needs)
    unknown = needs - NEEDS
    if unknown:
        raise ValueError(f"unknown loss needs {sorted(unknown)}; known: {sorted(NEEDS)}")
    fn.needs = needs
    fn.arg_ranges = dict(ranges or {})


def declare(needs: Iterable[str] = (), ranges: Optional[dict[str, dict[str, float]]] = None):
    """Decorator for user losses: ``@declare(needs=("paired",), ranges={"beta": {"ge": 0}})``.

    ``ranges`` maps an argument to bounds among ``gt``, ``ge``, ``lt``, ``le``.
    """

    def wrap(fn):
        set_declarations(fn, needs, ranges)
        return fn

    return wrap
