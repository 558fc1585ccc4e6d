"""Size sweeps: accuracy against parameter count, the view of Jang et al.'s Fig. 2 and 4.

Why its own module: ``negtune report`` draws it when the results it reads come from several
sizes of one model family; the trade-off plot (``negtune.report``) answers another question.

A *series* is one family evaluated one way: ``(model_type, prompting, fine-tuned or not)``,
e.g. ``opt, 0-shot`` or ``opt, chat, 8-shot fixed`` (``Results.model_type`` is the config's
``model_type``; ``Results.prompting.describe()``). A series is drawn when it holds at least two
distinct parameter counts (``Results.n_params``, recorded by ``negtune eval``); the same size
twice in one series keeps the first file read. Panels: one per task and one for the macro
average; per series three lines against log10(parameters): original accuracy, negated
accuracy and their mean, with error bars where the results carry 95% intervals (``interval``)
and the chance levels (dotted) on task panels. ``sweep.csv`` lists the plotted points.
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

from negtune.results import Results, finite_or_none, format_metric

METRICS = ("original", "negated", "mean")
COLORS = {"original": "tab:blue", "negated": "tab:red", "mean": "black"}
MACRO = "macro"


@dataclass
class Point:
    n_params: int
    model: str
    source: str
    values: dict[str, dict[str, Optional[float]]]  # panel (task or macro) -> metric -> value
    intervals: dict[str, dict[str, Optional[tuple[float, float]]]] = field(default_factory=dict)
    chance: dict[str, tuple[Optional[float], Optional[float]]] = field(default_factory=dict)


def interval(obj: Any, name: str) -> Optional[tuple[float, float]]:
    """The 95% interval the results file stores for a metric (``negtune.results``): a variant
    score's ``ci`` is its accuracy's ``(low, high)``; pair scores and the summary keep theirs in a
    ``ci`` dict by metric name. None when absent (results written before intervals existed)."""
    value = getattr(obj, "ci", None)
    if isinstance(value, dict):
        value = value.get(name)
    if isinstance(value, (list, tuple)) and len(value) == 2:
        low, high = finite_or_none(value[0]), finite_or_none(value[1])
        if low is not None and high is not None:
            return low, high
    return None


def _point(results: Results, source: str) -> Point:
    values: dict[str, dict[str, Optional[float]]] = {}
    intervals: dict[str, dict[str, Optional[tuple[float, float]]]] = {}
    chance: dict[str, tuple[Optional[float], Optional[float]]] = {}
    for task, entry in results.tasks.items():
        o, n = entry.variants.get("original"), entry.variants.get("negated")
        values[task] = {"original": finite_or_none(o.acc) if o else None,
                        "negated": finite_or_none(n.acc) if n else None, "mean": finite_or_none(entry.pairs.mean)}
        intervals[task] = {"original": interval(o, "acc") if o else None, "negated": interval(n, "acc") if n else None,
                           "mean": interval(entry.pairs, "mean")}
        chance[task] = (o.chance if o else None, n.chance if n else None)
    s = results.summary
    values[MACRO] = {"original": finite_or_none(s.original_acc), "negated": finite_or_none(s.negated_acc),
                     "mean": finite_or_none(s.mean)}
    intervals[MACRO] = {"original": interval(s, "original_acc"), "negated": interval(s, "negated_acc"),
                        "mean": interval(s, "mean")}
    return Point(int(results.n_params or 0), str(results.model or source), source, values, intervals, chance)


def series_name(results: Results) -> str:
    setting = results.prompting.describe() if results.prompting else "0-shot"
    untuned = results.adapter is None and results.checkpoint in (None, "base")
    tuned = "" if untuned else f", fine-tuned ({results.loss or 'ce'})"
    return f"{results.model_type or 'unknown'}, {setting}{tuned}"


def collect_series(files: Sequence[Path]) -> dict[str, list[Point]]:
    """Series with at least two sizes, each sorted by parameter count."""
    series: dict[str, list[Point]] = {}
    for f in files:
        results = Results.read(f)
        if not results.n_params:
            continue
        points = series.setdefault(series_name(results), [])
        if all(p.n_params != results.n_params for p in points):
            points.append(_point(results, str(f)))
    return {name: sorted(points, key=lambda p: p.n_params) for name, points in series.items() if len(points) >= 2}


def format_params(n: float) -> str:
    for unit, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g}{unit}"
    return f"{n:.0f}"


def render_sweep_csv(series: dict[str, list[Point]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["series", "model", "n_params", "task", *METRICS, "source"])
    for name, points in series.items():
        for p in points:
            for panel, vals in p.values.items():
                writer.writerow([name, p.model, p.n_params, panel,
                                 *(format_metric(vals[m], for_csv=True) for m in METRICS), p.source])
    return buf.getvalue()


def render_sweep_png(series: dict[str, list[Point]], path: Path) -> list[str]:
    """Draw the panels; return their names in order (task panels, then macro)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from negtune.io import atomic_path

    panels = list(dict.fromkeys(t for pts in series.values() for p in pts for t in p.values if t != MACRO)) + [MACRO]
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.4 * ncols, 4.2 * nrows), squeeze=False)
    styles = ["-", "--", ":", "-."]
    markers = ["o", "s", "^", "D", "v"]
    for ax, panel in zip(axes.flat, panels):
        for s_i, (name, points) in enumerate(series.items()):
            pts = [p for p in points if panel in p.values]
            xs = [p.n_params for p in pts]
            for metric in METRICS:
                ys = [p.values[panel][metric] for p in pts]
                keep = [i for i, y in enumerate(ys) if y is not None]
                if len(keep) < 1:
                    continue
                cis = [p.intervals.get(panel, {}).get(metric) for p in pts]
                err = None
                if any(cis[i] is not None for i in keep):
                    err = [[ys[i] - cis[i][0] if cis[i] else 0.0 for i in keep],
                           [cis[i][1] - ys[i] if cis[i] else 0.0 for i in keep]]
                ax.errorbar([xs[i] for i in keep], [ys[i] for i in keep], yerr=err, color=COLORS[metric],
                            linestyle=styles[s_i % len(styles)], marker=markers[s_i % len(markers)], capsize=3,
                            linewidth=1.4 if metric != "mean" else 1.0,
                            label=f"{metric}" + (f" ({name})" if len(series) > 1 else ""))
        chance = next((p.chance[panel] for pts in series.values() for p in pts if panel in p.chance), (None, None))
        for value, metric in zip(chance, ("original", "negated")):
            if value is not None:
                ax.axhline(value, color=COLORS[metric], linestyle=":", linewidth=0.8, alpha=0.6)
        ax.set_xscale("log")
        sizes = sorted({p.n_params for pts in series.values() for p in pts})
        ax.set_xticks(sizes)
        ax.set_xticklabels([format_params(n) for n in sizes], rotation=30, fontsize=8)
        ax.minorticks_off()
        ax.set_ylim(0, 1)
        ax.grid(True, alpha=0.3)
        ax.set_xlabel("parameters (log scale)")
        ax.set_ylabel("accuracy")
        ax.set_title(panel if panel != MACRO else "macro average over tasks")
        ax.legend(fontsize=7, loc="best")
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle("accuracy against model size" + (f" ({next(iter(series))})" if len(series) == 1 else ""))
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return panels


def write_sweep(files: Sequence[Path], out_dir: Path) -> Optional[dict[str, Any]]:
    """``sweep.png`` and ``sweep.csv`` in ``out_dir`` when the files hold a size sweep, else None."""
    from negtune.io import write_text

    series = collect_series(files)
    if not series:
        return None
    png, csv_path = out_dir / "sweep.png", out_dir / "sweep.csv"
    panels = render_sweep_png(series, png)
    write_text(csv_path, render_sweep_csv(series))
    return {"png": png, "csv": csv_path, "series": series, "panels": panels}
