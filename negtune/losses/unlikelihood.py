"""``unlikelihood``: likelihood of the negated target plus unlikelihood of the original answer.

Under a negated prompt ("give an incorrect answer"), the original correct answer is exactly
what the model must not say. Token-level unlikelihood (Welleck et al. 2020; Hosseini et al.
2021, "Understanding by Understanding Not") pushes its probability down directly:

    L = L_ce(negated target)  +  alpha * (1 / M) * sum_{o not in gold} sum_{t in o} -log(1 - p(o_t | x_neg, o_<t))

where x_neg is the negated prompt, the inner sum runs over the tokens of every option *not*
in the negated instance's gold set (= the original correct answer(s)), teacher-forced on the
option's own prefix, and M is the number of such tokens. Two terms, each a mean over its
own unit across the global batch (``docs/losses.md``, "The loss contract"): ``ce`` over target
tokens (``n_target_tokens``) and ``ul`` (weight alpha) over non-gold option tokens
(``negtune.losses.units.nongold_option_tokens``). ``1 - p`` is computed
as ``-expm1(log p)`` with ``p`` clamped to at most ``1 - 1e-6`` so the log stays finite.
On rows with no non-gold option the term is 0.

args: ``alpha`` (>= 0, default 0.5). needs: {"all_options"}.
"""
from __future__ import annotations

from typing import Any

from negtune.losses import LossContext, LossOutput, Term, register_loss
from negtune.losses._common import need, sequence_logprobs
from negtune.losses.ce import ce_terms
from negtune.losses.units import nongold_option_tokens

P_MAX = 1.0 - 1e-6


def unlikelihood_terms(model: Any, batch: dict) -> tuple[Any, Any]:
    """(sum over non-gold option tokens of -log(1-p), number of such tokens)."""
    import math

    import torch

    sel = ~batch["opt_is_gold"]
    if not bool(sel.any()):
        zero = batch["opt_input_ids"].new_zeros((), dtype=torch.float32)
        return zero, zero
    ids = batch["opt_input_ids"][sel]
    mask_in = batch["opt_attention_mask"][sel]
    labels = batch["opt_labels"][sel]
    logp, mask = sequence_logprobs(model, ids, mask_in, labels)
    logp = logp.clamp(max=math.log(P_MAX))
    ul = -torch.log(-torch.expm1(logp))  # -log(1 - p)
    return (ul * mask).sum(), mask.sum()


@register_loss("unlikelihood", needs=("all_options",), ranges={"alpha": {"ge": 0}})
def unlikelihood(model: Any, batch: dict, ctx: LossContext, alpha: float = 0.5) -> LossOutput:
    """CE on the negated target + alpha * mean token unlikelihood of non-gold options."""
    need(batch, ("opt_input_ids", "opt_attention_mask", "opt_labels", "opt_is_gold"), "unlikelihood", "all_options")
    s_ce, n_ce = ce_terms(model, batch["input_ids"], batch["attention_mask"], batch["labels"])
    s_ul, n_ul = unlikelihood_terms(model, batch)
    return LossOutput(terms={"ce": Term(s_ce, n_ce, "n_target_tokens"),
                             "ul": Term(s_ul, n_ul, nongold_option_tokens, weight=alpha)})
