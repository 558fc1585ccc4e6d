"""Per-item predictions in, negtune's paired metrics (and their intervals) out: the computation
behind the ``evaluate`` module ``negtune_paired``.

Why separate from the ``evaluate`` script: the script only declares inputs; this function
turns them into ``negtune.evaluation.metrics.Pick``s and calls the same ``score_picks`` /
``macro`` that ``negtune eval`` uses, and the same ``negtune.evaluation.stats`` bootstrap
the reports use, so there is one implementation of every number. It needs neither
``evaluate`` nor ``datasets`` (call it directly from a loop that has no use for them).

Inputs, one row per item and prompt variant (the rows of one item share its id):

* ``predictions``: the picked option, as an index or as its text;
* ``references``: the correct option(s) in the same form: one value or a list (negated
  4-option items have three correct answers); a prediction in the list is correct;
* ``ids``: the item id that pairs an item's original and negated rows;
* ``variants``: ``original``, ``negated`` or ``instruction_free``;
* ``tasks`` (optional): the task of each row; the headline numbers are then unweighted means
  over tasks, as in ``negtune eval``'s summary.

Within a task that has both variants every id must appear under both ("paired by id"): the
intervals resample whole pairs. ``flip_rate`` compares the picked options: pass option
texts when the variants list options in different orders (some paper files do).

Output: a flat ``{name: float}`` (what ``transformers.Trainer`` logs): ``original_acc``,
``negated_acc``, ``mean``, ``both_correct``, ``flip_rate``, ``instruction_free_agreement``
(each only when defined), ``n_pairs``, ``n_tasks``; with ``intervals`` also
``<metric>_ci_low`` / ``<metric>_ci_high`` for the five paired metrics; with several tasks
also ``<task>/<metric>`` per task. The intervals are the results file's own: a task's
accuracies get Wilson intervals, its pair metrics and every macro number a percentile
bootstrap over items (``negtune.evaluation.stats.intervals``, stratified over tasks).
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from negtune.errors import UserError
from negtune.evaluation.metrics import FREE, PAIR_A, PAIR_B, Pick, macro, paired_outcomes, score_picks

VARIANTS = (PAIR_A, PAIR_B, FREE)
DEFAULT_TASK = "default"  # the task name of rows given without ``tasks`` (it seeds the bootstrap)
HEADLINE = ("original_acc", "negated_acc", "mean", "both_correct", "flip_rate", "instruction_free_agreement")


def _option(value: Any, where: str) -> int | str:
    """An option as an int index or a str text (numpy integers are indices too)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise ValueError(f"{where}: expected an option index (int) or text (str), got {value!r}")
    return int(value.__index__())


def option_rows(predictions: Sequence[Any], references: Sequence[Any]) -> tuple[list[int | str], list[list[int | str]]]:
    """Check and normalise the option columns: predictions as ints or strs, references as a
    list per row (a single value becomes a one-element list), one kind throughout.

    Why before ``evaluate`` sees them: ``datasets`` features coerce silently (a text reference
    " Paris" given where a list is expected becomes [" ", "P", ...]; 3 becomes "3"), so
    the ``evaluate`` module normalises every batch here and declares list references only.
    """
    if len(references) != len(predictions):
        raise ValueError(f"references: {len(references)} rows but predictions has {len(predictions)}")
    preds, golds = [], []
    kind: Optional[type] = None
    for row in range(len(predictions)):
        pred = _option(predictions[row], f"row {row}: predictions")
        ref = references[row]
        values = [ref] if isinstance(ref, str) or not hasattr(ref, "__iter__") else list(ref)
        if not values:
            raise ValueError(f"row {row}: references: no correct option")
        gold = [_option(v, f"row {row}: references") for v in values]
        kind = kind or type(pred)
        if any(type(v) is not kind for v in (pred, *gold)):
            raise ValueError(f"row {row}: predictions and references mix option indices and texts; use one kind")
        preds.append(pred)
        golds.append(gold)
    return preds, golds


def _picks(predictions: Sequence[Any], references: Sequence[Any], ids: Sequence[Any], variants: Sequence[Any],
           tasks: Optional[Sequence[Any]]) -> dict[str, list[Pick]]:
    preds, golds = option_rows(predictions, references)
    columns = {"ids": ids, "variants": variants}
    if tasks is not None:
        columns["tasks"] = tasks
    for name, column in columns.items():
        if len(column) != len(preds):
            raise ValueError(f"{name}: {len(column)} rows but predictions has {len(preds)}")
    if not preds:
        raise ValueError("predictions: no rows")
    out: dict[str, list[Pick]] = {}
    for row, (pred, gold) in enumerate(zip(preds, golds)):
        variant = str(variants[row])
        if variant not in VARIANTS:
            raise ValueError(f"row {row}: variants: {variant!r} is not one of {', '.join(VARIANTS)}")
        task = str(tasks[row]) if tasks is not None else DEFAULT_TASK
        out.setdefault(task, []).append(Pick(str(ids[row]), variant, pred, pred in gold))
    return out


def _check_paired(task: str, picks: list[Pick]) -> None:
    """Both variants of a task over the same ids, or the pair intervals would be wrong."""
    ids = {v: {p.item for p in picks if p.variant == v} for v in (PAIR_A, PAIR_B)}
    if ids[PAIR_A] and ids[PAIR_B] and ids[PAIR_A] != ids[PAIR_B]:
        only_a, only_b = sorted(ids[PAIR_A] - ids[PAIR_B]), sorted(ids[PAIR_B] - ids[PAIR_A])
        example = (only_a or only_b)[0]
        raise ValueError(f"task {task!r}: ids must be paired: {len(only_a)} only under original, {len(only_b)} "
                         f"only under negated (e.g. id {example!r})")


def paired_metrics(predictions: Sequence[Any], references: Sequence[Any], ids: Sequence[Any],
                   variants: Sequence[Any], tasks: Optional[Sequence[Any]] = None, *, intervals: bool = True,
                   resamples: Optional[int] = None, seed: Optional[int] = None,
                   level: Optional[float] = None) -> dict[str, float]:
    """negtune's paired metrics of per-item predictions (module docstring). ``resamples``,
    ``seed`` and ``level`` default to ``negtune.evaluation.stats``' (2000, 0, 0.95)."""
    by_task = _picks(predictions, references, ids, variants, tasks)
    scores = {}
    for task, picks in by_task.items():
        _check_paired(task, picks)
        try:
            scores[task] = score_picks(picks, f"task {task!r}")
        except UserError as err:  # an id listed twice under one variant
            raise ValueError(str(err)) from None

    def row(s: Any) -> dict[str, Optional[float]]:
        p = s.pairs
        return {"original_acc": s.acc.get(PAIR_A), "negated_acc": s.acc.get(PAIR_B), "mean": p.mean,
                "both_correct": p.both_correct, "flip_rate": p.flip_rate,
                "instruction_free_agreement": p.instruction_free_agreement}

    per_task = {task: row(s) for task, s in scores.items()}
    out: dict[str, float] = {}
    for name in HEADLINE:
        value = macro(r[name] for r in per_task.values())
        if value is not None:
            out[name] = value
    out["n_pairs"] = float(sum(s.n_pairs for s in scores.values()))
    out["n_tasks"] = float(len(scores))
    if len(scores) > 1:
        for task, r in per_task.items():
            out.update({f"{task}/{k}": v for k, v in r.items() if v is not None})
    if intervals:
        out.update(_intervals(by_task, len(scores) > 1, resamples, seed, level))
    return out


def _intervals(by_task: dict[str, list[Pick]], per_task: bool, resamples: Optional[int], seed: Optional[int],
               level: Optional[float]) -> dict[str, float]:
    """Stratified bootstrap: items resampled within each task (pairs jointly) from the task's
    own stream, the macro metric recomputed per resample (``negtune.evaluation.stats``)."""
    from negtune.evaluation import stats

    options = {"resamples": stats.RESAMPLES if resamples is None else resamples,
               "seed": stats.SEED if seed is None else seed, "level": stats.LEVEL if level is None else level}
    arrays = {task: paired_outcomes(picks, f"task {task!r}") for task, picks in by_task.items()}
    arrays = {task: a for task, a in arrays.items() if a is not None}  # instruction_free only: no interval
    if not arrays:
        return {}
    task_ivs, macro_ivs = stats.intervals(arrays, **options)
    out: dict[str, float] = {}

    def put(prefix: str, ivs: dict[str, Any]) -> None:
        for name, ci in ivs.items():
            out[f"{prefix}{name}_ci_low"], out[f"{prefix}{name}_ci_high"] = ci.low, ci.high

    put("", macro_ivs)
    if per_task:
        for task, ivs in task_ivs.items():
            for variant, name in ((PAIR_A, "original_acc"), (PAIR_B, "negated_acc")):
                if variant in arrays[task]:  # a lone accuracy: Wilson, as in a results file
                    seen = arrays[task][variant][~np.isnan(arrays[task][variant])]
                    ivs[name] = stats.wilson(int(seen.sum()), len(seen))
            put(f"{task}/", ivs)
    return out
