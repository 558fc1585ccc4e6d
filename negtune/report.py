"""``negtune report``: tables and the trade-off plot from evaluation results.

    negtune report RUN_DIR|results.json|DIR_OF_RUNS ... [--out DIR] [--title TEXT]

Reads the evaluator's results JSONs (schema: see negtune.jobs / CONTRACT) given directly,
from training run directories (``RUN_DIR/eval/*.json``), or from a directory of run
directories (``runs/demo`` -> ``runs/demo/*/eval/*.json``), and writes into ``--out``
(default ``./report``):

* ``report.md``  one table per task: original and negated accuracy, their mean,
  both_correct, flip_rate and n, one row per model / checkpoint / loss;
* ``report.csv`` the same rows in one flat table (plus chance levels and source file);
* ``tradeoff.png`` per task, original accuracy (x) against negated accuracy (y), one
  labelled point per row, the chance levels (dotted) and the zero-sum line through the base
  model (dashed, ``x + y = x_base + y_base``): points on that line traded one accuracy for
  the other; points above it gained overall.

Why this view: Jang et al.'s finding is that negated-prompt fine-tuning moves models along
the zero-sum line. Whether a mitigation helps is whether it ends up above the line.

Chance levels: the evaluator records each variant's ``chance`` (the accuracy of a uniformly
random pick: 1/k original, (k-1)/k negated, since every wrong option counts as correct under
a negated prompt). Results without it fall back to k from the task registry, else from the
scoring record of a single-task file (options / instances); when unknown no line is drawn.

Rows: the base model evaluated inside several runs (each run's ``eval/base.json``) is
shown once when the numbers agree. All outputs are written atomically.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from negtune.errors import UserError

METRICS = ("original", "negated", "mean", "both_correct", "flip_rate")
CSV_COLUMNS = ("task", "label", "run", "checkpoint", "loss", "model", "adapter", "original", "negated", "mean",
               "both_correct", "flip_rate", "n", "chance_original", "chance_negated", "source")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        raise UserError(f"report: {message}")


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
    extra: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- reading


def _load_results(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"{path}: not a results JSON (cannot parse: {err})") from None
    if not isinstance(data, dict) or not isinstance(data.get("tasks"), dict):
        raise UserError(f"{path}: not a results JSON (no 'tasks' mapping; write one with `negtune eval --out`)")
    for task, entry in data["tasks"].items():
        if not isinstance(entry, dict):
            raise UserError(f"{path}: tasks.{task}: expected a mapping")
    return data


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
        found = _files_in_run(path)
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


def _registry_options(task: str) -> Optional[int]:
    try:
        from negtune.data.tasks import TASKS
    except Exception:  # the report must render even if the data package is broken
        return None
    spec = TASKS.get(task)
    return getattr(spec, "n_options", None) if spec is not None else None


def _n_options(results: dict[str, Any], task: str, entry: dict[str, Any]) -> Optional[int]:
    for value in (entry.get("n_options"), _registry_options(task)):
        if isinstance(value, int) and value >= 2:
            return value
    scoring = results.get("scoring") or {}
    n_opt, n_inst = scoring.get("n_options"), scoring.get("n_instances")
    if len(results["tasks"]) == 1 and isinstance(n_opt, int) and isinstance(n_inst, int) and n_inst > 0:
        if n_opt % n_inst == 0 and n_opt // n_inst >= 2:
            return n_opt // n_inst
    return None


def _chance(results: dict[str, Any], task: str, entry: dict[str, Any]) -> tuple[Optional[float], Optional[float]]:
    orig = (entry.get("original") or {}).get("chance")
    neg = (entry.get("negated") or {}).get("chance")
    k = _n_options(results, task, entry)
    if orig is None and k:
        orig = 1.0 / k
    if neg is None and k:
        neg = (k - 1.0) / k
    return orig, neg


def _num(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _label(results: dict[str, Any], path: Path, is_base: bool) -> str:
    run = results.get("run")
    ckpt = results.get("checkpoint")
    if is_base:
        return "base"
    run_name = Path(run).name if run else None
    if run_name and ckpt:
        return f"{run_name}:{ckpt}"
    return str(results.get("label") or run_name or ckpt or path.stem)


def rows_from_results(results: dict[str, Any], path: Path) -> list[Row]:
    is_base = results.get("checkpoint") == "base" or (
        results.get("adapter") is None and results.get("checkpoint") is None and results.get("run") is None
        and results.get("label") in (None, "base")
    )
    label = _label(results, path, is_base)
    rows = []
    for task, entry in results["tasks"].items():
        orig = entry.get("original") or {}
        neg = entry.get("negated") or {}
        values = {
            "original": _num(orig.get("acc")),
            "negated": _num(neg.get("acc")),
            "mean": _num(entry.get("mean")),
            "both_correct": _num(entry.get("both_correct")),
            "flip_rate": _num(entry.get("flip_rate")),
        }
        if values["mean"] is None and values["original"] is not None and values["negated"] is not None:
            values["mean"] = (values["original"] + values["negated"]) / 2
        n = entry.get("n_pairs")
        if not isinstance(n, int):
            ns = [v.get("n") for v in (orig, neg) if isinstance(v.get("n"), int)]
            n = max(ns) if ns else None
        rows.append(Row(
            task=task, label=label, run=results.get("run"), checkpoint=results.get("checkpoint"),
            loss=None if is_base else results.get("loss"), model=results.get("model"),
            adapter=results.get("adapter"), values=values, n=n, chance=_chance(results, task, entry),
            source=str(path), is_base=is_base, step=results.get("step") if isinstance(results.get("step"), int) else None,
        ))
    return rows


def collect_rows(files: list[Path]) -> list[Row]:
    rows: list[Row] = []
    seen_base: dict[tuple, Row] = {}
    for f in files:
        for row in rows_from_results(_load_results(f), f):
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


def _fmt(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.3f}"


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
                f"| {r.label} | {r.loss or '-'} | {_fmt(v['original'])} | {_fmt(v['negated'])} | {_fmt(v['mean'])} "
                f"| {_fmt(v['both_correct'])} | {_fmt(v['flip_rate'])} | {r.n if r.n is not None else '-'} |"
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
            *("" if v[m] is None else f"{v[m]:.6f}" for m in METRICS),
            "" if r.n is None else r.n,
            "" if r.chance[0] is None else f"{r.chance[0]:.6f}",
            "" if r.chance[1] is None else f"{r.chance[1]:.6f}",
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
    from negtune.io import write_text

    files = collect_files(inputs)
    rows = collect_rows(files)
    if not rows:
        raise UserError(f"{', '.join(inputs)}: the results contain no tasks")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    png = out / "tradeoff.png"
    has_png = render_png(rows, png, title)
    md = out / "report.md"
    csv_path = out / "report.csv"
    write_text(csv_path, render_csv(rows))
    write_text(md, render_markdown(rows, title, png.name if has_png else None))
    return {"markdown": md, "csv": csv_path, "png": png if has_png else None, "rows": rows, "files": files}


def main(argv: list[str] | None = None) -> int:
    p = _Parser(prog="negtune report", description=__doc__.split("\n\n")[0])
    p.add_argument("inputs", nargs="+", metavar="RUN_DIR|results.json",
                   help="results JSONs, run directories (RUN_DIR/eval/*.json) or a directory of runs")
    p.add_argument("--out", default="report", metavar="DIR", help="output directory (default: ./report)")
    p.add_argument("--title", default="negtune: original vs negated accuracy")
    opts = p.parse_args(list(sys.argv[1:] if argv is None else argv))
    res = write_report(opts.inputs, opts.out, opts.title)
    print(res["markdown"].read_text(encoding="utf-8"), end="")
    print(f"wrote {res['markdown']}, {res['csv']}" + (f", {res['png']}" if res["png"] else " (no plot: no row has both accuracies)"))
    return 0


if __name__ == "__main__":
    from negtune.errors import exit_on_user_error

    sys.exit(exit_on_user_error(lambda: main()))
