"""Per-run summary tables: ``RUN_DIR/eval/summary.csv`` and ``summary.md``.

Why: after ``negtune eval RUN_DIR`` a researcher wants one table of every checkpoint of the
run (base first, then by step), per task and macro, without opening each results file.
Numbers are formatted by ``negtune.results.format_metric`` like every other table.
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


def summary_rows(results: Iterable[Results]) -> list[dict[str, Any]]:
    rows = []
    for res in results:
        ck = res.checkpoint or res.label
        for task, t in sorted(res.tasks.items()):
            rows.append({"checkpoint": ck, "step": res.step, "task": task,
                         "original_acc": t.acc("original"), "negated_acc": t.acc("negated"),
                         "mean": t.pairs.mean, "both_correct": t.pairs.both_correct, "flip_rate": t.pairs.flip_rate,
                         "instruction_free_agreement": t.pairs.instruction_free_agreement, "n_pairs": t.n_pairs})
        s = res.summary
        rows.append({"checkpoint": ck, "step": res.step, "task": "macro",
                     "original_acc": s.original_acc, "negated_acc": s.negated_acc, "mean": s.mean,
                     "both_correct": s.both_correct, "flip_rate": s.flip_rate,
                     "instruction_free_agreement": s.instruction_free_agreement, "n_pairs": None})
    return rows


def _cell(value: Optional[Any], for_csv: bool) -> str:
    if isinstance(value, float):
        return format_metric(value, for_csv)
    if value is None:
        return "" if for_csv else "-"
    return str(value)


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
    w = csv.DictWriter(buf, fieldnames=SUMMARY_COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: _cell(r[k], True) for k in SUMMARY_COLUMNS})
    csv_path, md_path = eval_dir / "summary.csv", eval_dir / "summary.md"
    write_text(csv_path, buf.getvalue())
    md = ["| " + " | ".join(SUMMARY_COLUMNS) + " |", "|" + "---|" * len(SUMMARY_COLUMNS)]
    md += ["| " + " | ".join(_cell(r[k], False) for k in SUMMARY_COLUMNS) + " |" for r in rows]
    write_text(md_path, "\n".join(md) + "\n")
    return csv_path, md_path
