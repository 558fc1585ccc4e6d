"""`negtune report` from hand-made results JSONs: table values, CSV, PNG, dedup, bad input."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from negtune.cli import main as cli_main
from negtune.errors import UserError
from negtune.report import write_report
from negtune.results import PairScores, Results, Summary, TaskResult, VariantScore


def _results(orig, neg, *, checkpoint, run=None, loss=None, adapter=None, task="demo", n=10, chance=(0.25, 0.75)):
    """A results file's JSON as the evaluator writes it (through the typed contract)."""
    variants = {"original": VariantScore(orig, orig, n, chance[0]), "negated": VariantScore(neg, neg, n, chance[1])}
    pairs = PairScores(mean=(orig + neg) / 2, both_correct=0.1, flip_rate=0.2)
    res = Results(tasks={task: TaskResult(variants, n_pairs=n, pairs=pairs)},
                  summary=Summary(original_acc=orig, negated_acc=neg, mean=(orig + neg) / 2, both_correct=0.1,
                                  flip_rate=0.2, n_tasks=1),
                  model="/m/smol", adapter=adapter, checkpoint=checkpoint, label=checkpoint or "x", run=run,
                  loss=loss, tokenization="joint")
    return res.to_json()


def _run(tmp_path: Path, name: str, orig, neg, loss) -> Path:
    run = tmp_path / name
    (run / "eval").mkdir(parents=True)
    (run / "eval" / "base.json").write_text(json.dumps(_results(0.8, 0.2, checkpoint="base", run=str(run), loss=loss)))
    (run / "eval" / "step-000010.json").write_text(json.dumps(
        _results(orig, neg, checkpoint="step-000010", run=str(run), loss=loss, adapter=str(run / "ck"))))
    (run / "eval" / "summary.csv").write_text("not json\n")
    return run


def test_report_from_run_dirs(tmp_path):
    _run(tmp_path, "ce", 0.4, 0.6, "ce")
    _run(tmp_path, "mixed", 0.75, 0.5, "mixed")
    res = write_report([str(tmp_path / "ce"), str(tmp_path / "mixed")], tmp_path / "rep")
    rows = list(csv.DictReader((tmp_path / "rep" / "report.csv").open()))
    assert [r["label"] for r in rows] == ["base", "ce:step-000010", "mixed:step-000010"]  # base once
    ce = rows[1]
    assert float(ce["original"]) == pytest.approx(0.4) and float(ce["negated"]) == pytest.approx(0.6)
    assert float(ce["mean"]) == pytest.approx(0.5) and ce["loss"] == "ce" and ce["n"] == "10"
    assert float(ce["chance_original"]) == pytest.approx(0.25)  # as the results record it
    assert float(ce["chance_negated"]) == pytest.approx(0.75)
    assert rows[0]["loss"] == ""
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "| mixed:step-000010 | mixed | 0.750 | 0.500 | 0.625 | 0.100 | 0.200 | 10 |" in md
    assert "Chance: original 0.250, negated 0.750" in md
    png = (tmp_path / "rep" / "tradeoff.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    assert res["png"] is not None


def test_report_dir_of_runs_and_cli(tmp_path, capsys):
    _run(tmp_path / "runs", "ce", 0.4, 0.6, "ce")
    assert cli_main(["report", str(tmp_path / "runs"), "--out", str(tmp_path / "rep")]) == 0
    assert "ce:step-000010" in capsys.readouterr().out


def test_report_chance_from_results_and_registry(tmp_path):
    a = tmp_path / "a.json"
    a.write_text(json.dumps(_results(0.6, 0.4, checkpoint=None, task="myset", chance=(1 / 3, 2 / 3))))
    b = tmp_path / "b.json"
    b.write_text(json.dumps(_results(0.6, 0.4, checkpoint=None, task="piqa", chance=(None, None))))  # registry: 2
    res = write_report([str(a), str(b)], tmp_path / "rep")
    chance = {r.task: r.chance for r in res["rows"]}
    assert chance["myset"] == pytest.approx((1 / 3, 2 / 3))
    assert chance["piqa"] == pytest.approx((0.5, 0.5))


def test_report_distinct_models_sharing_a_label(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(_results(0.6, 0.4, checkpoint="base", run="/r/one")))
    b.write_text(json.dumps(_results(0.7, 0.3, checkpoint="base", run="/r/two")))
    res = write_report([str(a), str(b)], tmp_path / "rep")
    assert sorted(r.label for r in res["rows"]) == ["base (one)", "base (two)"]


def test_report_missing_accuracy_is_a_dash(tmp_path):
    r = _results(0.6, 0.4, checkpoint=None)
    del r["tasks"]["demo"]["negated"]
    p = tmp_path / "r.json"
    p.write_text(json.dumps(r))
    res = write_report([str(p)], tmp_path / "rep")
    assert res["png"] is None
    assert "| 0.600 | - |" in (tmp_path / "rep" / "report.md").read_text()


@pytest.mark.parametrize("content, msg", [
    (None, "no such file or directory"),
    ("{not json", "not a results JSON"),
    ('{"model": "x"}', "not a results JSON"),
    ('[1, 2]', "not a results JSON"),
])
def test_report_bad_input(tmp_path, content, msg):
    p = tmp_path / "r.json"
    if content is not None:
        p.write_text(content)
    with pytest.raises(UserError, match=msg):
        write_report([str(p)], tmp_path / "rep")
    assert not (tmp_path / "rep").exists()


def test_report_empty_run_dir_and_cli_exit_code(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    assert cli_main(["report", str(tmp_path / "run"), "--out", str(tmp_path / "rep")]) == 2
    err = capsys.readouterr().err
    assert "no results found" in err and len(err.strip().splitlines()) == 1
