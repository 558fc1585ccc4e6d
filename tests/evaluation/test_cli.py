"""`negtune eval` end to end on small CSVs, every bad input, and run-directory jobs."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from negtune.cli import main as cli_main

HEADER = "sample_id,prompt,classes,answer_index\n"
ORIG = HEADER + "".join(
    f'{i},"Question: what is {w}? Answer is","[\' {w}\', \' dog\', \' cat\', \' red\']",0\n'
    for i, w in enumerate(["apple", "green", "blue", "Paris", "fox"])
)
NEG = HEADER + "".join(
    f'{i},"Question: what is not {w}? Answer is","[\' {w}\', \' dog\', \' cat\', \' red\']","1,2,3"\n'
    for i, w in enumerate(["apple", "green", "blue", "Paris", "fox"])
)


@pytest.fixture()
def csvs(tmp_path):
    o = tmp_path / "toy_q_5.csv"
    n = tmp_path / "toy_q_negation_5.csv"
    o.write_text(ORIG)
    n.write_text(NEG)
    return o, n


def run(argv):
    return cli_main(["eval", *map(str, argv)])


def test_negated_file_named_negated_pairs_with_its_original(tiny_opt_dir, tmp_path):
    """One rule for a negated file's name ("negation" or "negated"): a file named ..._negated_...
    used to be read as a second original file and collide with the real one."""
    from negtune.data.paper_csv import guess_variant, read_paper_csv

    o, n = tmp_path / "toy_q_5.csv", tmp_path / "toy_q_negated_5.csv"
    o.write_text(ORIG)
    n.write_text(NEG)
    assert guess_variant(n) == "negated" and read_paper_csv(n)[0].variant == "negated"
    out = tmp_path / "r.json"
    assert run(["--model", tiny_opt_dir, "--csv", o, "--csv", n, "--out", out, "--quiet"]) == 0
    t = json.loads(out.read_text())["tasks"]["toy_q"]
    assert t["n_pairs"] == 5 and t["negated"]["n"] == 5


def test_end_to_end_csv(tiny_opt_dir, csvs, tmp_path, capsys):
    o, n = csvs
    out, scores = tmp_path / "r.json", tmp_path / "s.jsonl"
    assert run(["--model", tiny_opt_dir, "--csv", o, "--csv", f"negated={n}", "--out", out, "--scores", scores,
                "--batch-size", "3", "--quiet"]) == 0
    res = json.loads(out.read_text())
    t = res["tasks"]["toy_q"]
    assert t["original"]["n"] == 5 and t["negated"]["n"] == 5 and t["n_pairs"] == 5
    assert res["summary"]["n_tasks"] == 1 and res["tokenization"] == "joint"
    assert set(res["versions"]) >= {"negtune", "torch", "transformers", "peft"}
    rows = [json.loads(line) for line in scores.read_text().splitlines()]
    assert len(rows) == 40 and {"source", "variant", "sample_id", "option", "loglik", "n_tokens"} <= set(rows[0])
    # acc recomputed from the dump
    for var in ("original", "negated"):
        right = 0
        for sid in map(str, range(5)):
            opts = [r for r in rows if r["variant"] == var and r["sample_id"] == sid]
            best = max(opts, key=lambda r: r["loglik"])
            right += best["gold"]
        assert t[var]["acc"] == right / 5
    # --limit, separate tokenization, plain method give a consistent subset
    out2 = tmp_path / "r2.json"
    assert run(["--model", tiny_opt_dir, "--csv", o, "--csv", n, "--limit", "2", "--out", out2,
                "--method", "plain", "--quiet"]) == 0
    assert json.loads(out2.read_text())["tasks"]["toy_q"]["n_pairs"] == 2


def test_swapped_order_pairs_by_text(tiny_opt_dir, tmp_path):
    o = tmp_path / "sw_3.csv"
    n = tmp_path / "sw_negation_3.csv"
    o.write_text(HEADER + "0,Q: a? Answer:,\"[' red', ' blue']\",0\n1,Q: b? Answer:,\"[' cat', ' dog']\",1\n")
    n.write_text(HEADER + "0,Q: not a? Answer:,\"[' blue', ' red']\",0\n1,Q: not b? Answer:,\"[' cat', ' dog']\",0\n")
    out, sc = tmp_path / "r.json", tmp_path / "s.jsonl"
    assert run(["--model", tiny_opt_dir, "--csv", o, "--csv", n, "--out", out, "--scores", sc, "--quiet"]) == 0
    t = json.loads(out.read_text())["tasks"]["sw"]
    rows = [json.loads(line) for line in sc.read_text().splitlines()]
    chosen = {}
    for r in rows:
        key = (r["variant"], r["sample_id"])
        if key not in chosen or r["loglik"] > chosen[key]["loglik"]:
            chosen[key] = r
    # flip_rate is the share of items whose chosen option TEXT changed (not its index)
    flips = [chosen[("original", s)]["option"] != chosen[("negated", s)]["option"] for s in ("0", "1")]
    assert t["flip_rate"] == sum(flips) / 2 and t["n_pairs"] == 2


BAD = {
    "missing_column": "sample_id,prompt,classes\n0,q,\"[' a', ' b']\"\n",
    "bad_options": HEADER + "0,q,\"[' a', ' b'\",0\n",
    "index_range": HEADER + "0,q,\"[' a', ' b']\",2\n",
    "empty": "",
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_csv(tiny_opt_dir, tmp_path, capsys, case):
    f = tmp_path / f"{case}.csv"
    f.write_text(BAD[case])
    out = tmp_path / "r.json"
    assert run(["--model", tiny_opt_dir, "--csv", f, "--out", out]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(f) in err
    assert not out.exists()


def test_bad_inputs(tiny_opt_dir, csvs, tmp_path, capsys):
    o, n = csvs
    out = tmp_path / "r.json"
    mism = tmp_path / "toy_q_negation_7.csv"
    mism.write_text(NEG.replace("\n0,", "\n10,"))
    cases = [
        ["--model", tmp_path / "nope", "--csv", o, "--out", out],
        ["--model", "someone/not-cached-model-xyz", "--csv", o, "--out", out],
        ["--model", tiny_opt_dir, "--csv", o, "--csv", f"negated={mism}", "--out", out],
        ["--model", tiny_opt_dir, "--out", out],
        [],
        ["--model", tiny_opt_dir, "--csv", tmp_path / "missing.csv", "--out", out],
        ["--model", tiny_opt_dir, "--csv", o, "--limit", "0"],
    ]
    for argv in cases:
        assert run(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, err
        assert not out.exists()
    run(["--model", "someone/not-cached-model-xyz", "--csv", o])
    assert "offline" in capsys.readouterr().err


def test_real_paper_csvs(tiny_opt_dir, paper_eval_dir, tmp_path):
    out = tmp_path / "r.json"
    d = paper_eval_dir
    assert run(["--model", tiny_opt_dir, "--quiet", "--limit", "3", "--out", out,
                "--csv", d / "triviaqa_correct_answer_300.csv", "--csv", d / "triviaqa_correct_answer_negation_300.csv",
                "--csv", d / "ai2_arc_q_a_300.csv", "--csv", d / "ai2_arc_q_a_negation_300.csv"]) == 0
    res = json.loads(out.read_text())
    assert set(res["tasks"]) == {"triviaqa_correct_answer", "ai2_arc_q_a"}
    assert all(t["n_pairs"] == 3 for t in res["tasks"].values())
    # WebQ: ids differ between the two files -> error by default, pairs by question text on request
    web = ["--csv", d / "webqa_correct_answer_300.csv", "--csv", d / "webqa_correct_answer_negation_300.csv"]
    assert run(["--model", tiny_opt_dir, "--quiet", "--limit", "3", "--out", out, *web]) == 2
    assert run(["--model", tiny_opt_dir, "--quiet", "--limit", "3", "--out", out, "--pair-by", "prompt", *web]) == 0
    assert json.loads(out.read_text())["tasks"]["webqa_correct_answer"]["n_pairs"] == 3


@pytest.mark.slow
def test_subprocess_one_line_error(tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    exe = Path(sys.executable).parent / "negtune"
    p = subprocess.run([str(exe), "eval", "--model", str(tmp_path / "x"), "--csv", str(tmp_path / "y.csv")],
                       capture_output=True, text=True, env=env)
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1


# --------------------------------------------------------------------------- run directories


@pytest.fixture()
def run_dir(tiny_opt_dir, csvs, tmp_path):
    import yaml
    from peft import LoraConfig, get_peft_model

    from helpers import build_tiny_opt, write_trainer_state
    from negtune.models import load_causal_lm

    o, n = csvs
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    recipe = {"model": {"name_or_path": str(tiny_opt_dir)},
              "eval": {"batch_size": 4, "csv": [{"name": "toy", "files": {"original": str(o), "negated": str(n)}}]}}
    (run / "recipe.resolved.yaml").write_text(yaml.safe_dump(recipe))
    full = run / "checkpoints" / "step-000010"
    build_tiny_opt(full / "model", seed=3)
    write_trainer_state(full, step=10, kind="full", base_model=str(tiny_opt_dir))
    ad = run / "checkpoints" / "step-000020"
    pm = get_peft_model(load_causal_lm(str(tiny_opt_dir)),
                        LoraConfig(r=2, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    pm.save_pretrained(ad / "model")
    write_trainer_state(ad, step=20, kind="adapter", base_model=str(tiny_opt_dir))
    (run / "checkpoints" / "step-000030").mkdir()  # incomplete: no trainer_state.json -> ignored
    return run


def test_run_dir_resume(run_dir, monkeypatch, capsys):
    import negtune.evaluation.jobs as jobs

    calls = []
    real = jobs.evaluate_model

    def counting(*a, **k):
        calls.append(k["info"]["checkpoint"])
        return real(*a, **k)

    monkeypatch.setattr(jobs, "evaluate_model", counting)
    assert run([run_dir, "--quiet"]) == 0
    assert calls == ["base", "step-000010", "step-000020"]
    ev = run_dir / "eval"
    results = {p.stem: json.loads(p.read_text()) for p in ev.glob("*.json")}
    assert set(results) == {"base", "step-000010", "step-000020"}
    assert results["step-000020"]["adapter"].endswith("model")
    assert results["base"]["summary"] != results["step-000020"]["summary"] or \
        results["base"]["tasks"] != results["step-000020"]["tasks"]
    csv_lines = (ev / "summary.csv").read_text().splitlines()
    assert len(csv_lines) == 1 + 3 * 2 and (ev / "summary.md").is_file()
    mtimes = {p.name: p.stat().st_mtime_ns for p in ev.glob("*.json")}

    # second invocation: nothing to do
    calls.clear()
    assert run([run_dir, "--quiet"]) == 0
    assert calls == []
    assert {p.name: p.stat().st_mtime_ns for p in ev.glob("*.json")} == mtimes

    # a job killed while writing step-000020 leaves only a temp file: it is redone, nothing else
    (ev / "step-000020.json").unlink()
    (ev / ".step-000020.json.abc.tmp").write_text("{partial")
    assert run([run_dir, "--quiet"]) == 0
    assert calls == ["step-000020"]


def test_adapter_eval_matches_run_job(run_dir, tmp_path):
    """--adapter on the CLI (PEFT unmerged) gives the run job's numbers for that checkpoint."""
    import negtune.evaluation.jobs as jobs

    jobs.evaluate_run(run_dir, progress=False)
    out = tmp_path / "a.json"
    rec = yaml_load(run_dir / "recipe.resolved.yaml")
    files = rec["eval"]["csv"][0]["files"]
    assert run(["--model", rec["model"]["name_or_path"], "--adapter", run_dir / "checkpoints/step-000020/model",
                "--csv", files["original"], "--csv", files["negated"], "--out", out, "--quiet"]) == 0
    a = json.loads(out.read_text())["tasks"]["toy_q"]
    b = json.loads((run_dir / "eval/step-000020.json").read_text())["tasks"]["toy"]
    assert a["original"] == b["original"] and a["negated"] == b["negated"]


def yaml_load(p):
    import yaml

    return yaml.safe_load(Path(p).read_text())


# --------------------------------------------------------------------------- never lose results, never report NaN


def _one_line(capsys) -> str:
    """One error line, no traceback (negtune's own progress lines may precede it)."""
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("negtune: error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


def test_nan_loglikelihoods_are_refused(tiny_opt_dir, csvs, tmp_path, capsys):
    """A model with NaN weights used to score accuracy 1.000 with "loglik": NaN in the scores."""
    import shutil

    import torch
    from transformers import AutoModelForCausalLM

    broken = tmp_path / "nan-model"
    shutil.copytree(tiny_opt_dir, broken)
    model = AutoModelForCausalLM.from_pretrained(broken)
    with torch.no_grad():
        model.lm_head.weight.fill_(float("nan"))
    model.save_pretrained(broken)
    o, n = csvs
    out, scores = tmp_path / "r.json", tmp_path / "s.jsonl"
    assert run(["--model", broken, "--csv", o, "--csv", n, "--out", out, "--scores", scores, "--quiet"]) == 2
    assert "non-finite log-likelihood" in _one_line(capsys)
    assert not out.exists() and not scores.exists()


def test_outputs_are_checked_before_scoring(tiny_opt_dir, csvs, tmp_path, capsys, monkeypatch):
    import negtune.models

    monkeypatch.setattr(negtune.models, "load_for_eval", lambda *a, **k: pytest.fail("model loaded before check"))
    o, n = csvs
    mine = tmp_path / "notes.md"
    mine.write_text("# mine")
    for argv in (["--out", mine], ["--scores", mine], ["--out", mine / "r.json"], ["--out", tmp_path]):
        assert run(["--model", tiny_opt_dir, "--csv", o, "--csv", n, *argv]) == 2
        _one_line(capsys)
    assert mine.read_text() == "# mine"


def test_explicit_variants_pair_consecutively_or_by_name(tiny_opt_dir, csvs, tmp_path, capsys):
    """--csv original=A --csv negated=B with different stems used to make two unpaired sets."""
    import shutil

    o, n = csvs
    b = tmp_path / "other_name.csv"
    shutil.copy(n, b)
    out = tmp_path / "r.json"
    assert run(["--model", tiny_opt_dir, "--csv", f"original={o}", "--csv", f"negated={b}", "--out", out,
                "--quiet"]) == 0
    assert json.loads(out.read_text())["tasks"]["toy_q"]["n_pairs"] == 5
    assert run(["--model", tiny_opt_dir, "--csv", f"mine:negated={b}", "--csv", f"mine:original={o}", "--out", out,
                "--quiet"]) == 0
    assert json.loads(out.read_text())["tasks"]["mine"]["n_pairs"] == 5
    capsys.readouterr()
    assert run(["--model", tiny_opt_dir, "--csv", f"negated={b}", "--out", out, "--quiet"]) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if line.startswith("negtune: note")]
    assert len(notes) == 1 and "no original one" in notes[0]


def test_damaged_model_adapter_and_checkpoint_are_one_line(tiny_opt_dir, csvs, run_dir, tmp_path, capsys):
    import shutil

    o, n = csvs
    broken = tmp_path / "broken"
    shutil.copytree(tiny_opt_dir, broken)
    (broken / "model.safetensors").write_bytes(b"garbage" * 10)
    assert run(["--model", broken, "--csv", o, "--quiet"]) == 2
    assert "cannot load weights" in _one_line(capsys)
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{not json")
    assert run(["--model", tiny_opt_dir, "--adapter", adapter, "--csv", o, "--quiet"]) == 2
    assert "cannot load it" in _one_line(capsys)
    (run_dir / "checkpoints" / "step-000010" / "model" / "model.safetensors").write_bytes(b"garbage")
    assert run([run_dir, "--quiet"]) == 2
    assert "step-000010" in _one_line(capsys)


def test_results_are_reused_only_with_the_same_settings(run_dir, capsys):
    """After `negtune eval RUN_DIR --limit 2`, a run without the limit said "already done"."""
    assert run([run_dir, "--limit", "2", "--quiet"]) == 0
    assert json.loads((run_dir / "eval" / "base.json").read_text())["tasks"]["toy"]["n_pairs"] == 2
    capsys.readouterr()
    assert run([run_dir, "--quiet"]) == 2
    err = _one_line(capsys)
    assert "other settings" in err and "limit 2 -> None" in err and "--force" in err
    assert run([run_dir, "--quiet", "--force"]) == 0
    assert json.loads((run_dir / "eval" / "base.json").read_text())["tasks"]["toy"]["n_pairs"] == 5
    assert run([run_dir, "--quiet"]) == 0  # same settings now: reused
    assert "already done: base, step-000010, step-000020" in capsys.readouterr().out


def test_two_evaluations_of_one_run_never_both_write(run_dir, capsys):
    from negtune.locking import DirLock

    (run_dir / "eval").mkdir()
    with DirLock(run_dir / "eval", "evaluation"):
        assert run([run_dir, "--quiet"]) == 2
        assert "in use by another negtune process (evaluation" in _one_line(capsys)
    assert not list((run_dir / "eval").glob("*.json"))
