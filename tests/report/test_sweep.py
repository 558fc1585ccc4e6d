"""Size sweeps: several --model in one `negtune eval`, parameter counts recorded, the report's
accuracy-against-size figure drawn from three tiny OPTs of different sizes."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from negtune.cli import main as cli_main
from negtune.results import Results
from negtune.sweep_plot import collect_series, format_params, interval

HEADER = "sample_id,prompt,classes,answer_index\n"


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    from helpers import build_tiny_opt

    root = tmp_path_factory.mktemp("sweep")
    models = [build_tiny_opt(root / f"opt-{name}" / "model", seed=i, hidden=hidden, layers=layers)
              for i, (name, hidden, layers) in enumerate([("s", 16, 1), ("m", 32, 2), ("l", 64, 3)])]
    o, n = root / "toy_q_6.csv", root / "toy_q_negation_6.csv"
    words = ["apple", "green", "blue", "Paris", "fox", "red"]
    o.write_text(HEADER + "".join(f'{i},"Question: what is {w}? Answer is","[\' {w}\', \' dog\', \' cat\']",0\n'
                                  for i, w in enumerate(words)))
    n.write_text(HEADER + "".join(f'{i},"Question: what is not {w}? Answer is","[\' {w}\', \' dog\', \' cat\']","1,2"\n'
                                  for i, w in enumerate(words)))
    out = root / "results"
    argv = ["eval", *sum((["--model", str(m)] for m in models), []), "--csv", str(o), "--csv", str(n),
            "--quiet", "--out", str(out)]
    assert cli_main(argv) == 0
    return root, models, out


def test_one_results_file_per_model_with_its_size(sweep, capsys):
    root, models, out = sweep
    files = sorted(out.glob("*.json"))
    assert [f.name for f in files] == [f"opt-{s}_model.json" for s in "lms"]
    sizes = {}
    for f in files:
        res = Results.read(f)
        from transformers import AutoModelForCausalLM

        expected = sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(res.model).parameters())
        assert res.n_params == expected and res.model_type == "opt"
        sizes[Path(res.model).parent.name] = res.n_params
    assert sizes["opt-s"] < sizes["opt-m"] < sizes["opt-l"]


def test_report_draws_accuracy_against_size(sweep, tmp_path, capsys):
    from PIL import Image

    root, models, out = sweep
    rep = tmp_path / "rep"
    assert cli_main(["report", str(out), "--out", str(rep)]) == 0  # the directory `eval --out` wrote
    assert "sweep.png" in capsys.readouterr().out
    with Image.open(rep / "sweep.png") as img:
        assert img.size[0] > 600 and img.size[1] > 300
    rows = list(csv.DictReader(io.StringIO((rep / "sweep.csv").read_text())))
    assert {r["series"] for r in rows} == {"opt, 0-shot"} and {r["task"] for r in rows} == {"toy_q", "macro"}
    assert [int(r["n_params"]) for r in rows if r["task"] == "macro"] == sorted(
        Results.read(f).n_params for f in out.glob("*.json"))
    for r in rows:
        res = Results.read(r["source"])
        t = res.tasks["toy_q"]
        expect = (t.acc("original"), t.acc("negated"), t.pairs.mean) if r["task"] == "toy_q" else \
            (res.summary.original_acc, res.summary.negated_acc, res.summary.mean)
        assert [float(r[m]) for m in ("original", "negated", "mean")] == pytest.approx(expect)
    assert "![accuracy against model size](sweep.png)" in (rep / "report.md").read_text()


def test_no_sweep_from_one_size_or_mixed_settings(sweep, tmp_path):
    root, models, out = sweep
    one = out / "opt-m_model.json"
    rep = tmp_path / "rep"
    assert cli_main(["report", str(one), "--out", str(rep)]) == 0
    assert not (rep / "sweep.png").exists()
    # a 2-shot result of another size is another series: not mixed into the 0-shot line
    data = json.loads((out / "opt-s_model.json").read_text())
    data["prompting"]["fewshot_k"], data["prompting"]["fewshot_sampling"] = 2, "fixed"
    other = tmp_path / "two-shot.json"
    other.write_text(json.dumps(data))
    assert collect_series([one, other]) == {}
    assert set(collect_series([one, other, out / "opt-l_model.json"])) == {"opt, 0-shot"}


def test_intervals_and_labels():
    assert interval(SimpleNamespace(ci=(0.4, 0.6)), "acc") == (0.4, 0.6)
    assert interval(SimpleNamespace(ci={"mean": (0.1, 0.3)}), "mean") == (0.1, 0.3)
    assert interval(SimpleNamespace(ci={"flip_rate": (0.1, 0.3)}), "mean") is None
    assert interval(SimpleNamespace(), "acc") is None
    assert [format_params(n) for n in (125_000_000, 1_300_000_000, 66e9, 28_512)] == ["125M", "1.3B", "66B", "28.5K"]


def test_several_models_need_an_output_directory(sweep, tmp_path, capsys):
    root, models, out = sweep
    f = tmp_path / "file.json"
    f.write_text("{}")
    argv = ["eval", "--model", str(models[0]), "--model", str(models[1]), "--csv", str(root / "toy_q_6.csv")]
    assert cli_main(argv + ["--out", str(f)]) == 2
    assert "must be a directory" in capsys.readouterr().err
    assert cli_main(argv + ["--adapter", str(tmp_path)]) == 2
    assert "--adapter: applies to one --model" in capsys.readouterr().err


def test_device_map_loading_scores_the_same(sweep, tmp_path):
    """--device-map (big-model loading; here everything lands on the CPU) changes nothing."""
    root, models, out = sweep
    target = tmp_path / "dm.json"
    assert cli_main(["eval", "--model", str(models[1]), "--csv", str(root / "toy_q_6.csv"), "--csv",
                     str(root / "toy_q_negation_6.csv"), "--device-map", "auto", "--quiet", "--out", str(target)]) == 0
    a, b = Results.read(target), Results.read(out / "opt-m_model.json")
    assert a.tasks == b.tasks and a.n_params == b.n_params
