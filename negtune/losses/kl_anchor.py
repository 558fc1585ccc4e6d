"""``kl_anchor``: CE on the negated rows plus a KL anchor to the base model on original prompts.

Jang et al. find negated-prompt fine-tuning trades original accuracy for negated accuracy.
This loss keeps the model's predictions on the *original* prompt of the same item close to
the base model's while it learns the negated one:

    L = L_ce(negated rows)  +  beta * (1 / K) * sum_{r'} sum_{t in y_r'} KL( p_base(. | x_r', y_<t) || p_theta(. | x_r', y_<t) )

where r' runs over the original-variant partners, t over the positions predicting their
target answer tokens (the same positions ``ce`` trains on), KL is over the whole vocabulary,
``KL(P||Q) = sum_v P(v) (log P(v) - log Q(v))``, and K is the number of such positions. A
partner shared by k negated rows (``negated_target: all_wrong``) is weighted 1/k in the sum
and in K, so each original instance anchors once per item. Two terms, each a mean over its
own unit across the global batch (``docs/losses.md``, "The loss contract"): ``ce`` over target
tokens, ``kl`` (weight beta) over the weighted partner positions
(``negtune.losses.units.partner_tokens``).

The base distribution comes from ``ctx.reference_logits(input_ids, attention_mask)``, which
the trainer provides under ``torch.no_grad()``: with LoRA the same weights with the adapter
disabled, with full fine-tuning a frozen copy of the base model.

args: ``beta`` (>= 0, default 1.0). needs: {"paired", "reference_model"}.
"""
from __future__ import annotations

from typing import Any

from negtune.losses import LossContext, LossOutput, Term, register_loss
from negtune.losses._common import logits_of, need, shift
from negtune.losses.ce import ce_terms
from negtune.losses.units import partner_tokens


def kl_terms(logits: Any, ref_logits: Any, labels: Any, row_weight: Any = None) -> tuple[Any, Any]:
    """(sum over target positions of KL(ref || model), number of positions), rows weighted by ``row_weight``."""
    import torch

    logits, _, mask = shift(logits, labels)
    ref, _, _ = shift(ref_logits.detach().float(), labels)
    logq = torch.log_softmax(logits, dim=-1)
    logp = torch.log_softmax(ref, dim=-1)
    kl = (logp.exp() * (logp - logq)).sum(-1)
    mask = mask.to(kl.dtype)
    if row_weight is not None:
        mask = mask * row_weight.to(kl.dtype)[:, None]
    return (kl * mask).sum(), mask.sum()


@register_loss("kl_anchor", needs=("paired", "reference_model"), ranges={"beta": {"ge": 0}})
def kl_anchor(model: Any, batch: dict, ctx: LossContext, beta: float = 1.0) -> LossOutput:
    """CE on negated rows + beta * mean KL(base || model) on the original partners' answer positions."""
    need(batch, ("pair_input_ids", "pair_attention_mask", "pair_labels", "pair_weight"), "kl_anchor", "paired")
    if ctx.reference_logits is None:
        raise RuntimeError("loss kl_anchor: ctx.reference_logits is None; the trainer must provide the "
                           "reference model for losses declaring 'reference_model'")
    s_ce, n_ce = ce_terms(model, batch["input_ids"], batch["attention_mask"], batch["labels"])
    ids, mask = batch["pair_input_ids"], batch["pair_attention_mask"]
    ref = ctx.reference_logits(ids, mask)
    s_kl, n_kl = kl_terms(logits_of(model, ids, mask), ref, batch["pair_labels"], batch["pair_weight"])
    return LossOutput(terms={"ce": Term(s_ce, n_ce, "n_target_tokens"),
                             "kl": Term(s_kl, n_kl, partner_tokens, weight=beta)})
