"""Two real tiny training runs that differ only in `seed` are one group in `negtune report`."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # in-process training runs

REPO = Path(__file__).resolve().parents[2]
TINY = ["data.max_instances=12", "eval.max_instances=8", "train.max_steps=2", "train.per_device_batch_size=4",
        "eval.batch_size=8", "model.max_length=48", "model.lora.r=2",
        f"data.files.demo={REPO / 'data/demo/train.jsonl'}", f"eval.files.demo={REPO / 'data/demo/test.jsonl'}"]


def test_two_tiny_runs_differing_only_in_seed(tiny_opt_dir, tmp_path):
    import torch

    from negtune.evaluation.jobs import evaluate_run
    from negtune.evaluation.stats import mean_std
    from negtune.report import write_report
    from negtune.training.cli import main as train_main

    torch.set_num_threads(1)
    runs = tmp_path / "runs"
    for seed in (1, 2):  # the documented loop: negtune train RECIPE seed=$s --out runs/ce-seed$s
        run = runs / f"ce-seed{seed}"
        assert train_main([str(REPO / "recipes" / "demo.yaml"), *TINY, f"model.name_or_path={tiny_opt_dir}",
                           f"seed={seed}", "--out", str(run)]) == 0
        evaluate_run(run, progress=False, log=lambda s: None)
    res = write_report([str(runs)], tmp_path / "rep")
    [group] = res["groups"]
    assert group.seeds == [1, 2] and group.checkpoint == "step-000002" and group.label == "ce-seed*:step-000002"
    members = [r for r in res["rows"] if not r.is_base]
    assert sorted(r.seed for r in members) == [1, 2]
    for metric in ("original", "negated", "flip_rate"):
        assert group.stats[metric] == pytest.approx(mean_std([r.values[metric] for r in members]))
    [row] = list(csv.DictReader((tmp_path / "rep" / "seeds.csv").open()))
    assert row["n_seeds"] == "2" and row["seeds"] == "1 2"
    assert "| demo | ce-seed*:step-000002 | 2 (1, 2) |" in (tmp_path / "rep" / "report.md").read_text()
