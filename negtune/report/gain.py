"""The research question as a number: each checkpoint's *reading gain* against its base model.

    reading gain = flip_rate − base flip_rate

flip_rate is the share of items whose picked option differs between the original and the
negated prompt. A model that reads "incorrect" must answer the two prompts differently, so
its flip_rate rises; a model that learned to answer wrongly whatever the prompt does not.
Shown beside ``both_correct`` (right under both prompts) and its change from the base: a
loss that truly reads the negation raises both, on held-out tasks too; one that only learned
to answer wrongly raises neither.

The interval is a paired bootstrap over the task's items (the checkpoint and its base answered
the same items, checked by the results' item records), with the exact McNemar p-value on the
items only one of the two flipped. Results without item records get the point difference only.
``compare_to_base`` runs the full ``negtune compare`` of every checkpoint against its base
(``negtune report --compare-base``).
"""
from __future__ import annotations

from typing import Optional

from negtune.compare import CompareRow, check_same_items, compare_results, task_mismatch
from negtune.errors import UserError
from negtune.report.rows import Row

GAIN_METRICS = ("flip_rate", "both_correct")


def _point(task: str, metric: str, base: Row, row: Row) -> Optional[CompareRow]:
    a, b = base.values.get(metric), row.values.get(metric)
    if a is None or b is None:
        return None
    return CompareRow(task=task, metric=metric, a=a, b=b, diff=b - a, ci=None, n=row.n or 0)


def reading_gain(row: Row, resamples: int = 2000, seed: int = 0) -> dict[str, CompareRow]:
    """``{"flip_rate": B − base, "both_correct": B − base}`` for one row (empty without a base)."""
    base = row.base
    if row.is_base or base is None or base.results is None or row.results is None:
        return {}
    if row.task in base.results.tasks and task_mismatch(base.results, row.results, row.task) is None:
        from negtune.results import Results

        # Only this task: its draws are those of the results' own intervals (task_seed(seed, task)).
        one = [Results(tasks={row.task: r.tasks[row.task]}, summary=r.summary) for r in (base.results, row.results)]
        paired = compare_results(one[0], one[1], resamples=resamples, seed=seed, metrics=GAIN_METRICS, macro=False)
        found = {r.metric: r for r in paired}
        if found:
            return found
    return {m: c for m in GAIN_METRICS if (c := _point(row.task, m, base, row)) is not None}


def attach_gains(rows: list[Row], resamples: int = 2000, seed: int = 0) -> None:
    """Fill ``Row.gain`` for every row with a base model."""
    for r in rows:
        r.gain = reading_gain(r, resamples, seed) or None


def compare_to_base(rows: list[Row], resamples: int = 2000,
                    seed: int = 0) -> list[tuple[Row, Row, list[CompareRow] | str]]:
    """The full paired comparison of every evaluated checkpoint against its base model: one
    entry per results file, (row, base, comparison rows or the reason it was not possible)."""
    out: list[tuple[Row, Row, list[CompareRow] | str]] = []
    seen: set[int] = set()
    for r in rows:
        if r.is_base or r.base is None or r.results is None or id(r.results) in seen:
            continue
        seen.add(id(r.results))
        try:
            check_same_items(r.base.results, r.base.source, r.results, r.source)
        except UserError as err:
            out.append((r, r.base, str(err)))
            continue
        out.append((r, r.base, compare_results(r.base.results, r.results, resamples=resamples, seed=seed)))
    return out


def gain_cell(c: Optional[CompareRow]) -> str:
    """``+0.602 [+0.500, +0.704]`` (or the bare difference without an interval)."""
    if c is None:
        return "-"
    ci = f" [{c.ci[0]:+.3f}, {c.ci[1]:+.3f}]" if c.ci else ""
    return f"{c.diff:+.3f}{ci}"


def p_cell(c: Optional[CompareRow]) -> str:
    if c is None or c.p_value is None:
        return "-"
    return f"{c.p_value:.3g}" if c.p_value >= 1e-4 else "<1e-4"

