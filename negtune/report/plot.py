"""``tradeoff.png``: per task, original accuracy (x) against negated accuracy (y).

One labelled point per model / checkpoint with its 95% intervals as error bars, the chance
levels (dotted) and the zero-sum line through the base model (dashed,
``x + y = x_base + y_base``): points on it traded one accuracy for the other; points above it
gained overall. Runs that differ only in seed are drawn as faint per-seed points plus one
solid point at their mean, with ± one standard deviation over seeds as error bars.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

from negtune.report.rows import Row
from negtune.report.seeds import SeedGroup


def _err(value: float, ci: Optional[tuple[float, float]]) -> Optional[list[list[float]]]:
    if not ci:
        return None
    return [[max(0.0, value - ci[0])], [max(0.0, ci[1] - value)]]


def _annotate(ax, text: str, x: float, y: float, color: str) -> None:
    right = x > 0.65  # keep labels inside the axes
    ax.annotate(text, (x, y), textcoords="offset points", xytext=(-6 if right else 6, 6), fontsize=8,
                color=color, ha="right" if right else "left")


def render_png(rows: list[Row], path: Path, title: str, groups: list[SeedGroup] = ()) -> bool:
    """Write the trade-off plot; False when no row has both accuracies."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from negtune.io import atomic_path

    def plotted(r: Row) -> bool:
        return r.values["original"] is not None and r.values["negated"] is not None

    tasks = [t for t in dict.fromkeys(r.task for r in rows) if any(plotted(r) for r in rows if r.task == t)]
    if not tasks:
        return False
    in_group = {id(r) for g in groups for r in g.rows}
    ncols = min(3, len(tasks))
    nrows = math.ceil(len(tasks) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.2 * ncols, 5.0 * nrows), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, task in zip(axes.flat, tasks):
        trows = [r for r in rows if r.task == task and plotted(r)]
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
            faint = id(r) in in_group
            ax.errorbar([x], [y], xerr=_err(x, r.ci.get("original")), yerr=_err(y, r.ci.get("negated")),
                        fmt="s" if r.is_base else "o", markersize=4 if faint else 7, color=color,
                        alpha=0.3 if faint else 1.0, elinewidth=0.8, capsize=2, zorder=3)
            if not faint:
                text = r.label if r.is_base or not r.loss or r.loss in r.label else f"{r.label} [{r.loss}]"
                _annotate(ax, text, x, y, color)
        for k, g in enumerate([g for g in groups if g.task == task]):
            if "original" not in g.stats or "negated" not in g.stats:
                continue
            (x, sx), (y, sy) = g.stats["original"], g.stats["negated"]
            color = colors[(len(trows) + k) % len(colors)]
            ax.errorbar([x], [y], xerr=sx or 0.0, yerr=sy or 0.0, fmt="D", markersize=7, color=color,
                        elinewidth=1.2, capsize=3, zorder=4)
            _annotate(ax, f"{g.label} (mean of {len(g.rows)} seeds)", x, y, color)
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
