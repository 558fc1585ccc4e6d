"""``rank_margin``: teach the ranking the evaluator measures (T-Few style).

The evaluator picks the option with the highest log-likelihood and counts it correct if it
is in the gold set. This loss scores every option o of a row by its length-normalised
log-likelihood under the row's prompt x,

    s_o = (1 / |o|) * sum_{t in o} log p(o_t | x, o_<t)        (sum instead of mean if length_norm: false)

and, with g the row's *target* option and W the options not in the gold set,

* ``mode: softmax`` (default): L_rank = -log( exp(s_g) / (exp(s_g) + sum_{w in W} exp(s_w)) )
  — cross-entropy over options with the target as the class. Other gold options (the
  4-option negated case: every wrong answer is gold) are left out of the softmax: they are
  neither pushed up nor down, since choosing them is also correct.
* ``mode: margin``: L_rank = (1 / |W|) * sum_{w in W} max(0, margin - (s_g - s_w))  (hinge).

averaged over rows with at least one non-gold option, plus ``ce_weight`` times the token-mean
CE of the target answer (keeps the answer's likelihood up while its rank improves; Liu et al.
2022 combine the two).

    L = mean_rows L_rank + ce_weight * L_ce

Two terms, each a mean over its own unit across the global batch (``docs/losses.md``,
"The loss contract"): ``rank`` over the rows with a non-gold option
(``negtune.losses.units.ranked_rows``) and ``ce`` (weight ``ce_weight``; logged only when 0)
over target tokens.

args: ``mode`` (softmax|margin), ``margin`` (> 0, default 1.0), ``ce_weight`` (>= 0, default
1.0), ``length_norm`` (default true). needs: {"all_options"}.
"""
from __future__ import annotations

from typing import Any, Literal

from negtune.losses import LossContext, LossOutput, Term, register_loss
from negtune.losses._common import need, sequence_logprobs
from negtune.losses.units import ranked_rows


def option_scores(model: Any, batch: dict, length_norm: bool = True) -> tuple[Any, Any, Any]:
    """(s_o [N], sum of token log-probs [N], token counts [N]) for every flattened option."""
    logp, mask = sequence_logprobs(model, batch["opt_input_ids"], batch["opt_attention_mask"], batch["opt_labels"])
    total = (logp * mask).sum(-1)
    n = mask.sum(-1)
    return (total / n.clamp(min=1) if length_norm else total), total, n


def rank_terms(scores: Any, batch: dict, mode: str, margin: float) -> tuple[Any, Any]:
    """(sum over rows of L_rank, number of rows with a non-gold option)."""
    import torch

    rows = batch["opt_row"]
    n_rows = int(rows.max().item()) + 1
    is_t = batch["opt_is_target"]
    is_neg = ~batch["opt_is_gold"]
    # s_g per row, broadcast back to options
    s_target = torch.zeros(n_rows, dtype=scores.dtype, device=scores.device).index_add(
        0, rows[is_t], scores[is_t])
    n_neg = torch.zeros(n_rows, dtype=scores.dtype, device=scores.device).index_add(
        0, rows, is_neg.to(scores.dtype))
    valid = n_neg > 0
    if mode == "margin":
        hinge = torch.relu(margin - (s_target[rows] - scores)) * is_neg.to(scores.dtype)
        per_row = torch.zeros_like(s_target).index_add(0, rows, hinge) / n_neg.clamp(min=1)
    else:
        keep = is_t | is_neg
        masked = scores.masked_fill(~keep, float("-inf"))
        # per-row logsumexp over kept options, via a max-shift for stability
        row_max = torch.full((n_rows,), float("-inf"), dtype=scores.dtype, device=scores.device)
        row_max = row_max.scatter_reduce(0, rows, masked, reduce="amax")
        row_max = row_max.detach().masked_fill(~torch.isfinite(row_max), 0.0)
        expd = torch.exp(masked - row_max[rows])
        lse = torch.log(torch.zeros_like(s_target).index_add(0, rows, expd)) + row_max
        per_row = lse - s_target
    per_row = per_row * valid.to(scores.dtype)
    return per_row.sum(), valid.sum().to(scores.dtype)


@register_loss("rank_margin", needs=("all_options",), ranges={"margin": {"gt": 0}, "ce_weight": {"ge": 0}})
def rank_margin(model: Any, batch: dict, ctx: LossContext, mode: Literal["softmax", "margin"] = "softmax",
                margin: float = 1.0, ce_weight: float = 1.0, length_norm: bool = True) -> LossOutput:
    """Option-ranking loss over length-normalised log-likelihoods (+ ce_weight * CE)."""
    need(batch, ("opt_input_ids", "opt_attention_mask", "opt_labels", "opt_row", "opt_is_target", "opt_is_gold"),
         "rank_margin", "all_options")
    scores, total, n_tok = option_scores(model, batch, length_norm)
    s_rank, n_rank = rank_terms(scores, batch, mode, margin)
    is_t = batch["opt_is_target"]
    # the target option's sequence is the row's own sequence: its CE comes from the same forward
    s_ce, n_ce = -total[is_t].sum(), n_tok[is_t].sum()
    return LossOutput(terms={"rank": Term(s_rank, n_rank, ranked_rows),
                             "ce": Term(s_ce, n_ce, "n_target_tokens", weight=ce_weight)},
                      components={"gold_top": _gold_top(scores.detach(), batch)})


def _gold_top(scores: Any, batch: dict) -> float:
    """Fraction of rows whose best-scored option is gold (what the evaluator would count)."""
    import torch

    rows = batch["opt_row"]
    n_rows = int(rows.max().item()) + 1
    best = torch.full((n_rows,), float("-inf"), dtype=scores.dtype, device=scores.device)
    best = best.scatter_reduce(0, rows, scores, reduce="amax")
    hit = ((scores == best[rows]) & batch["opt_is_gold"]).to(scores.dtype)
    per_row = torch.zeros(n_rows, dtype=scores.dtype, device=scores.device).index_add(0, rows, hit)
    return float((per_row > 0).float().mean())
