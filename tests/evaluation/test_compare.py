"""`negtune compare A B`: a hand-computed case through the CLI, real evaluations end to end,
run-directory inputs, and every refusal (one line, exit 2, nothing written)."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from helpers import build_tiny_opt, outcome_results, write_trainer_state
from negtune.cli import main as cli_main
from negtune.evaluation.stats import bootstrap_indices, task_seed
from negtune.results import Results



def _results(orig_right, neg_right, **kw) -> Results:
    return outcome_results(orig_right, neg_right, **kw)


def _write(path: Path, res: Results) -> Path:
    res.write(path)
    return path


def _rows(out: Path) -> dict[tuple[str, str], dict[str, str]]:
    return {(r["task"], r["metric"]): r for r in csv.DictReader((out / "compare.csv").open())}


def test_compare_hand_case_through_the_cli(tmp_path, capsys):
    # 40 items. Original prompt: 9 only B right, 1 only A right, 20 both right, 10 neither
    # -> McNemar exact p = 2 (C(10,0) + C(10,1)) / 2^10 = 0.021484375. Negated prompt: A always
    # wrong, B right on the first 20 -> B>A 20, A>B 0, p = 2 / 2^20.
    a_orig = [False] * 9 + [True] + [True] * 20 + [False] * 10
    b_orig = [True] * 9 + [False] + [True] * 20 + [False] * 10
    a_neg, b_neg = [False] * 40, [True] * 20 + [False] * 20
    a = _write(tmp_path / "a.json", _results(a_orig, a_neg))
    b = _write(tmp_path / "b.json", _results(b_orig, b_neg))
    assert cli_main(["compare", str(a), str(b), "--out", str(tmp_path / "cmp")]) == 0
    rows = _rows(tmp_path / "cmp")
    o = rows[("t", "original")]
    assert (o["b01"], o["b10"], float(o["p_mcnemar"])) == ("9", "1", 0.021484375)
    assert float(o["a"]) == 21 / 40 and float(o["b"]) == 29 / 40 and float(o["diff"]) == pytest.approx(0.2)
    # the interval: percentile (type 7) of the per-resample differences on the task's draws
    idx = bootstrap_indices(40, 2000, task_seed(0, "t"))
    diffs = [np.mean(np.array(b_orig)[r]) - np.mean(np.array(a_orig)[r]) for r in idx]
    low, high = np.quantile(diffs, [0.025, 0.975])
    assert float(o["ci_low"]) == pytest.approx(low, abs=1e-6) and float(o["ci_high"]) == pytest.approx(high, abs=1e-6)
    n = rows[("t", "negated")]
    assert (n["b01"], n["b10"], float(n["p_mcnemar"])) == ("20", "0", 2 / 2 ** 20)
    # Picks: right -> the gold option. A flips where its original pick (' no' when wrong) differs
    # from its negated one (always ' yes'): items 0-8 and 30-39. B flips on 0-8, 10-19, 30-39.
    f = rows[("t", "flip_rate")]
    assert float(f["a"]) == pytest.approx(19 / 40) and float(f["b"]) == pytest.approx(29 / 40)
    assert (f["b01"], f["b10"], float(f["p_mcnemar"])) == ("10", "0", 2 / 2 ** 10)
    bc = rows[("t", "both_correct")]
    assert float(bc["b"]) == pytest.approx(19 / 40) and float(bc["a"]) == 0.0
    assert float(rows[("t", "mean")]["diff"]) == pytest.approx((8 + 20) / 80)
    assert ("macro", "mean") in rows
    md = (tmp_path / "cmp" / "compare.md").read_text()
    assert "| t | original | 0.525 | 0.725 | +0.200 |" in md
    assert "| 9 | 1 | 0.0215 | 40 |" in md
    assert capsys.readouterr().out.startswith("# B − A")


def test_compare_refuses_different_items(tmp_path, capsys):
    right = [True, False] * 10
    a = _write(tmp_path / "a.json", _results(right, right))
    b = _write(tmp_path / "b.json", _results(right, right, prompt="Another question"))
    out = tmp_path / "cmp"
    assert cli_main(["compare", str(a), str(b), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "negated: item '000' (20 in all) has another prompt, options or gold set" in err
    assert not out.exists()

    c = _write(tmp_path / "c.json", _results(right[:-2], right[:-2]))  # two items fewer
    assert cli_main(["compare", str(a), str(c), "--out", str(out)]) == 2
    assert "2 item ids are not in both files" in capsys.readouterr().err

    d = _write(tmp_path / "d.json", _results(right, right, task="other"))
    assert cli_main(["compare", str(a), str(d), "--out", str(out)]) == 2
    assert "different tasks" in capsys.readouterr().err
    assert not out.exists()


def test_compare_refuses_results_without_item_records(tmp_path, capsys):
    right = [True, False] * 10
    a = _write(tmp_path / "a.json", _results(right, right))
    old = json.loads(a.read_text())
    for t in old["tasks"].values():
        del t["items"], t["ci"]
        for v in ("original", "negated"):
            del t[v]["ci"]
    del old["summary"]["ci"]
    (tmp_path / "old.json").write_text(json.dumps(old))
    assert Results.read(tmp_path / "old.json").tasks["t"].items == {}  # an old file still loads
    assert cli_main(["compare", str(tmp_path / "old.json"), str(a), "--out", str(tmp_path / "cmp")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no per-item records" in err and "old.json" in err


def test_compare_run_directories_and_checkpoint_names(tmp_path, capsys):
    right = [True, False] * 10
    run = tmp_path / "run"
    (run / "eval").mkdir(parents=True)
    _write(run / "eval" / "base.json", _results(right, right, run=str(run), checkpoint="base"))
    _write(run / "eval" / "step-000005.json", _results(right, [True] * 20, run=str(run), checkpoint="step-000005"))
    _write(run / "eval" / "step-000010.json", _results([True] * 20, right, run=str(run), checkpoint="step-000010"))
    out = tmp_path / "cmp"
    assert cli_main(["compare", f"{run}:base", str(run), "--out", str(out)]) == 0  # RUN_DIR = last evaluated
    assert "B = run:step-000010" in capsys.readouterr().out
    assert float(_rows(out)[("t", "original")]["diff"]) == pytest.approx(0.5)
    assert cli_main(["compare", f"{run}:base", f"{run}:step-5", "--out", str(out)]) == 0
    assert float(_rows(out)[("t", "negated")]["diff"]) == pytest.approx(0.5)
    for bad, msg in ((f"{run}:step-7", "does not exist"), (f"{run}:last", "not a checkpoint name"),
                     (str(tmp_path / "nope"), "no such results file")):
        assert cli_main(["compare", bad, str(run), "--out", str(out)]) == 2
        assert msg in capsys.readouterr().err
    # a checkpoint newer than the newest evaluation is refused, not silently skipped
    ck = run / "checkpoints" / "step-000020"
    (ck / "model").mkdir(parents=True)
    write_trainer_state(ck, step=20, kind="full", base_model="m")
    assert cli_main(["compare", f"{run}:base", str(run), "--out", str(out)]) == 2
    assert "step-000020 is not evaluated" in capsys.readouterr().err


@pytest.mark.slow
def test_compare_two_real_evaluations(tiny_opt_dir, tmp_path, paper_eval_dir):
    """End to end: `negtune eval` of two different tiny models on the same paper CSVs, then compare."""
    other = build_tiny_opt(tmp_path / "other", seed=5)
    csvs = ["--csv", str(paper_eval_dir / "super_glue_generate_100.csv"),
            "--csv", str(paper_eval_dir / "super_glue_generate_negation_100.csv")]
    for name, model in (("a", tiny_opt_dir), ("b", other)):
        assert cli_main(["eval", "--model", str(model), *csvs, "--out", str(tmp_path / f"{name}.json"),
                         "--limit", "40", "--quiet"]) == 0
    assert cli_main(["compare", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--out", str(tmp_path / "c")]) == 0
    a, b = Results.read(tmp_path / "a.json"), Results.read(tmp_path / "b.json")
    rows = _rows(tmp_path / "c")
    t = "super_glue_generate"
    for variant in ("original", "negated"):
        row = rows[(t, variant)]
        assert float(row["diff"]) == pytest.approx(b.tasks[t].acc(variant) - a.tasks[t].acc(variant), abs=1e-6)
        assert float(row["ci_low"]) <= float(row["diff"]) <= float(row["ci_high"])
        ca, cb = (np.array(r.tasks[t].items[variant].correct) for r in (a, b))
        assert int(row["b01"]) == int((~ca & cb).sum()) and int(row["n"]) == 40
    assert float(rows[(t, "flip_rate")]["diff"]) == pytest.approx(
        b.tasks[t].pairs.flip_rate - a.tasks[t].pairs.flip_rate, abs=1e-6)


def test_compare_never_writes_into_a_users_directory(tmp_path, capsys):
    right = [True, False] * 10
    a = _write(tmp_path / "a.json", _results(right, right))
    b = _write(tmp_path / "b.json", _results(right, [not x for x in right]))
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    assert cli_main(["compare", str(a), str(b), "--out", str(mine)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "holds files negtune did not write" in err
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    out = tmp_path / "cmp"
    assert cli_main(["compare", str(a), str(b), "--out", str(out)]) == 0
    assert cli_main(["compare", str(a), str(b), "--out", str(out)]) == 0  # its own directory: rewritten
    assert (out / "compare.md").is_file() and (out / "compare.csv").is_file()
