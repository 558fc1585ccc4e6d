"""`negtune report` with intervals, the reading gain, seed groups, side-by-side tasks and
--compare-base, from results built through the evaluator's own metrics (hand-known outcomes)."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from helpers import outcome_results
from negtune.evaluation.comparisons import mcnemar_exact
from negtune.evaluation.stats import bootstrap_indices, task_seed, wilson
from negtune.report import write_report

N = 40
BASE = ([True] * 30 + [False] * 10, [False] * 32 + [True] * 8)  # reads no negation: right, then wrong again


def _recipe(run: Path, seed: int, lr: float = 1e-3, tasks=("t",)) -> None:
    recipe = {"seed": seed, "output_dir": str(run), "model": {"name_or_path": "m"},
              "data": {"tasks": list(tasks), "variants": ["negated"]}, "train": {"lr": lr, "resume": None},
              "loss": {"name": "ce"}}
    (run / "recipe.resolved.yaml").write_text(yaml.safe_dump(recipe))


def _run(root: Path, name: str, seed: int, outcomes: dict, lr: float = 1e-3, step: int = 10) -> Path:
    """A run directory: recipe.resolved.yaml, eval/base.json and eval/step-N.json per task outcomes."""
    run = root / name
    (run / "eval").mkdir(parents=True)
    _recipe(run, seed, lr)
    base = outcome_results(*BASE, run=str(run), checkpoint="base")
    ck = outcome_results(*outcomes["t"], run=str(run), checkpoint=f"step-{step:06d}", loss="ce", step=step)
    for extra, (o, g) in outcomes.items():
        if extra != "t":
            base.tasks[extra] = outcome_results(*BASE, task=extra).tasks[extra]
            ck.tasks[extra] = outcome_results(o, g, task=extra).tasks[extra]
    base.write(run / "eval" / "base.json")
    ck.write(run / "eval" / f"step-{step:06d}.json")
    return run


def _csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.open()))


def test_intervals_and_reading_gain(tmp_path, monkeypatch):
    import matplotlib.axes

    bars = []
    real = matplotlib.axes.Axes.errorbar
    monkeypatch.setattr(matplotlib.axes.Axes, "errorbar",
                        lambda self, x, y, **kw: bars.append((x, y, kw)) or real(self, x, y, **kw))
    # the checkpoint reads the negation on items 0-19: right under both prompts there
    ck = ([True] * 30 + [False] * 10, [True] * 20 + [False] * 20)
    _run(tmp_path, "ce", 1, {"t": ck})
    res = write_report([str(tmp_path / "ce")], tmp_path / "rep")
    rows = {r["label"]: r for r in _csv(tmp_path / "rep" / "report.csv")}
    base, row = rows["base"], rows["ce:step-000010"]
    low, high = wilson(30, N).as_tuple()
    assert float(row["original_low"]) == pytest.approx(low, abs=1e-6)
    assert float(row["original_high"]) == pytest.approx(high, abs=1e-6)
    # picks: right -> the gold option (' yes' original, ' no' negated); a flip is a change of pick
    def picks(o, g):
        return [("y" if a else "n") + ("n" if b else "y") for a, b in zip(o, g)]
    f_base = np.array([p[0] != p[1] for p in picks(*BASE)])
    f_ck = np.array([p[0] != p[1] for p in picks(*ck)])
    assert float(base["flip_rate"]) == pytest.approx(f_base.mean())
    assert float(row["reading_gain"]) == pytest.approx(f_ck.mean() - f_base.mean())
    b01, b10 = int((~f_base & f_ck).sum()), int((f_base & ~f_ck).sum())
    assert float(row["reading_gain_p"]) == mcnemar_exact(b01, b10)
    diffs = [f_ck[r].mean() - f_base[r].mean() for r in bootstrap_indices(N, 2000, task_seed(0, "t"))]
    q = np.quantile(diffs, [0.025, 0.975])
    assert float(row["reading_gain_low"]) == pytest.approx(q[0], abs=1e-6)
    assert float(row["reading_gain_high"]) == pytest.approx(q[1], abs=1e-6)
    assert float(row["both_correct_gain"]) == pytest.approx(20 / N)
    md = (tmp_path / "rep" / "report.md").read_text()
    assert f"| 0.750 [{low:.3f}, {high:.3f}] |" in md
    assert "Reading gain against the base model" in md and f"| {f_ck.mean():.3f} | {f_ck.mean() - f_base.mean():+.3f} [" in md
    # error bars: the checkpoint's x error spans its Wilson interval
    ck_bar = [b for b in bars if b[1] == [0.5]][0]
    xerr = ck_bar[2]["xerr"]
    assert xerr[0][0] == pytest.approx(0.75 - low) and xerr[1][0] == pytest.approx(high - 0.75)
    assert res["png"] is not None


def test_seed_groups_mean_std_and_faint_points(tmp_path, monkeypatch):
    import matplotlib.axes

    bars = []
    real = matplotlib.axes.Axes.errorbar
    monkeypatch.setattr(matplotlib.axes.Axes, "errorbar",
                        lambda self, x, y, **kw: bars.append((x, y, kw)) or real(self, x, y, **kw))
    negs = {1: [True] * 20 + [False] * 20, 2: [True] * 24 + [False] * 16, 3: [True] * 28 + [False] * 12}
    for s, g in negs.items():
        _run(tmp_path / "runs", f"ce-seed{s}", s, {"t": ([True] * 30 + [False] * 10, g)})
    _run(tmp_path / "runs", "ce-lr", 1, {"t": ([True] * 10 + [False] * 30, negs[1])}, lr=5e-4)  # another setting
    res = write_report([str(tmp_path / "runs")], tmp_path / "rep")
    [group] = res["groups"]
    assert group.seeds == [1, 2, 3] and group.label == "ce-seed*:step-000010"
    mean, std = group.stats["negated"]
    assert mean == pytest.approx(24 / 40) and std == pytest.approx(np.std([20 / 40, 24 / 40, 28 / 40], ddof=1))
    md = (tmp_path / "rep" / "report.md").read_text()
    assert f"| t | ce-seed*:step-000010 | 3 (1, 2, 3) | 0.750 ± 0.000 | 0.600 ± {std:.3f} |" in md
    seeds = _csv(tmp_path / "rep" / "seeds.csv")
    assert len(seeds) == 1 and seeds[0]["n_seeds"] == "3" and float(seeds[0]["negated_mean"]) == pytest.approx(0.6)
    assert [r["seed"] for r in _csv(tmp_path / "rep" / "report.csv")] == ["", "1", "1", "2", "3"]
    faint = [b for b in bars if b[2].get("alpha") == 0.3]
    assert sorted(b[1][0] for b in faint) == [0.5, 0.6, 0.7]  # each seed, faintly
    solid_mean = [b for b in bars if b[2].get("fmt") == "D"]
    assert solid_mean[0][1] == [pytest.approx(0.6)] and solid_mean[0][2]["yerr"] == pytest.approx(std)


def test_side_by_side_and_compare_base(tmp_path):
    ck = {"t": ([True] * 30 + [False] * 10, [True] * 20 + [False] * 20),
          "heldout": ([True] * 20 + [False] * 20, [False] * 40)}
    _run(tmp_path, "ce", 1, ck)
    write_report([str(tmp_path / "ce")], tmp_path / "rep", compare_base=True)
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "| model / checkpoint | t (trained on) | heldout (held out) |" in md
    assert "| base | 0.750 / 0.200 | 0.750 / 0.200 |" in md
    cmp = _csv(tmp_path / "rep" / "compare.csv")
    neg = [r for r in cmp if r["task"] == "t" and r["metric"] == "negated"][0]
    assert neg["model"] == "ce:step-000010" and float(neg["diff"]) == pytest.approx((20 - 8) / 40)
    assert "# B − A" in (tmp_path / "rep" / "compare.md").read_text()


def test_report_of_results_without_item_records(tmp_path):
    """Older results (no items, no intervals) still report: plain numbers, point gain only."""
    run = _run(tmp_path, "ce", 1, {"t": ([True] * 30 + [False] * 10, [True] * 20 + [False] * 20)})
    for f in (run / "eval").glob("*.json"):
        d = json.loads(f.read_text())
        for t in d["tasks"].values():
            t.pop("items"), t.pop("ci")
            for v in ("original", "negated"):
                t[v].pop("ci")
        f.write_text(json.dumps(d))
    write_report([str(run)], tmp_path / "rep")
    row = [r for r in _csv(tmp_path / "rep" / "report.csv") if r["label"] == "ce:step-000010"][0]
    assert row["reading_gain"] != "" and row["reading_gain_low"] == "" and row["original_low"] == ""
    assert "[95% CI]" in (tmp_path / "rep" / "report.md").read_text()
