"""Evaluation across processes: token-balanced item shards, checkpoint split, and 2 real gloo
processes (``accelerate launch``) against one process."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import failure, launch_two_processes

from negtune.errors import UserError
from negtune.evaluation.distributed import Processes, merge_scores, split_checkpoints
from negtune.evaluation.scoring import OptionScore, shard_items

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def test_shards_are_balanced_by_tokens_and_deterministic():
    costs = [500, 10, 10, 10, 10, 480, 20, 7, 300, 300, 5]
    owner = shard_items(costs, 2)
    assert owner == shard_items(costs, 2)
    loads = [sum(c for c, o in zip(costs, owner) if o == r) for r in range(2)]
    assert abs(loads[0] - loads[1]) <= max(costs[i] for i in range(len(costs)) if costs[i] < 500)
    assert owner[0] != owner[5]  # the two big items go to different processes
    assert sorted(set(shard_items(costs, 3))) == [0, 1, 2] and shard_items(costs, 1) == [0] * len(costs)


def test_checkpoints_split_whole_then_by_items():
    names = ["base", "step-1", "step-2"]
    assert split_checkpoints(names, 2) == ({0: ["base"], 1: ["step-1"]}, ["step-2"])
    assert split_checkpoints(names, 1) == ({0: names}, [])
    assert split_checkpoints(["base"], 4) == ({0: [], 1: [], 2: [], 3: []}, ["base"])
    own, shared = split_checkpoints([f"s{i}" for i in range(7)], 3)
    assert own == {0: ["s0", "s3"], 1: ["s1", "s4"], 2: ["s2", "s5"]} and shared == ["s6"]


def test_merge_scores_and_errors():
    a = [[OptionScore(-1.0, 1)], [None, None]]
    b = [[None], [OptionScore(-2.0, 1), OptionScore(-3.0, 2)]]
    assert merge_scores([a, b]) == [[OptionScore(-1.0, 1)], [OptionScore(-2.0, 1), OptionScore(-3.0, 2)]]
    with pytest.raises(RuntimeError, match="scored by no process"):
        merge_scores([a, a])
    with pytest.raises(UserError, match="bad"):
        Processes().all_ok(lambda: (_ for _ in ()).throw(UserError("bad")))


# --------------------------------------------------------------------------- 2 gloo processes


def env() -> dict:
    e = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    e.pop("WORLD_SIZE", None)
    return e


def launch(args: list[str], processes: int) -> subprocess.CompletedProcess:
    if processes == 1:
        p = subprocess.run([str(BIN / "negtune"), "eval", *args], capture_output=True, text=True, env=env(),
                           cwd=REPO, timeout=600)
    else:
        p = launch_two_processes(["-m", "negtune.cli", "eval", *args], env())
    assert p.returncode == 0, failure(p)
    return p


def scores_by_option(path: Path) -> dict:
    return {(r["task"], r["variant"], r["pair_id"], r["option_index"]): r["loglik"]
            for r in map(json.loads, path.read_text().splitlines())}


def accuracies(res: dict) -> dict:
    return {t: {k: v for k, v in entry.items() if k != "tok_mean"} for t, entry in res["tasks"].items()}


@pytest.fixture(scope="module")
def csvs(tmp_path_factory):
    sys.path.insert(0, str(Path(__file__).parent))
    from test_fewshot import csv_pair

    d = tmp_path_factory.mktemp("csv")
    return csv_pair(d, n=24)


@pytest.mark.slow
@pytest.mark.parametrize("extra", [[], ["--fewshot", "2", "--fewshot-source", "eval"]], ids=["zero-shot", "2-shot"])
def test_two_processes_match_one_process(tiny_opt_dir, csvs, tmp_path, extra):
    o, n = csvs
    common = ["--model", str(tiny_opt_dir), "--csv", str(o), "--csv", str(n), "--batch-size", "5", "--quiet", *extra]
    one = launch(common + ["--out", str(tmp_path / "r1.json"), "--scores", str(tmp_path / "s1.jsonl")], 1)
    two = launch(common + ["--out", str(tmp_path / "r2.json"), "--scores", str(tmp_path / "s2.jsonl")], 2)
    r1, r2 = (json.loads((tmp_path / f"r{i}.json").read_text()) for i in (1, 2))
    assert r1["scoring"]["processes"] == 1 and r2["scoring"]["processes"] == 2
    assert accuracies(r1) == accuracies(r2) and r1["summary"] == r2["summary"]
    s1, s2 = scores_by_option(tmp_path / "s1.jsonl"), scores_by_option(tmp_path / "s2.jsonl")
    assert s1.keys() == s2.keys() and max(abs(s1[k] - s2[k]) for k in s1) < 1e-5
    shares = [int(line.split("scored ")[1].split(" of")[0]) for line in two.stderr.splitlines()
              if line.startswith("eval: process ")]
    assert len(shares) == 2 and sum(shares) == 48 and min(shares) >= 18  # both processes did about half
    assert two.stdout.count("wrote ") == 1  # rank 0 writes and prints
    assert one.stdout.splitlines()[:3] == two.stdout.splitlines()[:3]  # the same table


@pytest.mark.slow
def test_run_dir_on_two_processes(tiny_opt_dir, csvs, tmp_path):
    import yaml

    from helpers import build_tiny_opt, write_trainer_state

    o, n = csvs
    run = tmp_path / "run"
    recipe = {"model": {"name_or_path": str(tiny_opt_dir)},
              "eval": {"batch_size": 4, "csv": [{"name": "toy", "files": {"original": str(o), "negated": str(n)}}]}}
    (run / "checkpoints").mkdir(parents=True)
    (run / "recipe.resolved.yaml").write_text(yaml.safe_dump(recipe))
    for step, seed in ((1, 5), (2, 6)):
        ckpt = run / "checkpoints" / f"step-00000{step}"
        build_tiny_opt(ckpt / "model", seed=seed)
        write_trainer_state(ckpt, step=step, kind="full", base_model=str(tiny_opt_dir))
    run1 = tmp_path / "run1"
    shutil.copytree(run, run1)
    launch([str(run1), "--quiet"], 1)
    p = launch([str(run), "--quiet"], 2)
    # base -> process 1, step-000001 -> process 2 (whole checkpoints); step-000002 split by items
    assert "eval run: base (process 1/2)" in p.stderr and "eval run: step-000001 (process 2/2)" in p.stderr
    assert p.stderr.count("eval run: step-000002") == 2 and p.stderr.count("eval: process ") == 2
    for name in ("base", "step-000001", "step-000002"):
        a, b = (json.loads((d / "eval" / f"{name}.json").read_text()) for d in (run1, run))
        assert accuracies(a) == accuracies(b), name
        assert b["scoring"]["processes"] == (2 if name == "step-000002" else 1)
    assert (run / "eval" / "summary.csv").read_text() == (run1 / "eval" / "summary.csv").read_text()
    assert "evaluated: base, step-000001, step-000002" in p.stdout
