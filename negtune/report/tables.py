"""The report's tables: ``report.md`` (per task, with intervals, reading gain, seeds and the
side-by-side view of in-distribution and held-out tasks), ``report.csv`` and ``seeds.csv``.

Numbers are written by ``negtune.results.format_metric`` (3 decimals in markdown, 6 in CSV);
an interval follows its number in brackets, ``0.776 [0.684, 0.846]``.
"""
from __future__ import annotations

import csv
import io
from typing import Optional

from negtune.report.gain import gain_cell, p_cell
from negtune.report.rows import METRICS, Row
from negtune.report.seeds import GROUP_METRICS, SeedGroup, mean_std_cell
from negtune.results import format_metric

CSV_COLUMNS = ("task", "label", "run", "checkpoint", "loss", "model", "adapter", "original", "negated", "mean",
               "both_correct", "flip_rate", "n", "chance_original", "chance_negated", "source",
               *(f"{m}_{end}" for m in METRICS for end in ("low", "high")),
               "reading_gain", "reading_gain_low", "reading_gain_high", "reading_gain_p",
               "both_correct_gain", "both_correct_gain_low", "both_correct_gain_high", "seed")
SEED_COLUMNS = ("task", "label", "checkpoint", "n_seeds", "seeds",
                *(f"{m}_{s}" for m in GROUP_METRICS for s in ("mean", "std")), "runs")

LEGEND = ("original / negated: accuracy under the original / negated prompt; mean: their average; "
          "both_correct: items right under both prompts; flip_rate: items whose chosen option differs "
          "between the two prompts.")
METHOD = ("[low, high]: 95% interval: Wilson for an accuracy; a paired bootstrap over items (2000 resamples, "
          "both prompts of an item drawn together) for mean, both_correct and flip_rate.")
GAIN_TEXT = ("Reading gain: flip_rate − the base model's flip_rate on the same items, with a paired-bootstrap "
             "95% interval and the exact McNemar p on the items only one of the two flipped. A model that reads "
             "the negation raises both the reading gain and both_correct; one that only learned to answer "
             "wrongly raises neither.")


def _cell(value: Optional[float], ci: Optional[tuple[float, float]]) -> str:
    text = format_metric(value)
    return text + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci and text != "-" else "")


def _held_out_marks(rows: list[Row]) -> dict[str, str]:
    """``(trained on)`` / ``(held out)`` per task, from the runs' data.tasks (none if unknown)."""
    trained = {t for r in rows for t in r.trained_tasks}
    if not trained:
        return {}
    return {r.task: "trained on" if r.task in trained else "held out" for r in rows}


def _side_by_side(rows: list[Row], tasks: list[str]) -> list[str]:
    marks = _held_out_marks(rows)
    head = [f"{t} ({marks[t]})" if t in marks else t for t in tasks]
    labels = list(dict.fromkeys(r.label for r in sorted(rows, key=lambda r: not r.is_base)))
    cell = {(r.label, r.task): r for r in rows}
    out = ["## Side by side: every task", "",
           "original / negated accuracy, then reading gain [95% CI] and both_correct.", "",
           "| model / checkpoint | " + " | ".join(head) + " |", "|---|" + "---|" * len(tasks)]
    for label in labels:
        cells = []
        for t in tasks:
            r = cell.get((label, t))
            cells.append("-" if r is None else f"{format_metric(r.values['original'])} / "
                                               f"{format_metric(r.values['negated'])}")
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    out += ["", "| model / checkpoint | " + " | ".join(head) + " |", "|---|" + "---|" * len(tasks)]
    for label in labels:
        cells = []
        for t in tasks:
            r = cell.get((label, t))
            if r is None:
                cells.append("-")
            elif r.is_base:
                cells.append(f"base · {format_metric(r.values['both_correct'])}")
            else:
                cells.append(f"{gain_cell((r.gain or {}).get('flip_rate'))} · {format_metric(r.values['both_correct'])}")
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    return out + [""]


def _gain_table(trows: list[Row]) -> list[str]:
    with_gain = [r for r in trows if r.gain]
    if not with_gain:
        return []
    out = ["Reading gain against the base model (paired over the same items):", "",
           "| model / checkpoint | flip_rate | reading gain [95% CI] | McNemar p | both_correct "
           "| both_correct − base [95% CI] |", "|---|---|---|---|---|---|"]
    for r in with_gain:
        g = r.gain
        out.append(f"| {r.label} | {format_metric(r.values['flip_rate'])} | {gain_cell(g.get('flip_rate'))} "
                   f"| {p_cell(g.get('flip_rate'))} | {_cell(r.values['both_correct'], r.ci.get('both_correct'))} "
                   f"| {gain_cell(g.get('both_correct'))} |")
    return out + [""]


def _seed_table(groups: list[SeedGroup]) -> list[str]:
    if not groups:
        return []
    out = ["## Seeds", "", "Runs whose resolved recipes differ only in `seed`: mean ± standard deviation over seeds.", "",
           "| task | runs | seeds | original | negated | mean | both_correct | flip_rate | reading gain |",
           "|---|---|---|---|---|---|---|---|---|"]
    for g in groups:
        cells = [mean_std_cell(g.stats.get(m), signed=m == "reading_gain") for m in GROUP_METRICS]
        out.append(f"| {g.task} | {g.label} | {len(g.rows)} ({', '.join(map(str, g.seeds))}) | " + " | ".join(cells) + " |")
    return out + [""]


def render_markdown(rows: list[Row], title: str, png_name: Optional[str], groups: list[SeedGroup] = ()) -> str:
    out = [f"# {title}", ""]
    tasks = list(dict.fromkeys(r.task for r in rows))
    if len(tasks) > 1:
        out += _side_by_side(rows, tasks)
    for task in tasks:
        trows = [r for r in rows if r.task == task]
        co, cn = trows[0].chance
        out.append(f"## {task}")
        out.append("")
        if co is not None and cn is not None:
            out.append(f"Chance: original {co:.3f}, negated {cn:.3f} (any wrong option counts under a negated prompt).")
            out.append("")
        out.append("| model / checkpoint | loss | original | negated | mean | both_correct | flip_rate | n |")
        out.append("|---|---|---|---|---|---|---|---|")
        for r in trows:
            cells = " | ".join(_cell(r.values[m], r.ci.get(m)) for m in METRICS)
            out.append(f"| {r.label} | {r.loss or '-'} | {cells} | {r.n if r.n is not None else '-'} |")
        out.append("")
        out += _gain_table(trows)
    out += _seed_table(list(groups))
    out.append(LEGEND)
    if any(r.ci for r in rows):
        out += ["", METHOD]
    if any(r.gain for r in rows):
        out += ["", GAIN_TEXT]
    if png_name:
        out += ["", f"![original vs negated accuracy]({png_name})"]
    sources = list(dict.fromkeys(r.source for r in rows))
    out += ["", "Sources: " + ", ".join(f"`{s}`" for s in sources), ""]
    return "\n".join(out)


def _f(value: Optional[float]) -> str:
    return format_metric(value, for_csv=True)


def render_csv(rows: list[Row]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        v = r.values
        bounds = [_f(b) for m in METRICS for b in (r.ci.get(m) or (None, None))]
        gains = []
        for metric, with_p in (("flip_rate", True), ("both_correct", False)):
            c = (r.gain or {}).get(metric)
            gains += [_f(c.diff if c else None), *(_f(b) for b in ((c.ci if c else None) or (None, None)))]
            if with_p:
                gains.append("" if c is None or c.p_value is None else repr(c.p_value))
        writer.writerow([
            r.task, r.label, r.run or "", r.checkpoint or "", r.loss or "", r.model or "", r.adapter or "",
            *(_f(v[m]) for m in METRICS), "" if r.n is None else r.n, _f(r.chance[0]), _f(r.chance[1]), r.source,
            *bounds, *gains, "" if r.seed is None else r.seed,
        ])
    return buf.getvalue()


def render_seeds_csv(groups: list[SeedGroup]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(SEED_COLUMNS)
    for g in groups:
        stats = [_f(x) for m in GROUP_METRICS for x in (g.stats.get(m) or (None, None))]
        writer.writerow([g.task, g.label, g.checkpoint or "", len(g.rows), " ".join(map(str, g.seeds)), *stats,
                         " ".join(r.run or r.source for r in g.rows)])
    return buf.getvalue()
