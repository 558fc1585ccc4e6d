"""``ce``: mean cross-entropy over the target answer's tokens (the paper's FT; the default).

    L_ce = - (1 / N) * sum_{rows r} sum_{target tokens t of r} log p_theta(y_t | x_r, y_<t)

where N is the number of target tokens in the batch (prompt and padding are not counted).
``LossOutput.n_tokens = N`` so that a trainer can re-weight micro-batches to the mean over
the global batch's tokens (see ``negtune.losses``).
"""
from __future__ import annotations

from typing import Any

from negtune.losses import LossContext, LossOutput, register_loss
from negtune.losses._common import sequence_logprobs


def ce_terms(model: Any, input_ids: Any, attention_mask: Any, labels: Any) -> tuple[Any, Any]:
    """(sum of token NLL, number of target tokens) for one set of sequences."""
    logp, mask = sequence_logprobs(model, input_ids, attention_mask, labels)
    return -(logp * mask).sum(), mask.sum()


@register_loss("ce")
def ce(model: Any, batch: dict, ctx: LossContext) -> LossOutput:
    """Mean token cross-entropy on the target answer (see module docstring)."""
    total, n = ce_terms(model, batch["input_ids"], batch["attention_mask"], batch["labels"])
    loss = total / n.clamp(min=1)
    return LossOutput(loss, {"ce": float(loss.detach())}, n_tokens=int(n.item()))
