"""``negtune report``: tables and the trade-off plot from evaluation results.

    negtune report RUN_DIR|results.json|DIR_OF_RUNS ... [--out DIR] [--title TEXT]

Reads the evaluator's results files (``negtune.results``) given directly, from training
run directories (``RUN_DIR/eval/*.json``), from a directory of results files (``negtune
eval --model A --model B --out DIR``), or from a directory of run directories
(``runs/demo`` -> ``runs/demo/*/eval/*.json``), and writes into ``--out``
(default ``./report``):

* ``report.md``  one table per task: original and negated accuracy, their mean,
  both_correct, flip_rate and n, one row per model / checkpoint / loss;
* ``report.csv`` the same rows in one flat table (plus chance levels and source file);
* ``sweep.png`` / ``sweep.csv`` when the results hold several sizes of one model family:
  accuracy against parameter count per task and macro (``negtune.sweep_plot``);
* ``tradeoff.png`` per task, original accuracy (x) against negated accuracy (y), one
  labelled point per row, the chance levels (dotted) and the zero-sum line through the base
  model (dashed, ``x + y = x_base + y_base``): points on that line traded one accuracy for
  the other; points above it gained overall.

Why this view: Jang et al.'s finding is that negated-prompt fine-tuning moves models along
the zero-sum line. Whether a mitigation helps is whether it ends up above the line.

Chance levels: the evaluator records each variant's ``chance`` (the accuracy of a uniformly
random pick: 1/k original, (k-1)/k negated, since every wrong option counts as correct under
a negated prompt). Results without it fall back to k from the task registry; when unknown
no line is drawn.

Rows: the base model evaluated inside several runs (each run's ``eval/base.json``) is
shown once when the numbers agree. All outputs are written atomically.
"""
from __future__ import annotations

import csv
import io
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from negtune.data.tasks import TASKS
from negtune.errors import ArgParser, UserError
from negtune.results import Results, TaskResult, finite_or_none, format_metric

METRICS = ("original", "negated", "mean", "both_correct", "flip_rate")
CSV_COLUMNS = ("task", "label", "run", "checkpoint", "loss", "model", "adapter", "original", "negated", "mean",
               "both_correct", "flip_rate", "n", "chance_original", "chance_negated", "source")


@dataclass
class Row:
    task: str
    label: str
    run: Optional[str]
    checkpoint: Optional[str]
    loss: Optional[str]
    model: Optional[str]
    adapter: Optional[str]
    values: dict[str, Optional[float]]
    n: Optional[int]
    chance: tuple[Optional[float], Optional[float]]
    source: str
    is_base: bool = False
    step: Optional[int] = None


# --------------------------------------------------------------------------- reading


def _files_in_run(run: Path) -> list[Path]:
    return sorted(p for p in (run / "eval").glob("*.json") if p.is_file())


def collect_files(inputs: list[str]) -> list[Path]:
    """Results files named by the inputs (files, run dirs, dirs of run dirs), in a stable order."""
    files: list[Path] = []
    for raw in inputs:
        path = Path(raw)
        if path.is_file():
            files.append(path)
            continue
        if not path.exists():
            raise UserError(f"{raw}: no such file or directory")
        found = _files_in_run(path) or sorted(p for p in path.glob("*.json") if p.is_file())  # run, or `eval --out DIR`
        if not found:
            for sub in sorted(p for p in path.iterdir() if p.is_dir()):
                found += _files_in_run(sub)
        if not found:
            raise UserError(f"{raw}: no results found (expected RUN_DIR/eval/*.json; run `negtune eval {raw}` first)")
        files += found
    seen: set[Path] = set()
    unique = []
    for f in files:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique


def _chance(task: str, entry: TaskResult) -> tuple[Optional[float], Optional[float]]:
    """Chance levels as the results record them; older files without them fall back to the
    registry's option count k (1/k original, (k-1)/k negated)."""
    orig = entry.variants["original"].chance if "original" in entry.variants else None
    neg = entry.variants["negated"].chance if "negated" in entry.variants else None
    spec = TASKS.get(task)
    k = spec.n_options if spec is not None else None
    if orig is None and k:
        orig = 1.0 / k
    if neg is None and k:
        neg = (k - 1.0) / k
    return orig, neg


def _label(results: Results, path: Path) -> str:
    if results.is_base:
        return "base"
    run_name = Path(results.run).name if results.run else None
    if run_name and results.checkpoint:
        return f"{run_name}:{results.checkpoint}"
    return str(results.label or run_name or results.checkpoint or path.stem)


def rows_from_results(results: Results, path: Path) -> list[Row]:
    label = _label(results, path)
    rows = []
    for task, entry in results.tasks.items():
        o, n = entry.acc("original"), entry.acc("negated")
        values = {"original": o, "negated": n, "mean": entry.pairs.mean,
                  "both_correct": entry.pairs.both_correct, "flip_rate": entry.pairs.flip_rate}
        values = {k: finite_or_none(v) for k, v in values.items()}
        rows.append(Row(
            task=task, label=label, run=results.run, checkpoint=results.checkpoint,
            loss=None if results.is_base else results.loss, model=results.model, adapter=results.adapter,
            values=values, n=entry.n, chance=_chance(task, entry), source=str(path), is_base=results.is_base,
            step=results.step,
        ))
    return rows


def collect_rows(files: list[Path]) -> list[Row]:
    rows: list[Row] = []
    seen_base: dict[tuple, Row] = {}
    for f in files:
        for row in rows_from_results(Results.read(f), f):
            if row.is_base:
                key = (row.task, row.model, tuple(row.values.get(m) for m in METRICS), row.n)
                if key in seen_base:
                    continue
                seen_base[key] = row
            rows.append(row)
    # Distinct rows that would share a label get their run/source appended.
    by_label: dict[tuple[str, str], list[Row]] = {}
    for r in rows:
        by_label.setdefault((r.task, r.label), []).append(r)
    for group in by_label.values():
        if len(group) > 1:
            for r in group:
                r.label = f"{r.label} ({Path(r.run).name if r.run else Path(r.source).stem})"
    # Base first, then by run and step.
    rows.sort(key=lambda r: (r.task, not r.is_base, r.run or "", r.step if r.step is not None else -1, r.label))
    return rows


# --------------------------------------------------------------------------- rendering


def render_markdown(rows: list[Row], title: str, png_name: Optional[str]) -> str:
    out = [f"# {title}", ""]
    tasks = list(dict.fromkeys(r.task for r in rows))
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
            v = r.values
            out.append(
                f"| {r.label} | {r.loss or '-'} | {format_metric(v['original'])} | {format_metric(v['negated'])} | {format_metric(v['mean'])} "
                f"| {format_metric(v['both_correct'])} | {format_metric(v['flip_rate'])} | {r.n if r.n is not None else '-'} |"
            )
        out.append("")
    out.append("original / negated: accuracy under the original / negated prompt; mean: their average; "
               "both_correct: items right under both prompts; flip_rate: items whose chosen option differs "
               "between the two prompts.")
    if png_name:
        out += ["", f"![original vs negated accuracy]({png_name})"]
    sources = list(dict.fromkeys(r.source for r in rows))
    out += ["", "Sources: " + ", ".join(f"`{s}`" for s in sources), ""]
    return "\n".join(out)


def render_csv(rows: list[Row]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        v = r.values
        writer.writerow([
            r.task, r.label, r.run or "", r.checkpoint or "", r.loss or "", r.model or "", r.adapter or "",
            *(format_metric(v[m], for_csv=True) for m in METRICS),
            "" if r.n is None else r.n,
            format_metric(r.chance[0], for_csv=True),
            format_metric(r.chance[1], for_csv=True),
            r.source,
        ])
    return buf.getvalue()


def render_png(rows: list[Row], path: Path, title: str) -> bool:
    """Write the trade-off plot; False when no row has both accuracies."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from negtune.io import atomic_path

    tasks = [t for t in dict.fromkeys(r.task for r in rows)
             if any(r.values["original"] is not None and r.values["negated"] is not None
                    for r in rows if r.task == t)]
    if not tasks:
        return False
    ncols = min(3, len(tasks))
    nrows = math.ceil(len(tasks) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.2 * ncols, 5.0 * nrows), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, task in zip(axes.flat, tasks):
        trows = [r for r in rows if r.task == task
                 and r.values["original"] is not None and r.values["negated"] is not None]
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_aspect("equal")
        ax.grid(True, alpha=0.3)
        co, cn = trows[0].chance
        if co is not None:
            ax.axvline(co, color="grey", linestyle=":", linewidth=1)
            ax.text(co, 0.01, f" chance {co:.2f}", color="grey", fontsize=8, rotation=90, va="bottom", ha="right")
        if cn is not None:
            ax.axhline(cn, color="grey", linestyle=":", linewidth=1)
            ax.text(0.99, cn, f"chance {cn:.2f}", color="grey", fontsize=8, va="bottom", ha="right")
        for j, b in enumerate([r for r in trows if r.is_base]):
            total = b.values["original"] + b.values["negated"]
            xs = [max(0.0, total - 1.0), min(1.0, total)]
            ax.plot(xs, [total - x for x in xs], color="black", linestyle="--", linewidth=1,
                    label=f"zero-sum: original + negated = {total:.2f}" if j == 0 else None)
        for i, r in enumerate(trows):
            x, y = r.values["original"], r.values["negated"]
            color = "black" if r.is_base else colors[i % len(colors)]
            ax.scatter([x], [y], s=60, color=color, zorder=3, marker="s" if r.is_base else "o")
            text = r.label if r.is_base or not r.loss or r.loss in r.label else f"{r.label} [{r.loss}]"
            right = x > 0.65  # keep labels inside the axes
            ax.annotate(text, (x, y), textcoords="offset points", xytext=(-6 if right else 6, 6), fontsize=8,
                        color=color, ha="right" if right else "left")
        ax.set_xlabel("original-prompt accuracy")
        ax.set_ylabel("negated-prompt accuracy")
        ax.set_title(task)
        if any(r.is_base for r in trows):
            ax.legend(loc="best", fontsize=8)
    for ax in list(axes.flat)[len(tasks):]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return True


def write_report(inputs: list[str], out_dir: str | Path, title: str = "negtune report") -> dict[str, Any]:
    """Read the inputs and write report.md, report.csv and tradeoff.png into ``out_dir``."""
    from negtune.io import claim_dir, write_text

    files = collect_files(inputs)
    rows = collect_rows(files)
    if not rows:
        raise UserError(f"{', '.join(inputs)}: the results contain no tasks")
    out = claim_dir(out_dir, "report", "report directory")
    png = out / "tradeoff.png"
    has_png = render_png(rows, png, title)
    md = out / "report.md"
    csv_path = out / "report.csv"
    write_text(csv_path, render_csv(rows))
    from negtune.sweep_plot import write_sweep  # several sizes of one family: accuracy against size

    sweep = write_sweep(files, out)
    text = render_markdown(rows, title, png.name if has_png else None)
    if sweep is not None:
        text += f"\n![accuracy against model size]({sweep['png'].name}) (points: `{sweep['csv'].name}`)\n"
    write_text(md, text)
    return {"markdown": md, "csv": csv_path, "png": png if has_png else None, "rows": rows, "files": files,
            "sweep": sweep}


def main(argv: list[str] | None = None) -> int:
    p = ArgParser(prog="negtune report", description=__doc__.split("\n\n")[0])
    p.add_argument("inputs", nargs="+", metavar="RUN_DIR|results.json",
                   help="results JSONs, run directories (RUN_DIR/eval/*.json) or a directory of runs")
    p.add_argument("--out", default="report", metavar="DIR", help="output directory (default: ./report)")
    p.add_argument("--title", default="negtune: original vs negated accuracy")
    opts = p.parse_args(list(sys.argv[1:] if argv is None else argv))
    res = write_report(opts.inputs, opts.out, opts.title)
    print(res["markdown"].read_text(encoding="utf-8"), end="")
    print(f"wrote {res['markdown']}, {res['csv']}" + (f", {res['png']}" if res["png"] else " (no plot: no row has both accuracies)")
          + (f", {res['sweep']['png']}, {res['sweep']['csv']}" if res["sweep"] else ""))
    return 0


if __name__ == "__main__":
    from negtune.errors import exit_on_user_error

    sys.exit(exit_on_user_error(lambda: main()))
