"""``negtune report``: tables and the trade-off plot from evaluation results.

    negtune report RUN_DIR|results.json|DIR_OF_RUNS ... [--out DIR] [--title TEXT] [--compare-base]

Reads the evaluator's results files (``negtune.results``) given directly, from training
run directories (``RUN_DIR/eval/*.json``), from a directory of results files (``negtune
eval --model A --model B --out DIR``), or from a directory of run directories
(``runs/demo`` -> ``runs/demo/*/eval/*.json``), and writes into ``--out``
(default ``./report``):

* ``report.md``  one table per task: original and negated accuracy, their mean,
  both_correct, flip_rate (each with its 95% interval) and n, one row per model / checkpoint /
  loss; each checkpoint's reading gain against its base model (``negtune.report.gain``); with
  several tasks, a side-by-side view (in-distribution tasks first, held-out ones marked); with
  runs that differ only in seed, their mean ± std (``negtune.report.seeds``);
* ``report.csv`` the same rows in one flat table (plus chance levels, interval bounds, reading
  gain and source file); ``seeds.csv`` the seed groups;
* ``sweep.png`` / ``sweep.csv`` when the results hold several sizes of one model family:
  accuracy against parameter count per task and macro (``negtune.sweep_plot``);
* ``tradeoff.png`` (``negtune.report.plot``) per task, original accuracy (x) against negated
  accuracy (y) with interval error bars, the chance levels and the zero-sum line through the
  base model;
* with ``--compare-base``: ``compare.md`` / ``compare.csv``, the full ``negtune compare`` of
  every checkpoint against its base model.

Why this view: Jang et al.'s finding is that negated-prompt fine-tuning moves models along
the zero-sum line. Whether a mitigation helps is whether it ends up above the line, by more
than the intervals, across seeds, and with a reading gain on tasks it was not trained on.

Chance levels: the evaluator records each variant's ``chance`` (the accuracy of a uniformly
random pick: 1/k original, (k-1)/k negated, since every wrong option counts as correct under
a negated prompt). Results without it fall back to k from the task registry; when unknown
no line is drawn. All outputs are written atomically.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from negtune.errors import ArgParser, UserError
from negtune.report.gain import attach_gains, compare_to_base
from negtune.report.plot import render_png
from negtune.report.rows import METRICS, Row, collect_files, collect_rows, rows_from_results  # noqa: F401
from negtune.report.seeds import group_seeds
from negtune.report.tables import CSV_COLUMNS, render_csv, render_markdown, render_seeds_csv  # noqa: F401


def _base_comparisons(rows: list[Row]) -> tuple[str, str]:
    """compare.md and compare.csv: every checkpoint against its base model."""
    from negtune.compare import render_csv as compare_csv
    from negtune.compare import render_markdown as compare_md

    md, csv_lines = ["# Every checkpoint against its base model", ""], []
    for row, base, result in compare_to_base(rows):
        if isinstance(result, str):
            md += [f"## {row.label}", "", f"Not compared: {result}", ""]
            continue
        md.append("#" + compare_md(result, f"base ({base.source})", f"{row.label} ({row.source})"))
        lines = compare_csv(result).splitlines()
        if not csv_lines:
            csv_lines.append("model,base," + lines[0])
        csv_lines += [f"{row.label},{base.source}," + line for line in lines[1:]]
    return "\n".join(md) + "\n", "\n".join(csv_lines) + "\n"


def write_report(inputs: list[str], out_dir: str | Path, title: str = "negtune report",
                 compare_base: bool = False) -> dict[str, Any]:
    """Read the inputs and write report.md, report.csv, seeds.csv and tradeoff.png into ``out_dir``."""
    from negtune.io import claim_dir, write_text
    from negtune.sweep_plot import write_sweep

    files = collect_files(inputs)
    rows = collect_rows(files)
    if not rows:
        raise UserError(f"{', '.join(inputs)}: the results contain no tasks")
    attach_gains(rows)
    groups = group_seeds(rows)
    out = claim_dir(out_dir, "report", "report directory")
    png = out / "tradeoff.png"
    has_png = render_png(rows, png, title, groups)
    md = out / "report.md"
    csv_path = out / "report.csv"
    write_text(csv_path, render_csv(rows))
    if groups:
        write_text(out / "seeds.csv", render_seeds_csv(groups))
    if compare_base:
        cmp_md, cmp_csv = _base_comparisons(rows)
        write_text(out / "compare.md", cmp_md)
        write_text(out / "compare.csv", cmp_csv)
    sweep = write_sweep(files, out)  # several sizes of one family: accuracy against size
    text = render_markdown(rows, title, png.name if has_png else None, groups)
    if sweep is not None:
        text += f"\n![accuracy against model size]({sweep['png'].name}) (points: `{sweep['csv'].name}`)\n"
    write_text(md, text)
    return {"markdown": md, "csv": csv_path, "png": png if has_png else None, "rows": rows, "files": files,
            "groups": groups, "sweep": sweep}


def main(argv: list[str] | None = None) -> int:
    p = ArgParser(prog="negtune report", description=__doc__.split("\n\n")[0])
    p.add_argument("inputs", nargs="+", metavar="RUN_DIR|results.json",
                   help="results JSONs, run directories (RUN_DIR/eval/*.json) or a directory of runs")
    p.add_argument("--out", default="report", metavar="DIR", help="output directory (default: ./report)")
    p.add_argument("--title", default="negtune: original vs negated accuracy")
    p.add_argument("--compare-base", action="store_true",
                   help="also write compare.md/.csv: every checkpoint against its base model (negtune compare)")
    opts = p.parse_args(list(sys.argv[1:] if argv is None else argv))
    res = write_report(opts.inputs, opts.out, opts.title, compare_base=opts.compare_base)
    print(res["markdown"].read_text(encoding="utf-8"), end="")
    print(f"wrote {res['markdown']}, {res['csv']}" + (f", {res['png']}" if res["png"] else " (no plot: no row has both accuracies)")
          + (f", {res['sweep']['png']}, {res['sweep']['csv']}" if res["sweep"] else ""))
    return 0
