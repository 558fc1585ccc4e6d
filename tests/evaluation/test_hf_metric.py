"""The `evaluate` module negtune_paired: the numbers of `negtune.evaluation.metrics` (and the
intervals of `negtune.evaluation.stats`) from per-item predictions, loaded offline by path,
usable in a `transformers.Trainer`'s `compute_metrics`.

Why a random case and not a hand-made one: the module must agree with `compute_metrics` on
whatever a loop feeds it (several tasks, several correct options, options listed in another
order under the negated prompt, instruction_free rows), so both are run on the same
generated items and every number is compared exactly.
"""
from __future__ import annotations

import importlib.util
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from negtune.data.instances import Instance
from negtune.evaluation import stats
from negtune.evaluation.hf_metric import metric_path
from negtune.evaluation.hf_metric.paired import paired_metrics
from negtune.evaluation.metrics import compute_metrics
from negtune.evaluation.scoring import OptionScore, predictions

HAVE_EVALUATE = importlib.util.find_spec("evaluate") is not None
needs_evaluate = pytest.mark.skipif(not HAVE_EVALUATE, reason="evaluate is not installed (pip install 'negtune[evaluate]')")
PAIRED = ("original_acc", "negated_acc", "mean", "both_correct", "flip_rate")


def _case(seed: int = 0, tasks: int = 3, items: int = 40, shuffle: bool = True):
    """Instances (original/negated for every item, instruction_free for some; negated options
    shuffled unless ``shuffle`` is False; 1-3 correct options) with random option scores."""
    rng = random.Random(seed)
    insts, scores = [], []
    for t in range(tasks):
        for i in range(rng.randint(items // 2, items)):
            k = rng.choice([2, 4])
            opts = [f" option {t}-{i}-{j}" for j in range(k)]
            for variant in ["original", "negated"] + (["instruction_free"] if rng.random() < 0.5 else []):
                shown = rng.sample(opts, k) if shuffle and variant == "negated" else opts[:]
                gold = (0,) if variant != "negated" else tuple(sorted(rng.sample(range(k), max(1, k - 1))))
                insts.append(Instance(f"task{t}", f"q{i}", variant, "p", tuple(shown), gold[0], gold))
                scores.append([OptionScore(rng.uniform(-9, 0), rng.randint(1, 4)) for _ in range(k)])
    return insts, scores


def _inputs(insts, scores, form: str = "text"):
    picks = predictions(scores)
    if form == "text":  # option texts: flips are compared by text, as negtune does
        preds = [i.options[p] for i, p in zip(insts, picks)]
        refs = [[i.options[g] for g in i.gold] for i in insts]
    else:
        preds, refs = picks, [list(i.gold) for i in insts]
    return dict(predictions=preds, references=refs, ids=[i.source_id for i in insts],
                variants=[i.variant for i in insts], tasks=[i.task for i in insts])


def test_same_numbers_as_negtune_metrics():
    insts, scores = _case()
    tasks, summary = compute_metrics(insts, scores)
    out = paired_metrics(**_inputs(insts, scores), resamples=300, seed=7)

    s = summary.to_json()
    for name in PAIRED + ("instruction_free_agreement",):
        assert out[name] == s[name], name
    assert out["n_tasks"] == len(tasks) == 3
    assert out["n_pairs"] == sum(t.n_pairs for t in tasks.values())
    for name, t in tasks.items():
        assert out[f"{name}/original_acc"] == t.acc("original")
        assert out[f"{name}/negated_acc"] == t.acc("negated")
        for key in ("mean", "both_correct", "flip_rate", "instruction_free_agreement"):
            assert out[f"{name}/{key}"] == getattr(t.pairs, key), (name, key)

    # intervals: negtune.evaluation.stats' stratified bootstrap on the per-item outcomes,
    # built here straight from the instances (aligned by sorted item id)
    picked = predictions(scores)
    by_key = {(i.task, i.variant, i.source_id): (i.options[p], p in i.gold) for i, p in zip(insts, picked)}
    per_task: dict[str, dict[str, np.ndarray]] = {}
    for task in sorted({i.task for i in insts}):
        ids = sorted({i.source_id for i in insts if i.task == task and i.variant in ("original", "negated")})
        a = [by_key.get((task, "original", k)) for k in ids]
        b = [by_key.get((task, "negated", k)) for k in ids]
        per_task[task] = {"original": np.array([np.nan if x is None else float(x[1]) for x in a]),
                          "negated": np.array([np.nan if x is None else float(x[1]) for x in b]),
                          "flipped": np.array([np.nan if x is None or y is None else float(x[0] != y[0])
                                               for x, y in zip(a, b)])}
    task_ivs, expected = stats.intervals(per_task, resamples=300, seed=7)
    for name in PAIRED:
        assert (out[f"{name}_ci_low"], out[f"{name}_ci_high"]) == (expected[name].low, expected[name].high)
        assert out[f"{name}_ci_low"] <= out[name] <= out[f"{name}_ci_high"]
    ci = task_ivs["task1"]["flip_rate"]
    assert (out["task1/flip_rate_ci_low"], out["task1/flip_rate_ci_high"]) == (ci.low, ci.high)

    # with the defaults, the metric's macro intervals are the results file's own
    default = paired_metrics(**_inputs(insts, scores))
    for name in PAIRED:
        assert [default[f"{name}_ci_low"], default[f"{name}_ci_high"]] == list(summary.ci[name])
    for task, t in tasks.items():  # and so are each task's: Wilson for an accuracy, bootstrap for pairs
        for variant, name in (("original", "original_acc"), ("negated", "negated_acc")):
            if variant in t.variants:
                got = [default[f"{task}/{name}_ci_low"], default[f"{task}/{name}_ci_high"]]
                assert got == list(t.variants[variant].ci), (task, name)
        for key, bounds in t.pairs.ci.items():
            assert [default[f"{task}/{key}_ci_low"], default[f"{task}/{key}_ci_high"]] == list(bounds), (task, key)


def test_index_predictions_and_one_task():
    insts, scores = _case(seed=1, tasks=1, shuffle=False)  # one option order: indices identify options
    tasks, summary = compute_metrics(insts, scores)
    args = _inputs(insts, scores, form="index")
    del args["tasks"]
    out = paired_metrics(**args, intervals=False)
    assert {k: out[k] for k in PAIRED} == {k: summary.to_json()[k] for k in PAIRED}
    assert "original_acc_ci_low" not in out and not any("/" in k for k in out)


@pytest.mark.parametrize("change, message", [
    (lambda a: a.update(variants=["neg"] + a["variants"][1:]), "not one of"),
    (lambda a: a.update(predictions=[1.0] + a["predictions"][1:]), "option index"),
    (lambda a: a.update(references=[["x"]] + a["references"][1:]), "mix option indices and texts"),
    (lambda a: a.update(references=[[]] + a["references"][1:]), "no correct option"),
    (lambda a: a.update(ids=a["ids"][:-1]), "rows but predictions has"),
    (lambda a: a.update(ids=["only-once"] + a["ids"][1:]), "ids must be paired"),
    (lambda a: a.update(ids=["a", "a", "a", "b"], variants=["original", "negated", "original", "instruction_free"]),
     "item a: appears twice under variant original"),
])
def test_bad_inputs_raise_value_errors(change, message):
    args = dict(predictions=[0, 1, 1, 1], references=[[0], [1, 2], [0], [0]], ids=["a", "a", "b", "b"],
                variants=["original", "negated", "original", "negated"])
    change(args)
    with pytest.raises(ValueError, match=message):
        paired_metrics(**args)


def test_path_printed_by_the_cli(capsys):
    from negtune.cli import main

    assert main(["export", "evaluate"]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed == metric_path() and Path(printed).is_file() and printed.endswith("negtune_paired.py")


def _offline_env(tmp_path: Path) -> dict:
    # a fresh HF cache and every offline switch: nothing can come from the hub
    return dict(os.environ, HF_HOME=str(tmp_path / "hf_home"), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1",
                HF_EVALUATE_OFFLINE="1", OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")


@pytest.mark.slow  # a fresh interpreter importing evaluate/datasets: ~10 s
@needs_evaluate
def test_evaluate_load_by_path_offline(tmp_path):
    """`evaluate.load(path)` in a fresh process with an empty HF cache and the hub off:
    add_batch in two batches (numpy ints, one gold index per row), then text options with a
    list of correct options, and the multi_task config; the same numbers as paired_metrics."""
    insts, scores = _case(seed=2)
    text = _inputs(insts, scores)
    index = _inputs(insts, scores, form="index")
    script = f"""
import json, sys
import evaluate, numpy as np
args = json.loads(sys.stdin.read())
m = evaluate.load({metric_path()!r})
one = {{k: [v for v, t in zip(args["index"][k], args["index"]["tasks"]) if t == "task0"]
       for k in ("predictions", "references", "ids", "variants")}}
one["references"] = [r[0] for r in one["references"]]  # a single gold index per row
h = len(one["ids"]) // 2
m.add_batch(**{{k: (np.array(v[:h]) if k != "ids" and k != "variants" else v[:h]) for k, v in one.items()}})
m.add_batch(**{{k: (np.array(v[h:]) if k != "ids" and k != "variants" else v[h:]) for k, v in one.items()}})
first = m.compute(resamples=200)
multi = evaluate.load({metric_path()!r}, "multi_task")
second = multi.compute(**args["text"], resamples=200)
print(json.dumps({{"name": m.name, "one": first, "multi": second}}))
"""
    proc = subprocess.run([sys.executable, "-c", script], input=json.dumps({"text": text, "index": index}),
                          capture_output=True, text=True, env=_offline_env(tmp_path), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["name"] == "negtune_paired"
    one = {k: [v for v, t in zip(index[k], index["tasks"]) if t == "task0"]
           for k in ("predictions", "references", "ids", "variants")}
    assert got["one"] == paired_metrics(**dict(one, references=[r[0] for r in one["references"]]), resamples=200)
    assert got["multi"] == paired_metrics(**text, resamples=200)
    assert "task2/mean_ci_high" in got["multi"] and "original_acc_ci_low" in got["one"]


@pytest.mark.slow  # a tiny Trainer.evaluate: ~10 s
@needs_evaluate
def test_in_a_transformers_trainer_compute_metrics(tmp_path, monkeypatch):
    """The documented one-liner in `compute_metrics` of a `transformers.Trainer` (a tiny
    multiple-choice model): the Trainer logs negtune's numbers under eval_<name>."""
    import evaluate
    import torch
    from transformers import BertConfig, BertForMultipleChoice, Trainer, TrainingArguments

    for key, value in _offline_env(tmp_path).items():
        monkeypatch.setenv(key, value)
    torch.manual_seed(0)
    model = BertForMultipleChoice(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1,
                                             num_attention_heads=2, intermediate_size=32,
                                             max_position_embeddings=16))
    rng = random.Random(0)
    rows = []
    for i in range(12):
        for variant, label in (("original", 0), ("negated", 1)):
            rows.append({"input_ids": torch.tensor([[rng.randrange(50) for _ in range(6)] for _ in range(2)]),
                         "labels": label, "id": f"q{i}", "variant": variant})
    eval_set = [{"input_ids": r["input_ids"], "labels": r["labels"]} for r in rows]

    paired = evaluate.load(metric_path())

    def compute_metrics(eval_pred):
        return paired.compute(predictions=eval_pred.predictions.argmax(-1), references=eval_pred.label_ids,
                              ids=[r["id"] for r in rows], variants=[r["variant"] for r in rows])

    args = TrainingArguments(output_dir=str(tmp_path / "out"), per_device_eval_batch_size=5, report_to=[],
                             use_cpu=True, disable_tqdm=True)
    metrics = Trainer(model=model, args=args, compute_metrics=compute_metrics).evaluate(eval_set)

    with torch.no_grad():
        picks = [int(model(input_ids=r["input_ids"][None]).logits.argmax(-1)) for r in rows]
    expected = paired_metrics(picks, [r["labels"] for r in rows], [r["id"] for r in rows],
                              [r["variant"] for r in rows])
    for name, value in expected.items():
        assert metrics[f"eval_{name}"] == pytest.approx(value, abs=1e-12), name
    assert 0 < metrics["eval_n_pairs"] == 12.0 and metrics["eval_mean_ci_low"] <= metrics["eval_mean"]
