"""`negtune demo` end to end on a tiny OPT: base eval, ce run, mitigation run, report (seconds)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # subprocess or in-process training runs

from negtune.errors import UserError
from negtune.results import Results

REPO = Path(__file__).resolve().parents[1]
TINY = ["data.max_instances=12", "eval.max_instances=6", "train.max_steps=2", "train.per_device_batch_size=4",
        "eval.batch_size=8", "model.max_length=48", "model.lora.r=2"]


@pytest.mark.parametrize("mitigation", ["mixed", "kl_anchor"])
def test_demo_tiny_opt(tiny_opt_dir, tmp_path, monkeypatch, capsys, mitigation):
    import torch

    from negtune import demo

    torch.set_num_threads(1)
    monkeypatch.chdir(tmp_path)  # the demo must find recipes/ and data/ from anywhere
    out = tmp_path / "runs"
    monkeypatch.setattr(demo, "DEFAULT_PAPER_EVAL", tmp_path / "no-paper-csvs")  # the same run everywhere
    monkeypatch.delenv("NEGTUNE_PAPER_EVAL", raising=False)
    rc = demo.main([str(REPO / "recipes" / "demo.yaml"), *TINY, "--model", str(tiny_opt_dir), "--out", str(out),
                    "--mitigation", mitigation, "--quiet", "--transfer"])
    assert rc == 0
    for name in ("base", "ce", mitigation):
        assert (out / name / "eval" / "base.json").is_file()
    ce_eval = sorted((out / "ce" / "eval").glob("step-*.json"))
    assert ce_eval and json.loads(ce_eval[-1].read_text())["loss"] == "ce"
    mit_eval = sorted((out / mitigation / "eval").glob("step-*.json"))
    assert mit_eval and json.loads(mit_eval[-1].read_text())["loss"] == mitigation
    report = out / "report"
    assert (report / "tradeoff.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    csv_lines = (report / "report.csv").read_text().splitlines()
    assert len(csv_lines) == 1 + 3  # header + base (deduplicated) + ce + mitigation
    summary = json.loads((report / "demo.json").read_text())
    assert set(summary["accuracy"]) == {"base", "ce", mitigation}
    printed = capsys.readouterr().out
    assert "report: " in printed and "| base |" in printed
    assert "transfer: the paper's evaluation CSVs are not in" in printed  # --transfer without them: one line
    assert summary["held_out"] == [] and set(summary["tasks"]["ce"]) == {"demo"}

    # Second call (without --transfer: the same settings here): every stage reused, only the report is rewritten.
    mtime = ce_eval[-1].stat().st_mtime_ns
    assert demo.main([str(REPO / "recipes" / "demo.yaml"), *TINY, "--model", str(tiny_opt_dir), "--out", str(out),
                      "--mitigation", mitigation, "--quiet"]) == 0
    assert ce_eval[-1].stat().st_mtime_ns == mtime
    assert "transfer: off (--transfer also evaluates" in capsys.readouterr().out

    # Other settings: the training stages are redone (the base stage is still valid).
    base_mtime = (out / "base" / "eval" / "base.json").stat().st_mtime_ns
    assert demo.main([str(REPO / "recipes" / "demo.yaml"), *TINY, "train.max_steps=1", "--model", str(tiny_opt_dir),
                      "--out", str(out), "--mitigation", mitigation, "--quiet"]) == 0
    assert sorted(p.name for p in (out / "ce" / "eval").glob("step-*.json")) == ["step-000001.json"]
    assert (out / "base" / "eval" / "base.json").stat().st_mtime_ns == base_mtime


def test_demo_bad_override_fails_before_loading(tmp_path):
    from negtune import demo

    with pytest.raises(UserError, match="train.lr"):
        demo.main([str(REPO / "recipes" / "demo.yaml"), "train.lr=-1", "--out", str(tmp_path)])
    assert not (tmp_path / "base").exists()


def test_demo_recipe_is_valid():
    from negtune.config import load_recipe

    r = load_recipe(REPO / "recipes" / "demo.yaml")
    assert r.model.name_or_path == "smollm2-135m-instruct" and r.data.tasks == ["demo"]
    assert r.data.variants == ["negated"] and r.loss["name"] == "ce"


def test_demo_transfer_on_held_out_paper_sets(tiny_opt_dir, tmp_path, monkeypatch, capsys, paper_eval_dir):
    """With the paper's CSVs, every stage is also evaluated on COPA, PIQA and ARC-Easy (paired),
    and the report shows them beside the demo task with each checkpoint's reading gain."""
    import torch

    from negtune import demo

    torch.set_num_threads(1)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "runs"
    assert demo.main([str(REPO / "recipes" / "demo.yaml"), *TINY, "eval.limit=6", "model.max_length=512", "--model", str(tiny_opt_dir),
                      "--out", str(out), "--paper-eval", str(paper_eval_dir), "--quiet"]) == 0
    summary = json.loads((out / "report" / "demo.json").read_text())
    assert summary["held_out"] == ["copa", "piqa", "arc_easy"]
    for stage in ("base", "ce", "mixed"):
        assert set(summary["tasks"][stage]) == {"demo", "copa", "piqa", "arc_easy"}
    copa = summary["tasks"]["mixed"]["copa"]
    assert copa["n"] == 6 and len(copa["ci"]["flip_rate"]) == 2 and "reading_gain" in copa
    ce_eval = Results.read(sorted((out / "ce" / "eval").glob("step-*.json"))[-1])
    assert ce_eval.tasks["piqa"].n_pairs == 6 and ce_eval.tasks["arc_easy"].items["negated"].ids
    md = (out / "report" / "report.md").read_text()
    assert "| model / checkpoint | demo (trained on) | arc_easy (held out) | copa (held out) | piqa (held out) |" in md
    printed = capsys.readouterr().out
    assert "held out copa: base both_correct" in printed and "mixed gain" in printed


def test_demo_paper_eval_dir_without_the_csvs_is_an_error(tmp_path):
    from negtune import demo

    with pytest.raises(UserError, match="super_glue_generate_100.csv not found"):
        demo.main([str(REPO / "recipes" / "demo.yaml"), "--paper-eval", str(tmp_path), "--out", str(tmp_path / "o")])
    assert not (tmp_path / "o").exists()


def test_demo_overrides_may_follow_the_flags():
    from negtune.demo import _find_recipe, _parse

    opts = _parse(["recipes/demo.yaml", "--transfer", "eval.limit=100", "--mitigation", "kl_anchor", "seed=3"])
    assert opts.transfer and opts.mitigation == "kl_anchor"
    assert _find_recipe(opts.args) == (Path("recipes/demo.yaml"), ["eval.limit=100", "seed=3"])
