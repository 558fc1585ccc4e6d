"""Seeds: runs of one setting that differ only in ``seed``, reported as mean ± std.

Why: one training run is one draw of the training randomness (data order, LoRA init,
dropout). Whether a loss's effect holds is whether it holds across seeds. Runs are grouped
when their resolved recipes (``RUN_DIR/recipe.resolved.yaml``) are equal apart from
``seed``, ``output_dir`` and ``train.resume``; within a group, rows of the same task and
checkpoint name (``step-N``) form one line: the mean and sample standard deviation (ddof=1)
over seeds and the seed count. The plot draws each seed's point faintly and the mean solidly.

Launching one recipe over several seeds is a shell loop (docs/statistics.md, "Seeds")::

    for s in 1 2 3; do negtune train recipes/demo.yaml seed=$s --out runs/ce-seed$s; done
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from negtune.evaluation.stats import mean_std
from negtune.report.rows import METRICS, Row

GROUP_METRICS = METRICS + ("reading_gain",)


@dataclass
class SeedGroup:
    task: str
    label: str
    checkpoint: Optional[str]
    rows: list[Row]  # one per seed, by seed
    stats: dict[str, tuple[float, Optional[float]]]  # metric -> (mean, std over seeds)

    @property
    def seeds(self) -> list[int]:
        return [r.seed for r in self.rows if r.seed is not None]


def _value(row: Row, metric: str) -> Optional[float]:
    if metric == "reading_gain":
        return row.gain["flip_rate"].diff if row.gain and "flip_rate" in row.gain else None
    return row.values.get(metric)


def _label(rows: list[Row], checkpoint: Optional[str]) -> str:
    names = [Path(r.run).name for r in rows if r.run]
    prefix = os.path.commonprefix(names).rstrip("-_. ") if names else ""
    name = prefix or rows[0].loss or "runs"
    return f"{name}*:{checkpoint}" if checkpoint else f"{name}*"


def group_seeds(rows: list[Row]) -> list[SeedGroup]:
    """Groups of at least two seeds, in the rows' order."""
    found: dict[tuple, dict[int, Row]] = {}
    for r in rows:
        if r.is_base or r.recipe_key is None or r.seed is None:
            continue
        found.setdefault((r.task, r.recipe_key, r.checkpoint), {}).setdefault(r.seed, r)
    groups = []
    for (task, _, checkpoint), by_seed in found.items():
        if len(by_seed) < 2:
            continue
        members = [by_seed[s] for s in sorted(by_seed)]
        stats = {}
        for metric in GROUP_METRICS:
            values = [v for r in members if (v := _value(r, metric)) is not None]
            if len(values) == len(members):
                stats[metric] = mean_std(values)
        groups.append(SeedGroup(task=task, label=_label(members, checkpoint), checkpoint=checkpoint,
                                rows=members, stats=stats))
    return groups


def mean_std_cell(stat: Optional[tuple[float, Optional[float]]], signed: bool = False) -> str:
    """``0.612 ± 0.031`` (a dash when missing)."""
    if stat is None:
        return "-"
    mean, std = stat
    text = f"{mean:+.3f}" if signed else f"{mean:.3f}"
    return text + (f" ± {std:.3f}" if std is not None else "")
