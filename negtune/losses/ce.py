"""``ce``: mean cross-entropy over the target answer's tokens (the paper's FT; the default).

    L_ce = - (1 / N) * sum_{rows r} sum_{target tokens t of r} log p_theta(y_t | x_r, y_<t)

where N is the number of target tokens (prompt and padding are not counted). One term,
``ce``, of unit ``n_target_tokens``: across micro-batches and processes N is the global
batch's target-token count (see ``docs/losses.md``, "The loss contract").
"""
from __future__ import annotations

from typing import Any

from negtune.losses import LossContext, LossOutput, Term, register_loss
from negtune.losses._common import sequence_logprobs


def ce_terms(model: Any, input_ids: Any, attention_mask: Any, labels: Any, row_weight: Any = None) -> tuple[Any, Any]:
    """(sum of token NLL, number of target tokens) for one set of sequences.

    ``row_weight`` [B] (optional) weighs each row's tokens, in the sum and in the count
    (partners shared by several negated rows, see ``negtune.losses.units.partner_tokens``).
    """
    logp, mask = sequence_logprobs(model, input_ids, attention_mask, labels)
    if row_weight is not None:
        mask = mask * row_weight.to(mask.dtype)[:, None]
    return -(logp * mask).sum(), mask.sum()


@register_loss("ce")
def ce(model: Any, batch: dict, ctx: LossContext) -> LossOutput:
    """Mean token cross-entropy on the target answer (see module docstring)."""
    total, n = ce_terms(model, batch["input_ids"], batch["attention_mask"], batch["labels"])
    return LossOutput(terms={"ce": Term(total, n, "n_target_tokens")})
