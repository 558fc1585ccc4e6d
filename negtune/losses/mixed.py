"""``mixed``: cross-entropy on the negated instance and its original partner together.

Training on original and negated prompts of the same items is the simplest answer to the
zero-sum trade-off Jang et al. report for negated-only fine-tuning. With rows r (negated)
and their partners r' (original, same item), each partner weighted by w_r' = 1/k when k
negated rows of its item share it (``negated_target: all_wrong``; 1 otherwise):

    L_mixed = - ( sum_r sum_{t in y_r} log p(y_t | x_r, y_<t) + sum_r' w_r' sum_{t in y_r'} log p(y_t | x_r', y_<t) )
              / (N_neg + sum_r' w_r' N_r')

i.e. the token-mean cross-entropy over the union of both answers' tokens, with each
original instance counted once per item: exactly what ``ce`` gives on a data set holding
both variants (over an epoch, every negated row of an item is seen once, so its partner's
weights add up to 1). One trained term, ``ce``, of unit ``union_tokens``; ``ce_negated`` and
``ce_original`` are logged only (weight 0). needs: {"paired"}.
"""
from __future__ import annotations

from typing import Any

from negtune.losses import LossContext, LossOutput, Term, register_loss
from negtune.losses._common import need
from negtune.losses.ce import ce_terms
from negtune.losses.units import partner_tokens, union_tokens


@register_loss("mixed", needs=("paired",))
def mixed(model: Any, batch: dict, ctx: LossContext) -> LossOutput:
    """Token-mean CE over negated rows and their weighted original partners (see module docstring)."""
    need(batch, ("pair_input_ids", "pair_attention_mask", "pair_labels", "pair_weight"), "mixed", "paired")
    s_neg, n_neg = ce_terms(model, batch["input_ids"], batch["attention_mask"], batch["labels"])
    s_org, n_org = ce_terms(model, batch["pair_input_ids"], batch["pair_attention_mask"], batch["pair_labels"],
                            row_weight=batch["pair_weight"])
    return LossOutput(terms={
        "ce": Term(s_neg + s_org, n_neg + n_org, union_tokens),
        "ce_negated": Term(s_neg, n_neg, "n_target_tokens", weight=0.0),
        "ce_original": Term(s_org, n_org, partner_tokens, weight=0.0),
    })
