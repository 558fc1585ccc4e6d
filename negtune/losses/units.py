"""What a loss term is a mean *over*: functions that count a batch's units.

Why functions of the batch: the trainer must know how many units (tokens, rows, options)
the whole global batch holds *before* it backpropagates the first micro-batch, so that a
step optimises each term's mean over the global batch whatever the split into micro-batches
and processes (see ``docs/losses.md``, "The loss contract"). The data decide these counts, not
the model, so the trainer can apply a term's unit to every micro-batch up front.

Each function takes a collated batch (``negtune.data.collate.Collator``) and returns a
number; each loss below reports the same number as its term's ``count`` (``LossSpec``
checks). Counting follows the losses' label shift: a target token is a position ``t >= 1``
whose label is not -100 (position 0 predicts nothing).

This module imports torch only inside its functions (``negtune.losses`` stays light).
"""
from __future__ import annotations

from typing import Any

from negtune.tokenization import IGNORE_INDEX


def unit_name(unit: Any) -> str:
    """A unit's name for messages: the batch key or the function's name."""
    return unit if isinstance(unit, str) else getattr(unit, "__name__", repr(unit))


def count_units(batch: dict, unit: Any) -> float:
    """How many units of ``unit`` (a batch key or a function of the batch) ``batch`` holds."""
    if isinstance(unit, str):
        if unit not in batch:
            raise KeyError(f"{unit!r} is not a key of the batch (keys: {', '.join(sorted(batch))})")
        return float(batch[unit])
    return float(unit(batch))


def rows(batch: dict) -> float:
    """Rows of the batch (the unit of a loss given as a bare per-row mean)."""
    return float(len(batch["input_ids"]))


def target_positions(labels: Any) -> Any:
    """Per-row count of predicted label positions [B] (labels unshifted, -100 = not a target)."""
    return (labels[:, 1:] != IGNORE_INDEX).sum(-1)


def partner_tokens(batch: dict) -> float:
    """Target tokens of the rows' original partners, each partner weighted by ``pair_weight``.

    Under ``negated_target: all_wrong`` k negated rows of an item share one partner, each with
    weight 1/k, so the partner counts once per item (as in a data set holding both variants).
    """
    n = target_positions(batch["pair_labels"]).double()
    return float((batch["pair_weight"].double() * n).sum())


def union_tokens(batch: dict) -> float:
    """Target tokens of the rows plus their weighted partners (``mixed``: CE on the union)."""
    return float(target_positions(batch["labels"]).sum()) + partner_tokens(batch)


def nongold_option_tokens(batch: dict) -> float:
    """Tokens of every option outside its row's gold set (``unlikelihood``'s M)."""
    return float(target_positions(batch["opt_labels"][~batch["opt_is_gold"]]).sum())


def ranked_rows(batch: dict) -> float:
    """Rows with at least one non-gold option (the rows ``rank_margin`` ranks)."""
    return float(batch["opt_row"][~batch["opt_is_gold"]].unique().numel())
