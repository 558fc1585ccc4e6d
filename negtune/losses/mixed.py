"""``mixed``: cross-entropy on the negated instance and its original partner together.

Training on original and negated prompts of the same items is the simplest answer to the
zero-sum trade-off Jang et al. report for negated-only fine-tuning. With rows r (negated)
and partners r' (original, same item):

    L_mixed = - ( sum_r sum_{t in y_r} log p(y_t | x_r, y_<t) + sum_r' sum_{t in y_r'} log p(y_t | x_r', y_<t) )
              / (N_neg + N_orig)

i.e. the token-mean cross-entropy over the union of both answers' tokens, exactly what
``ce`` would give on a data set holding both variants, within the batch.
``n_tokens`` is None: the trainer's token weighting across micro-batches counts the rows'
``n_target_tokens`` (negated answers only), which this loss's token count is not, so
micro-batches are weighted equally instead. needs: {"paired"}.
"""
from __future__ import annotations

from typing import Any

from negtune.losses import LossContext, LossOutput, register_loss
from negtune.losses._common import need
from negtune.losses.ce import ce_terms


@register_loss("mixed", needs=("paired",))
def mixed(model: Any, batch: dict, ctx: LossContext) -> LossOutput:
    """Token-mean CE over negated rows and their original partners (see module docstring)."""
    need(batch, ("pair_input_ids", "pair_attention_mask", "pair_labels"), "mixed", "paired")
    s_neg, n_neg = ce_terms(model, batch["input_ids"], batch["attention_mask"], batch["labels"])
    s_org, n_org = ce_terms(model, batch["pair_input_ids"], batch["pair_attention_mask"], batch["pair_labels"])
    n = n_neg + n_org
    loss = (s_neg + s_org) / n.clamp(min=1)
    comps = {
        "ce": float(loss.detach()),
        "ce_negated": float((s_neg / n_neg.clamp(min=1)).detach()),
        "ce_original": float((s_org / n_org.clamp(min=1)).detach()),
    }
    return LossOutput(loss, comps)
