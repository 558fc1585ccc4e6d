"""lm-evaluation-harness, run on a ``negtune export lm-eval`` directory, scores exactly what
``negtune eval`` scores: per option the same log-likelihood, per item the same prediction,
per task and group the same accuracy.

Why a test and not a note: the agreement rests on details of both harnesses (where the
prompt/option cut falls, trailing whitespace, the BOS token, list targets for several
correct options) that either side can change in a release. Two exports are run side by side:
``--csv`` with two paper sets (COPA: two options; ARC negated: three correct options of four)
plus hand-made items with trailing whitespace in the prompt and options without a leading
space, and a RECIPE whose eval section builds registry tasks from the sample files (ARC
Easy; TriviaQA, whose options come from the distractor rules) under all three variants.

lm-eval is an optional dependency: without it the test is skipped, saying so. A broken
install (it imports but fails) is not skipped: it fails.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import yaml

from negtune.cli import main as cli_main
from negtune.data.instances import Instance
from negtune.data.paper_csv import write_paper_csv
from negtune.errors import UserError
from negtune.lm_eval_cli import paper_csv_dir_files
from negtune.lm_eval_export import export_lm_eval, slug

HAVE_LM_EVAL = importlib.util.find_spec("lm_eval") is not None
REPO = Path(__file__).resolve().parents[2]
PAPER_FILES = ["super_glue_generate_100.csv", "super_glue_generate_negation_100.csv",
               "ai2_arc_q_a_300.csv", "ai2_arc_q_a_negation_300.csv"]
LIMIT = 30
TOL = 1e-4

# (prompt, options, gold): prompts ending in whitespace (moved onto the option by both
# harnesses), options without a leading space (BPE merges across the cut), several golds.
EDGE_ITEMS = [
    ("Question: What is the capital of France? Answer: ", (" Paris", " Lyon"), (0,)),
    ("Question: who\nAnswer:\n", ("Paris", " cat", "dogs"), (0, 2)),
    ("the quick brown", (" fox", "s fox", " dog"), (0,)),
    ("Complete the sentence with the appropriate ending. The man turned on the faucet.  so...",
     (" Water flowed.", " red green blue"), (1,)),
]


def _edge_csv(path: Path) -> Path:
    write_paper_csv(path, [Instance("edge", str(i), "original", prompt, options, gold[0], gold)
                           for i, (prompt, options, gold) in enumerate(EDGE_ITEMS)])
    return path


# --------------------------------------------------------------------------- fast checks


def _inst(sid: str, variant: str = "original", gold: tuple[int, ...] = (0,)) -> Instance:
    return Instance("t", sid, variant, "Question: x? Answer is", (" a", " b", " c"), gold[0], gold)


def test_export_layout_names_and_targets(tmp_path):
    sets = {"PIQA generate": [_inst("1"), _inst("1", "negated", (1, 2)), _inst("2", "negated", (2,))]}
    tasks = export_lm_eval(sets, tmp_path / "out")
    assert tasks == ["negtune_piqa_generate_original", "negtune_piqa_generate_negated"]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["set_groups"] == ["negtune_piqa_generate"]
    assert manifest["variant_groups"] == ["negtune_original", "negtune_negated"]
    yaml = (tmp_path / "out" / "piqa_generate" / "negtune_piqa_generate_negated.yaml").read_text()
    assert "doc_to_target: gold\n" in yaml and "target_delimiter: ''\n" in yaml
    docs = [json.loads(x) for x in
            (tmp_path / "out" / "piqa_generate" / "negtune_piqa_generate_negated.jsonl").read_text().splitlines()]
    assert [d["gold"] for d in docs] == [[1, 2], [2]]  # one form (a list) for every item of a task
    assert "doc_to_target: target\n" in (tmp_path / "out" / "piqa_generate"
                                          / "negtune_piqa_generate_original.yaml").read_text()
    assert "lm_eval --model hf" in (tmp_path / "out" / "README.md").read_text()
    # an earlier export is replaced whole; any other non-empty directory is refused
    assert export_lm_eval({"b": [_inst("1")]}, tmp_path / "out") == ["negtune_b_original"]
    assert not (tmp_path / "out" / "piqa_generate").exists()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x.txt").write_text("keep")
    with pytest.raises(UserError, match="holds files negtune did not write"):
        export_lm_eval(sets, tmp_path / "other")


@pytest.mark.parametrize("sets, group, message", [
    ({"a b": [_inst("1")], "a_b": [_inst("1")]}, "negtune", "already used"),
    ({"a": [_inst("1"), _inst("1")]}, "negtune", "appears twice"),
    ({"a": [_inst("1")]}, "Neg-Tune", "group"),
    ({"a": []}, "negtune", "no instances"),
    ({"a": [Instance("t", "1", "original", "p", (" a",), 0, (1,))]}, "negtune", "out of range"),
])
def test_export_user_errors(tmp_path, sets, group, message):
    with pytest.raises(UserError, match=message):
        export_lm_eval(sets, tmp_path / "out", group=group)


def test_paper_csv_dir_prefers_full_files(paper_eval_dir):
    names = {Path(f).name for f in paper_csv_dir_files(paper_eval_dir)}
    assert {"piqa_generate_300.csv", "piqa_generate_negation_300.csv", "super_glue_generate_100.csv",
            "nq_correct_answer_300.csv"} <= names
    assert not any(n.endswith("_50.csv") for n in names)
    subsets = [Path(f).name for f in paper_csv_dir_files(paper_eval_dir, 50)]
    assert subsets and all(n.endswith("_50.csv") for n in subsets)
    assert slug("hellaswag_Open-ended_completion") == "hellaswag_open_ended_completion"


def _write_recipe(path: Path, model: Path) -> Path:
    samples = REPO / "data" / "samples"
    path.write_text(yaml.safe_dump({
        "model": {"name_or_path": str(model)},
        # QA distractors come from the training answers (the paper's rule): name the training file
        "data": {"tasks": ["trivia_qa"], "files": {"trivia_qa": str(samples / "trivia_qa" / "train.jsonl")}},
        "eval": {"tasks": ["arc_easy", "trivia_qa"], "variants": ["original", "negated", "instruction_free"],
                 "files": {t: str(samples / t / "validation.jsonl") for t in ("arc_easy", "trivia_qa")}},
    }))
    return path


def test_export_recipe_via_cli(tmp_path):
    """`negtune export lm-eval RECIPE`: the recipe's eval instances (the ones `negtune eval
    --recipe` scores), the recipe's model settings in the README's commands."""
    from negtune.config import load_recipe
    from negtune.evaluation.sets import build_eval_sets

    recipe = _write_recipe(tmp_path / "r.yaml", tmp_path / "some-model")
    out = tmp_path / "export"
    assert cli_main(["export", "lm-eval", str(recipe), "model.max_length=64", "--limit", "3",
                     "--group", "rcp", "--out", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["set_groups"] == ["rcp_arc_easy", "rcp_trivia_qa"]
    assert manifest["variant_groups"] == ["rcp_original", "rcp_negated", "rcp_instruction_free"]
    expected = build_eval_sets(load_recipe(recipe, ["model.max_length=64"]), limit=3)
    exported = []
    for name, task in manifest["tasks"].items():
        lines = (out / slug(task["set"]) / f"{name}.jsonl").read_text().splitlines()
        exported += [(task["set"], task["variant"], d["source_id"], d["prompt"], tuple(d["options"]), tuple(d["gold"]))
                     for d in map(json.loads, lines)]
    assert sorted(exported) == sorted((i.task, i.variant, i.source_id, i.prompt, i.options, i.gold) for i in expected)
    readme = (out / "README.md").read_text()
    assert f"pretrained={tmp_path / 'some-model'},dtype=float32,max_length=64 " in readme
    assert f"--recipe {recipe} model.max_length=64 --limit 3" in readme


@pytest.mark.parametrize("args, message", [
    ([], "exactly one of"),
    (["R", "--csv", "x.csv"], "exactly one of"),
    (["R", "--pair-by", "prompt"], "--pair-by applies to CSV input"),
    (["R", "--size", "50"], "--size applies to --paper-csv-dir only"),
    (["model.dtype=float32", "R"], "the recipe comes first"),
    (["R", "--limit", "0"], "--limit: must be >= 1"),
])
def test_export_cli_errors(tmp_path, capsys, args, message):
    recipe = str(_write_recipe(tmp_path / "r.yaml", tmp_path / "m"))
    args = [recipe if a == "R" else a for a in args]
    assert cli_main(["export", "lm-eval", *args, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- agreement


@pytest.mark.slow  # ~30 s: imports, two harness runs, a negtune eval subprocess
@pytest.mark.skipif(not HAVE_LM_EVAL, reason="lm-eval is not installed (pip install lm-eval==0.4.13): "
                                              "cannot check that lm-eval reproduces negtune eval")
def test_lm_eval_reproduces_negtune_eval(tmp_path, tiny_opt_dir, paper_eval_dir, monkeypatch):
    import lm_eval
    import lm_eval.evaluator
    import torch
    from lm_eval.tasks import TaskManager

    # Results metadata only (torch's environment report, git describe): ~5 s a run here.
    monkeypatch.setattr(lm_eval.evaluator, "add_env_info", lambda results: None, raising=False)
    monkeypatch.setattr(lm_eval.evaluator, "get_git_commit_hash", lambda: None, raising=False)

    csvs = [str(paper_eval_dir / f) for f in PAPER_FILES] + [str(_edge_csv(tmp_path / "edge_cases.csv"))]
    csv_args = [a for f in csvs for a in ("--csv", f)]
    recipe = _write_recipe(tmp_path / "recipe.yaml", tiny_opt_dir)
    exports = {"negtune": tmp_path / "export_csv", "recipe": tmp_path / "export_recipe"}
    assert cli_main(["export", "lm-eval", *csv_args, "--limit", str(LIMIT), "--out", str(exports["negtune"])]) == 0
    assert cli_main(["export", "lm-eval", str(recipe), "--limit", str(LIMIT), "--group", "recipe",
                     "--out", str(exports["recipe"])]) == 0
    manifests = {g: json.loads((d / "manifest.json").read_text()) for g, d in exports.items()}
    tasks = {name: info for m in manifests.values() for name, info in m["tasks"].items()}

    # negtune eval in a subprocess (the CLI a user runs), alongside lm-eval in this process:
    # one run over the recipe's sets and the CSV sets.
    scores, results = tmp_path / "scores.jsonl", tmp_path / "results.json"
    # One thread each: the tiny model gains nothing from more, and on 2 shared cores the two
    # processes' thread pools slow each other down tenfold.
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
               OMP_NUM_THREADS="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "negtune.cli", "eval", "--model", str(tiny_opt_dir), "--recipe", str(recipe),
         *csv_args, "--limit", str(LIMIT), "--dtype", "float32", "--scores", str(scores), "--out", str(results),
         "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        from lm_eval.models.huggingface import HFLM

        # The README's command (--model hf --model_args pretrained=DIR,dtype=float32), with
        # add_bos_token unset: lm-eval >= 0.4.9.2 then encodes with the tokenizer's special
        # tokens (OPT's BOS), as negtune does. One model for both runs.
        lm = HFLM(pretrained=str(tiny_opt_dir), dtype="float32", device="cpu", batch_size=8)
        manager = TaskManager(include_path=[str(d) for d in exports.values()], include_defaults=False)
        # lm-eval refuses a task that two requested groups share: the set view and the
        # variant view are two runs.
        by_set, by_variant = [
            lm_eval.simple_evaluate(model=lm, tasks=names, task_manager=manager, log_samples=True,
                                    bootstrap_iters=0)
            for names in (list(manifests), [g for m in manifests.values() for g in m["variant_groups"]])]
    finally:
        torch.set_num_threads(threads)
        stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr
    neg_results = json.loads(results.read_text())

    neg_ll: dict[tuple[str, str, str], dict[int, float]] = {}
    for line in scores.read_text().splitlines():
        row = json.loads(line)
        neg_ll.setdefault((row["task"], row["variant"], row["pair_id"]), {})[row["option_index"]] = row["loglik"]

    seen, max_delta = set(), 0.0
    for task, info in tasks.items():
        samples = by_set["samples"][task]
        assert len(samples) == info["items"]
        for s in samples:
            doc = s["doc"]
            key = (info["set"], info["variant"], doc["source_id"])
            ours = neg_ll[key]
            # lm-eval's (context, continuation) is negtune's (prompt, option), verbatim
            assert [tuple(a) for a in s["arguments"]] == [(doc["prompt"], o) for o in doc["options"]]
            theirs = [float(ll) for ll, _ in s["filtered_resps"]]
            assert len(theirs) == len(ours), key
            deltas = [abs(theirs[j] - ours[j]) for j in range(len(theirs))]
            max_delta = max(max_delta, *deltas)
            assert max(deltas) < TOL, (key, theirs, ours)
            pred_lm = max(range(len(theirs)), key=lambda j: (theirs[j], -j))
            pred_neg = max(range(len(ours)), key=lambda j: (ours[j], -j))
            assert pred_lm == pred_neg, key
            assert s["acc"] == float(pred_neg in doc["gold"]), key
            seen.add(key)
        for run in (by_set, by_variant):
            acc = run["results"][task]["acc,none"]
            assert acc == pytest.approx(neg_results["tasks"][info["set"]][info["variant"]]["acc"], abs=1e-12), task
    assert seen == set(neg_ll)  # every item negtune scored, and nothing else
    n_recipe = sum(t["items"] for t in manifests["recipe"]["tasks"].values())
    assert n_recipe >= 2 * 3 * 19 and len(seen) == 4 * LIMIT + len(EDGE_ITEMS) + n_recipe

    # groups average their tasks unweighted: a set's group is negtune's mean for the set, the
    # variant groups its macro accuracy per variant, the top group the mean of all its tasks
    def macro(sets: list[str], variant: str) -> float:
        accs = [neg_results["tasks"][s][variant]["acc"] for s in sets if variant in neg_results["tasks"][s]]
        return sum(accs) / len(accs)

    res = by_set["results"]
    for name in ("super_glue_generate", "ai2_arc_q_a"):
        assert res[f"negtune_{name}"]["acc,none"] == pytest.approx(neg_results["tasks"][name]["mean"], abs=1e-12)
    for group, m in manifests.items():
        task_accs = [res[t]["acc,none"] for t in m["tasks"]]
        assert res[group]["acc,none"] == pytest.approx(sum(task_accs) / len(task_accs), abs=1e-12)
        sets = sorted({t["set"] for t in m["tasks"].values()})
        for variant_group in m["variant_groups"]:
            variant = variant_group[len(group) + 1:]
            assert by_variant["results"][variant_group]["acc,none"] == pytest.approx(macro(sets, variant), abs=1e-12)
    print(f"\nlm-eval vs negtune eval: {len(seen)} items, "
          f"{sum(len(v) for v in neg_ll.values())} options, max |delta loglik| {max_delta:.2e}")
