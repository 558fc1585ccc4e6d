"""Per-run summary tables: ``RUN_DIR/eval/summary.csv`` and ``summary.md``.

Why: after ``negtune eval RUN_DIR`` a researcher wants one table of every checkpoint of the
run (base first, then by step), per task and macro, without opening each results file.
Numbers are formatted by ``negtune.results.format_metric`` like every other table. Each metric's
95% interval (from the results file) goes into ``<metric>_low`` / ``<metric>_high`` columns of
the CSV and beside the number in the markdown (``0.776 [0.684, 0.846]``).
"""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Iterable, Optional

from negtune.errors import UserError
from negtune.results import Results, format_metric

SUMMARY_COLUMNS = ["checkpoint", "step", "task", "original_acc", "negated_acc", "mean", "both_correct",
                   "flip_rate", "instruction_free_agreement", "n_pairs"]
CI_METRICS = ["original_acc", "negated_acc", "mean", "both_correct", "flip_rate"]
CSV_COLUMNS = SUMMARY_COLUMNS + [f"{m}_{end}" for m in CI_METRICS for end in ("low", "high")]


def _task_ci(t: Any) -> dict[str, Any]:
    ci = {"original_acc": t.variants["original"].ci if "original" in t.variants else None,
          "negated_acc": t.variants["negated"].ci if "negated" in t.variants else None}
    ci.update({k: t.pairs.ci.get(k) for k in ("mean", "both_correct", "flip_rate")})
    return ci


def summary_rows(results: Iterable[Results]) -> list[dict[str, Any]]:
    rows = []
    for res in results:
        ck = res.checkpoint or res.label
        for task, t in sorted(res.tasks.items()):
            rows.append({"checkpoint": ck, "step": res.step, "task": task,
                         "original_acc": t.acc("original"), "negated_acc": t.acc("negated"),
                         "mean": t.pairs.mean, "both_correct": t.pairs.both_correct, "flip_rate": t.pairs.flip_rate,
                         "instruction_free_agreement": t.pairs.instruction_free_agreement, "n_pairs": t.n_pairs,
                         "ci": _task_ci(t)})
        s = res.summary
        rows.append({"checkpoint": ck, "step": res.step, "task": "macro",
                     "original_acc": s.original_acc, "negated_acc": s.negated_acc, "mean": s.mean,
                     "both_correct": s.both_correct, "flip_rate": s.flip_rate,
                     "instruction_free_agreement": s.instruction_free_agreement, "n_pairs": None,
                     "ci": {k: s.ci.get(k) for k in CI_METRICS}})
    return rows


def _cell(value: Optional[Any], for_csv: bool) -> str:
    if isinstance(value, float):
        return format_metric(value, for_csv)
    if value is None:
        return "" if for_csv else "-"
    return str(value)


def _csv_row(row: dict[str, Any]) -> dict[str, str]:
    out = {k: _cell(row[k], True) for k in SUMMARY_COLUMNS}
    for m in CI_METRICS:
        bounds = row["ci"].get(m)
        out[f"{m}_low"], out[f"{m}_high"] = (_cell(b, True) for b in (bounds or (None, None)))
    return out


def _md_cell(row: dict[str, Any], key: str) -> str:
    bounds = row["ci"].get(key) if key in CI_METRICS else None
    return _cell(row[key], False) + (f" [{bounds[0]:.3f}, {bounds[1]:.3f}]" if bounds and row[key] is not None else "")


def read_run_results(run_dir: str | Path) -> list[Results]:
    """Every results file in RUN_DIR/eval, base first, then by step."""
    results = []
    for f in sorted((Path(run_dir) / "eval").glob("*.json")):
        try:
            results.append(Results.read(f))
        except UserError:
            continue  # not a results file (e.g. a foreign JSON): the summary lists what is
    results.sort(key=lambda r: (r.checkpoint != "base", r.step or 0, str(r.checkpoint)))
    return results


def write_run_summary(run_dir: str | Path) -> tuple[Path, Path]:
    """RUN_DIR/eval/summary.csv and summary.md from every results file in RUN_DIR/eval."""
    from negtune.io import write_text

    eval_dir = Path(run_dir) / "eval"
    rows = summary_rows(read_run_results(run_dir))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow(_csv_row(r))
    csv_path, md_path = eval_dir / "summary.csv", eval_dir / "summary.md"
    write_text(csv_path, buf.getvalue())
    md = ["| " + " | ".join(SUMMARY_COLUMNS) + " |", "|" + "---|" * len(SUMMARY_COLUMNS)]
    md += ["| " + " | ".join(_md_cell(r, k) for k in SUMMARY_COLUMNS) + " |" for r in rows]
    md += ["", "[low, high]: 95% interval (Wilson for an accuracy; paired bootstrap over items, 2000 resamples, "
               "for mean, both_correct and flip_rate; stratified over tasks for macro)."]
    write_text(md_path, "\n".join(md) + "\n")
    return csv_path, md_path
