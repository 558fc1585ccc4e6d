"""The report's rows: one per (task, model / checkpoint), read from results files.

Inputs are results files given directly, run directories (``RUN_DIR/eval/*.json``) or a
directory of run directories. The base model evaluated inside several runs (each run's
``eval/base.json``) is shown once when the numbers agree; every row still knows its own
run's base (``Row.base``), against which its reading gain is measured. A row from a run
directory also knows the run's resolved recipe: its seed, the tasks it was trained on, and
its recipe without the seed (``negtune.report.seeds`` groups runs by that).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from negtune.data.tasks import TASKS
from negtune.errors import UserError
from negtune.results import Results, TaskResult, finite_or_none

METRICS = ("original", "negated", "mean", "both_correct", "flip_rate")


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
    ci: dict[str, tuple[float, float]] = field(default_factory=dict)  # 95% intervals by METRICS name
    results: Optional[Results] = field(default=None, repr=False)  # for paired comparisons
    base: Optional["Row"] = field(default=None, repr=False)  # the base model of the same run and task
    gain: Any = None  # reading gain against ``base`` (negtune.report.gain)
    seed: Optional[int] = None  # from the run's recipe.resolved.yaml
    recipe_key: Optional[str] = None  # the run's recipe minus seed and output paths (seed grouping)
    trained_tasks: tuple[str, ...] = ()  # the run's data.tasks (in-distribution vs held out)


# --------------------------------------------------------------------------- files


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


# --------------------------------------------------------------------------- run recipes

_NOT_SETTINGS = ("seed", "output_dir")  # what may differ between the seeds of one setting


def run_recipe(results: Results, path: Path) -> Optional[dict[str, Any]]:
    """The resolved recipe of the run a results file belongs to, as written (None outside a run
    or when unreadable). The file's location decides first (RUN_DIR/eval/x.json), then
    ``results.run``. Read as plain YAML: grouping needs equality, not validation."""
    import yaml

    candidates = [path.parent.parent] if path.parent.name == "eval" else []
    if results.run:
        candidates.append(Path(results.run))
    for run in candidates:
        if (run / "recipe.resolved.yaml").is_file():
            try:
                recipe = yaml.safe_load((run / "recipe.resolved.yaml").read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, yaml.YAMLError):
                return None
            return recipe if isinstance(recipe, dict) else None
    return None


def recipe_key(recipe: dict[str, Any]) -> str:
    """The recipe without what may differ between the seeds of one setting: the seed, the output
    directory and ``train.resume`` (a resumed run is the same run)."""
    rest = {k: v for k, v in recipe.items() if k not in _NOT_SETTINGS}
    rest["train"] = {k: v for k, v in (rest.get("train") or {}).items() if k != "resume"}
    return json.dumps(rest, sort_keys=True, default=str)


# --------------------------------------------------------------------------- rows


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


def _intervals(entry: TaskResult) -> dict[str, tuple[float, float]]:
    ci = {v: entry.variants[v].ci for v in ("original", "negated") if v in entry.variants}
    ci.update({k: entry.pairs.ci.get(k) for k in ("mean", "both_correct", "flip_rate")})
    return {k: v for k, v in ci.items() if v is not None}


def rows_from_results(results: Results, path: Path) -> list[Row]:
    label = _label(results, path)
    recipe = None if results.is_base else run_recipe(results, path)
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
            step=results.step, ci=_intervals(entry), results=results,
            seed=recipe.get("seed") if recipe else None, recipe_key=recipe_key(recipe) if recipe else None,
            trained_tasks=tuple((recipe.get("data") or {}).get("tasks") or ()) if recipe else (),
        ))
    return rows


def _run_dir(path: Path) -> Optional[str]:
    return str(path.resolve().parent.parent) if path.parent.name == "eval" else None


def collect_rows(files: list[Path]) -> list[Row]:
    rows: list[Row] = []
    seen_base: dict[tuple, Row] = {}
    base_of_run: dict[tuple[str, str], Row] = {}
    for f in files:
        for row in rows_from_results(Results.read(f), f):
            if row.is_base:
                key = (row.task, row.model, tuple(row.values.get(m) for m in METRICS), row.n)
                kept = seen_base.setdefault(key, row)
                for run in (_run_dir(f), row.run):
                    if run:
                        base_of_run[(row.task, run)] = kept
                if kept is not row:
                    continue
            rows.append(row)
    # Each row's base: the one in its run directory, else its run's, else the only one shown.
    for r in rows:
        if not r.is_base:
            only = [b for b in rows if b.is_base and b.task == r.task]
            r.base = (base_of_run.get((r.task, _run_dir(Path(r.source)) or "")) or base_of_run.get((r.task, r.run or ""))
                      or (only[0] if len(only) == 1 else None))
    # Distinct rows that would share a label get their run/source appended.
    by_label: dict[tuple[str, str], list[Row]] = {}
    for r in rows:
        by_label.setdefault((r.task, r.label), []).append(r)
    for group in by_label.values():
        if len(group) > 1:
            for r in group:
                r.label = f"{r.label} ({Path(r.run).name if r.run else Path(r.source).stem})"
    # Tasks the runs were trained on first, then held-out ones; base first, then by run and step.
    trained = {t for r in rows for t in r.trained_tasks}
    rows.sort(key=lambda r: (r.task not in trained, r.task, not r.is_base, r.run or "",
                             r.step if r.step is not None else -1, r.label))
    return rows
