"""RUN_DIR/eval/summary.csv|md carry each metric's 95% interval."""
from __future__ import annotations

import csv

import pytest

from helpers import outcome_results
from negtune.evaluation.stats import wilson
from negtune.evaluation.summaries import write_run_summary


def test_summary_has_interval_columns(tmp_path):
    run = tmp_path / "run"
    (run / "eval").mkdir(parents=True)
    res = outcome_results([True] * 30 + [False] * 10, [True] * 8 + [False] * 32, run=str(run), checkpoint="base")
    res.write(run / "eval" / "base.json")
    csv_path, md_path = write_run_summary(run)
    rows = {r["task"]: r for r in csv.DictReader(csv_path.open())}
    low, high = wilson(30, 40).as_tuple()
    assert float(rows["t"]["original_acc_low"]) == pytest.approx(low, abs=1e-6)
    assert float(rows["t"]["original_acc_high"]) == pytest.approx(high, abs=1e-6)
    flip = res.tasks["t"].pairs.ci["flip_rate"]
    assert float(rows["t"]["flip_rate_low"]) == pytest.approx(flip[0], abs=1e-6)
    assert float(rows["macro"]["mean_high"]) == pytest.approx(res.summary.ci["mean"][1], abs=1e-6)
    assert f"| 0.750 [{low:.3f}, {high:.3f}] |" in md_path.read_text()
