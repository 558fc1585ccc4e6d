"""Few-shot evaluation: demonstration pools, selection rules, the shared prefix, truncation, CLI."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from negtune.cli import main as cli_main
from negtune.config import FewshotConfig, recipe_from_dict
from negtune.data.instances import Instance
from negtune.errors import UserError
from negtune.evaluation.fewshot import Pool, add_fewshot, attach_demos, build_pools, pool_from_instances
from negtune.evaluation.scoring import score_instances
from negtune.evaluation.csv_sets import load_csv_set
from negtune.evaluation.sets import build_eval_sets

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "data" / "samples"
HEADER = "sample_id,prompt,classes,answer_index\n"
WORDS = ["apple", "green", "blue", "Paris", "fox", "seven", "lazy", "river", "stone", "moon"]


def csv_pair(tmp_path: Path, n: int = 10, duplicate_of: int | None = None) -> tuple[Path, Path]:
    """A paper-format original/negated pair; ``duplicate_of``: the last item repeats that item's question."""
    words = [WORDS[i % len(WORDS)] + ("" if i < len(WORDS) else str(i)) for i in range(n)]
    if duplicate_of is not None:
        words[-1] = words[duplicate_of]
    opts = "\"[' {w}', ' dog', ' cat', ' red']\""
    orig = HEADER + "".join(f'{i},"Generate the correct answer to the following question. Question: what is {w}? '
                            f'Answer is",{opts.format(w=w)},0\n' for i, w in enumerate(words))
    neg = HEADER + "".join(f'{i},"Generate the incorrect answer to the following question. Question: what is {w}? '
                           f'Answer is",{opts.format(w=w)},"1,2,3"\n' for i, w in enumerate(words))
    o, ng = tmp_path / f"ai2_arc_q_a_{n}.csv", tmp_path / f"ai2_arc_q_a_negation_{n}.csv"
    o.write_text(orig)
    ng.write_text(neg)
    return o, ng


def csv_set(tmp_path: Path, **kw) -> list[Instance]:
    o, n = csv_pair(tmp_path, **kw)
    return load_csv_set("ai2_arc_q_a", {"original": str(o), "negated": str(n)})


def fewshot(**kw) -> FewshotConfig:
    return FewshotConfig(**{"k": 3, "source": "eval", **kw})


@pytest.mark.parametrize("sampling", ["fixed", "per_item"])
def test_demos_never_the_item_nor_its_question(tmp_path, sampling):
    """Item 9 repeats item 2's question under another id: neither may be shown to the other."""
    instances = csv_set(tmp_path, duplicate_of=2)
    cfg = fewshot(k=8, sampling=sampling)
    out = add_fewshot(instances, cfg)
    assert len(out) == len(instances) == 20
    for inst in out:
        ids = inst.meta["demo_ids"]
        assert len(ids) == 8 and len(set(ids)) == 8
        assert inst.source_id not in ids
        if inst.source_id in ("2", "9"):
            assert "2" not in ids and "9" not in ids
        # every demonstration is rendered with the evaluated prompt's own variant
        instruction = "incorrect" if inst.variant == "negated" else "correct"
        for prompt, answer in inst.meta["demos"]:
            assert prompt.startswith(f"Generate the {instruction} answer")
            word = prompt.split("what is ")[1].split("?")[0]
            # the demonstration follows the instruction: the gold option, or a wrong one when negated
            assert (answer == f" {word}") == (inst.variant == "original")
    # without the exclusion rules the item would see itself: k = 8 of 10 under fixed sampling
    assert any(i.meta["demo_ids"] != out[0].meta["demo_ids"] for i in out) or sampling == "per_item"


def test_selection_is_a_function_of_seed_task_and_item(tmp_path):
    instances = csv_set(tmp_path)
    a = add_fewshot(instances, fewshot(sampling="per_item"))
    b = add_fewshot(instances[::-1], fewshot(sampling="per_item"))[::-1]
    assert [i.meta["demo_ids"] for i in a] == [i.meta["demo_ids"] for i in b]  # order-independent
    by_key = {(i.source_id, i.variant): i.meta["demo_ids"] for i in a}
    assert all(by_key[(s, "original")] == by_key[(s, "negated")] for s, _ in by_key)  # same items per pair
    assert len({tuple(v) for v in by_key.values()}) > 3  # per item: sets differ between items
    c = add_fewshot(instances, fewshot(sampling="per_item", seed=7))
    assert [i.meta["demo_ids"] for i in c] != [i.meta["demo_ids"] for i in a]
    # fixed: one set for the task, except items that would be shown themselves
    f = add_fewshot(instances, fewshot(sampling="fixed"))
    sets = [tuple(i.meta["demo_ids"]) for i in f]
    common = max(set(sets), key=sets.count)
    assert sets.count(common) == 2 * (10 - 3)
    # the pool does not depend on --limit: a limited run shows the same demonstrations
    limited = [i for i in instances if int(i.source_id) < 4]
    lim = add_fewshot(limited, fewshot(sampling="fixed"), pool_instances=instances)
    assert [i.meta["demo_ids"] for i in lim] == [i.meta["demo_ids"] for i in f if int(i.source_id) < 4]


def test_demos_from_the_training_split_of_local_files_and_the_hub_mirror(tmp_path, monkeypatch):
    import datasets

    from fixtures import hub_mirror as hm
    from negtune.data import tasks

    recipe = recipe_from_dict({"model": {"name_or_path": "x"}, "eval": {
        "tasks": ["piqa"], "files": {"piqa": str(SAMPLES / "piqa" / "validation.jsonl")},
        "fewshot": {"k": 2, "files": {"piqa": str(SAMPLES / "piqa" / "train.jsonl")}}}})
    out = build_eval_sets(recipe)
    train_goals = {json.loads(line)["goal"] for line in (SAMPLES / "piqa" / "train.jsonl").read_text().splitlines()}
    for inst in out:
        assert len(inst.meta["demos"]) == 2
        for prompt, _ in inst.meta["demos"]:
            assert prompt.split(": ", 1)[1] in train_goals
    # the hub path: the registry's source pointed at an offline mirror of baber/piqa
    assert datasets.config.HF_HUB_OFFLINE
    mirror = hm.build_hub_mirror(tmp_path / "mirror")
    spec = tasks.TASKS["piqa"]
    monkeypatch.setitem(tasks.TASKS, "piqa", replace(spec, hub=replace(spec.hub, path=str(mirror / "baber/piqa"))))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))
    recipe = recipe_from_dict({"model": {"name_or_path": "x"}, "eval": {
        "tasks": ["piqa"], "files": {"piqa": str(SAMPLES / "piqa" / "validation.jsonl")}, "fewshot": {"k": 4}}})
    out = build_eval_sets(recipe)
    mirror_goals = {r["goal"] for r in hm.PIQA_ROWS["train"]}
    assert all(p.split(": ", 1)[1] in mirror_goals for i in out for p, _ in i.meta["demos"])


def test_paper_csv_demonstration_files(tmp_path):
    instances = csv_set(tmp_path)
    demo_dir = tmp_path / "demos"
    demo_dir.mkdir()
    o, n = csv_pair(demo_dir, n=12)
    cfg = FewshotConfig(k=2, source="csv", csv={"ai2_arc_q_a": {"original": str(o), "negated": str(n)}})
    out = add_fewshot(instances, cfg)
    assert all(len(i.meta["demos"]) == 2 for i in out)
    # demonstration items 0-9 ask the evaluated items' questions: never shown to their own item
    assert all(i.source_id not in i.meta["demo_ids"] for i in out)
    assert {d for i in out for d in i.meta["demo_ids"]} & set(map(str, range(10)))  # but to the others
    assert out[0].meta["demos"][0][0] in n.read_text() or out[0].meta["demos"][0][0] in o.read_text()


def test_bad_fewshot_inputs_are_one_line(tmp_path):
    instances = csv_set(tmp_path)
    with pytest.raises(UserError, match=r"eval.fewshot.k: 10 demonstrations .* only 9 other usable"):
        add_fewshot(instances, fewshot(k=10))
    with pytest.raises(UserError, match="not a registry task"):
        add_fewshot([replace(i, task="mine") for i in instances], FewshotConfig(k=1))
    with pytest.raises(UserError, match="no demonstration files for set 'ai2_arc_q_a'"):
        add_fewshot(instances, FewshotConfig(k=1, source="csv", csv={"other": {"original": "x.csv"}}))
    with pytest.raises(UserError, match="eval.fewshot.csv: source csv needs"):
        recipe_from_dict({"model": {"name_or_path": "x"}, "eval": {"fewshot": {"k": 2, "source": "csv"}}})
    with pytest.raises(UserError, match="eval.fewshot.k: must be >= 0"):
        recipe_from_dict({"model": {"name_or_path": "x"}, "eval": {"fewshot": {"k": -1}}})
    only_original = [i for i in instances if i.variant == "original"]
    pools = {"ai2_arc_q_a": Pool(pool_from_instances(only_original, 0, None), False, "originals")}
    with pytest.raises(UserError, match="has no negated prompts"):
        attach_demos(instances, pools, 1, "fixed", 0)


class CountingModel(torch.nn.Module):
    """Wraps a causal LM and counts the input tokens of every forward pass."""

    def __init__(self, model):
        super().__init__()
        self.inner, self.tokens = model, 0
        self.config = model.config

    def forward(self, input_ids=None, **kw):
        self.tokens += input_ids.numel()
        return self.inner(input_ids=input_ids, **kw)


@pytest.fixture(scope="module")
def opt(tiny_opt_dir):
    from negtune.models import load_for_eval

    return load_for_eval(str(tiny_opt_dir))


def test_fixed_demonstrations_run_once_and_score_like_plain(opt, tmp_path):
    """The shared demonstration block is run once (tokens fed drop), with the plain scores."""
    model, tok = opt
    instances = csv_set(tmp_path, n=30)
    fixed = add_fewshot(instances, fewshot(k=4, sampling="fixed"))
    plain = score_instances(model, tok, fixed, batch_size=4, method="plain", progress=False)
    counting = CountingModel(model)
    shared = score_instances(counting, tok, fixed, batch_size=4, method="kv", progress=False)
    shared_tokens, counting.tokens = counting.tokens, 0
    unshared = score_instances(counting, tok, fixed, batch_size=4, method="kv", progress=False, share_prefix=False)
    for a, b, c in zip(shared, unshared, plain):
        for x, y, z in zip(a, b, c):
            assert abs(x.loglik - z.loglik) < 1e-4 and abs(y.loglik - z.loglik) < 1e-4
            assert x.n_demos == 4
    assert shared_tokens < 0.5 * counting.tokens, (shared_tokens, counting.tokens)
    for bs in (1, 7):  # batch-size invariance holds with the shared prefix too
        again = score_instances(model, tok, fixed, batch_size=bs, method="kv", progress=False)
        assert max(abs(x.loglik - y.loglik) for a, b in zip(again, shared) for x, y in zip(a, b)) < 1e-4


def test_demonstrations_dropped_from_the_left_to_fit(opt, tmp_path):
    model, tok = opt
    fixed = add_fewshot(csv_set(tmp_path), fewshot(k=4))
    full = score_instances(model, tok, fixed, batch_size=8, progress=False)
    longest = max(len(tok(i.prompt)["input_ids"]) for i in fixed)
    limit = 2 * longest + 8  # room for about one demonstration besides the item
    cut = score_instances(model, tok, fixed, batch_size=8, progress=False, max_length=limit)
    used = [s[0].n_demos for s in cut]
    assert all(s[0].n_demos == 4 for s in full) and 0 < min(used) and max(used) < 4
    assert not any(s[0].truncated for s in cut)  # the item is kept whole
    # what was scored is the item after its last n demonstrations, exactly
    ref = [replace(i, meta=dict(i.meta, demos=i.meta["demos"][4 - n:])) for i, n in zip(fixed, used)]
    exact = score_instances(model, tok, ref, batch_size=8, progress=False, method="plain")
    assert max(abs(x.loglik - y.loglik) for a, b in zip(cut, exact) for x, y in zip(a, b)) < 1e-4


def test_cli_fewshot_end_to_end(tiny_opt_dir, tmp_path, capsys):
    o, n = csv_pair(tmp_path)
    out = tmp_path / "r.json"
    argv = ["eval", "--model", str(tiny_opt_dir), "--csv", str(o), "--csv", str(n), "--fewshot", "3",
            "--fewshot-source", "eval", "--fewshot-sampling", "per_item", "--quiet", "--max-length", "70",
            "--out", str(out), "--scores", str(tmp_path / "s.jsonl")]
    assert cli_main(argv) == 0
    res = json.loads(out.read_text())
    p = res["prompting"]
    assert p["fewshot_k"] == 3 and p["fewshot_sampling"] == "per_item" and p["fewshot_seed"] == 1234
    assert p["fewshot_source"].startswith("eval") and p["chat_template"] is False
    assert p["n_fewshot_reduced"] > 0 and p["min_fewshot_used"] < 3  # max length 70 cannot hold 3
    assert "items were shown fewer than 3 demonstrations" in capsys.readouterr().out
    assert res["scoring"]["n_truncated"] == 0
    # zero-shot results still say so
    assert cli_main(argv[:7] + ["--quiet", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["prompting"]["fewshot_k"] == 0


def test_cli_fewshot_errors_before_loading(tmp_path, capsys):
    o, n = csv_pair(tmp_path)
    argv = ["eval", "--model", str(tmp_path / "missing"), "--csv", str(o), "--csv", str(n)]
    assert cli_main(argv + ["--fewshot", "12", "--fewshot-source", "eval"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "only 9 other usable items" in err[0]
    assert cli_main(argv + ["--fewshot", "2"]) == 2  # default source train: the registry task's hub split, offline
    assert "could not be loaded (offline mode is on)" in capsys.readouterr().err


def test_recipe_fewshot_and_flags_as_overrides(tiny_opt_dir, tmp_path):
    import yaml

    o, n = csv_pair(tmp_path)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({
        "model": {"name_or_path": str(tiny_opt_dir)},
        "eval": {"csv": [{"name": "ai2_arc_q_a", "files": {"original": str(o), "negated": str(n)}}],
                 "fewshot": {"k": 1, "source": "eval", "sampling": "per_item"}}}))
    out = tmp_path / "res.json"
    assert cli_main(["eval", "--recipe", str(recipe), "--fewshot", "2", "--fewshot-seed", "9", "--quiet",
                     "--out", str(out)]) == 0
    p = json.loads(out.read_text())["prompting"]
    assert (p["fewshot_k"], p["fewshot_seed"], p["fewshot_sampling"]) == (2, 9, "per_item")
    resolved = yaml.safe_load(out.with_suffix(".recipe.yaml").read_text())
    assert resolved["eval"]["fewshot"]["k"] == 2 and resolved["eval"]["fewshot"]["seed"] == 9
