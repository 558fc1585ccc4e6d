"""Builder: determinism, cap, pairing, seeded rules, eval instances, CLI output, 9x10k from local files."""
from __future__ import annotations

import hashlib
import json
import random
import time
from pathlib import Path

import pytest
import yaml

from negtune import cli
from negtune.config import DataConfig, EvalConfig, recipe_from_dict
from negtune.data.build import (
    build_dataset,
    build_eval_instances,
    build_instances,
    load_instances,
    load_items,
    write_dataset,
)
from negtune.data.options import normalize_answer
from negtune.data.tasks import TASKS

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "data" / "samples"
TASK9 = ["piqa", "arc_easy", "copa", "hellaswag", "story_cloze", "lambada", "web_questions", "nq_open", "trivia_qa"]


def sample_file(task: str, split: str = "train") -> str:
    [path] = [p for p in (SAMPLES / task).iterdir() if p.stem == split]
    return str(path)


def sample_cfg(**kw) -> DataConfig:
    files = {t: sample_file(t) for t in kw.get("tasks", TASK9)}
    return DataConfig(**{"tasks": TASK9, "variants": ["original", "negated"], "files": files, **kw})


def write_recipe(tmp_path: Path, data: dict, name: str = "r.yaml", **top) -> Path:
    raw = {"seed": 1, "output_dir": str(tmp_path / "run"), "model": {"name_or_path": "x"}, "data": data, **top}
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw))
    return path


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_samples_build_every_task_and_variant() -> None:
    cfg = sample_cfg(variants=["original", "negated", "instruction_free"], pairs=True)
    insts = build_instances(cfg, seed=0)
    assert {i.task for i in insts} == set(TASK9)
    for inst in insts:
        assert inst.options and all(o.startswith(" ") for o in inst.options)
        assert inst.target in inst.gold
        assert all(0 <= g < len(inst.options) for g in inst.gold)
    by_key: dict = {}
    for inst in insts:
        by_key.setdefault(inst.pair_key, {})[inst.variant] = inst
    for variants in by_key.values():
        o, n, f = variants["original"], variants["negated"], variants["instruction_free"]
        assert o.options == n.options == f.options
        assert set(n.gold) == set(range(len(o.options))) - set(o.gold)
        assert f.gold == o.gold and f.prompt in o.prompt and len(f.prompt) < len(o.prompt)


def test_same_seed_byte_identical_and_different_seed_differs(tmp_path: Path) -> None:
    data = {"tasks": TASK9, "variants": ["original", "negated"], "max_instances": 7,
            "files": {t: sample_file(t) for t in TASK9}}
    recipe = write_recipe(tmp_path, data)
    outs = []
    for k in range(2):
        out = tmp_path / f"out{k}"
        assert cli.main(["build-data", str(recipe), "--out", str(out)]) == 0
        outs.append(out)
    for name in ("instances.jsonl", "manifest.json", "recipe.resolved.yaml"):
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes()
    manifest = json.loads((outs[0] / "manifest.json").read_text())
    assert manifest["instances_sha256"] == sha(outs[0] / "instances.jsonl")
    assert manifest["counts"]["piqa"] == {"original": 7, "negated": 7}
    assert manifest["sources"]["piqa"]["files"][0]["sha256"] == sha(Path(sample_file("piqa")))
    assert manifest["seed"] == 1
    # a different seed (override) samples different items
    out2 = tmp_path / "out_seed2"
    assert cli.main(["build-data", str(recipe), "seed=2", "--out", str(out2)]) == 0
    a = {(i.task, i.variant, i.source_id) for i in load_instances(outs[0])}
    b = {(i.task, i.variant, i.source_id) for i in load_instances(out2)}
    assert a != b and len(a) == len(b) == 9 * 2 * 7


def test_default_out_dir_is_output_dir_data(tmp_path: Path, capsys) -> None:
    recipe = write_recipe(tmp_path, {"tasks": ["copa"], "files": {"copa": sample_file("copa")}})
    assert cli.main(["build-data", str(recipe)]) == 0
    assert (tmp_path / "run" / "data" / "instances.jsonl").is_file()
    assert "wrote 20 instances" in capsys.readouterr().out


def test_cap_is_seeded_and_nested() -> None:
    small = {(i.task, i.source_id) for i in build_instances(sample_cfg(max_instances=5, variants=["negated"]), 3)}
    large = {(i.task, i.source_id) for i in build_instances(sample_cfg(max_instances=10, variants=["negated"]), 3)}
    assert len(small) == 5 * 9 and len(large) == 10 * 9
    assert small <= large  # raising the cap only adds items


def test_pairs_adjacent_and_unpaired_variants_draw_separately() -> None:
    paired = build_instances(sample_cfg(max_instances=6, pairs=True), 5)
    for a, b in zip(paired[::2], paired[1::2]):
        assert a.pair_key == b.pair_key and (a.variant, b.variant) == ("original", "negated")
    unpaired = build_instances(sample_cfg(max_instances=6, pairs=False), 5)
    orig = {i.pair_key for i in unpaired if i.variant == "original"}
    neg = {i.pair_key for i in unpaired if i.variant == "negated"}
    assert len(orig) == len(neg) == 54 and orig != neg


def test_negated_targets_seeded_independent_of_order_and_all_wrong(tmp_path: Path) -> None:
    rows = [json.loads(line) for line in Path(sample_file("arc_easy")).read_text().splitlines()]
    rev = tmp_path / "rev.jsonl"
    rev.write_text("".join(json.dumps(r) + "\n" for r in reversed(rows)))
    cfg = DataConfig(tasks=["arc_easy"], variants=["negated"], files={"arc_easy": sample_file("arc_easy")})
    fwd = {i.source_id: i.target for i in build_instances(cfg, 9)}
    cfg_rev = DataConfig(tasks=["arc_easy"], variants=["negated"], files={"arc_easy": str(rev)})
    assert {i.source_id: i.target for i in build_instances(cfg_rev, 9)} == fwd
    assert len(set(fwd.values())) > 1  # not always the same index
    cfg_all = DataConfig(tasks=["arc_easy", "piqa"], variants=["original", "negated"], pairs=True,
                         negated_target="all_wrong",
                         files={"arc_easy": sample_file("arc_easy"), "piqa": sample_file("piqa")})
    insts = build_instances(cfg_all, 9)
    neg = [i for i in insts if i.task == "arc_easy" and i.variant == "negated"]
    assert len(neg) == 3 * len(rows)
    assert len({i.uid for i in insts}) == len(insts)
    assert sum(i.task == "piqa" and i.variant == "negated" for i in insts) == 20  # 2 options: one wrong


def test_lambada_options_shuffled_distinct_capitalised() -> None:
    for rule in ("paper", "words"):
        items, _ = load_items("lambada", "train", sample_file("lambada"), seed=0,
                              data=DataConfig(lambada_distractors=rule))
        positions = [it.answer for it in items]
        assert len(set(positions)) > 1
        for it in items:
            assert len(it.options) == 4 and len({o.lower() for o in it.options}) == 4
            assert all(o[1].isupper() or not o[1].isalpha() for o in it.options)
            words = set(it.fields["context"].lower().split())
            assert all(o[1:].lower() in words for o in it.options)
            if rule == "words":
                assert all(o[1].isupper() for o in it.options)


def test_qa_distractor_never_an_alias(tmp_path: Path) -> None:
    rows = [
        {"question": "q1", "answer": ["The Beatles", "Beatles"]},
        {"question": "q2", "answer": ["beatles!"]},  # an alias of q1's answers after normalisation
        {"question": "q3", "answer": ["Paris"]},
    ]
    path = tmp_path / "nq.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    for seed in range(20):
        items, _ = load_items("nq_open", "train", str(path), seed=seed)
        assert normalize_answer(items[0].options[1 - items[0].answer]) == "paris"
        assert normalize_answer(items[1].options[1 - items[1].answer]) == "paris"
        assert items[0].options[items[0].answer] == " The Beatles"
    positions = {load_items("nq_open", "train", str(path), seed=s)[0][2].answer for s in range(20)}
    assert positions == {0, 1}


def test_eval_instances_one_per_item_and_variant() -> None:
    cfg = EvalConfig(tasks=["arc_easy", "web_questions"], variants=["original", "negated", "instruction_free"],
                     files={"arc_easy": sample_file("arc_easy", "validation"),
                            "web_questions": sample_file("web_questions", "validation")})
    train = DataConfig(tasks=["web_questions"], files={"web_questions": sample_file("web_questions")})
    insts = build_eval_instances(cfg, 0, data=train)  # QA distractors: from the training answers
    assert len(insts) == 3 * (19 + 20)
    assert len({(i.pair_key, i.variant) for i in insts}) == len(insts)
    capped = build_eval_instances(EvalConfig(**{**cfg.__dict__, "max_instances": 4}), 0, data=train)
    assert len(capped) == 3 * 8


def test_write_dataset_replaces_atomically(tmp_path: Path) -> None:
    recipe = recipe_from_dict({"model": {"name_or_path": "x"}, "data": {"tasks": ["piqa"],
                               "files": {"piqa": sample_file("piqa")}}})
    built = build_dataset(recipe.data, recipe.seed)
    out = tmp_path / "d"
    m1 = write_dataset(built.instances, out, recipe, sources=built.sources)
    m2 = write_dataset(built.instances[:3], out, recipe)  # sources re-fingerprinted
    assert m2["total"] == 3 and m1["sources"] == m2["sources"]
    assert len(load_instances(out)) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]  # no temp leftovers


# --------------------------------------------------------------------------- 9 x 10k, local files


def synth_rows(task: str, n: int, rng: random.Random) -> list[dict]:
    words = [f"w{k}" for k in range(500)]

    def sent(k: int) -> str:
        return " ".join(rng.choice(words) for _ in range(k))

    rows = []
    for i in range(n):
        if task == "piqa":
            rows.append({"goal": sent(8), "sol1": sent(12), "sol2": sent(12), "label": i % 2})
        elif task == "arc_easy":
            rows.append({"id": f"a{i}", "question": sent(15), "choices": {"text": [sent(3) for _ in range(4)],
                         "label": list("ABCD")}, "answerKey": "ABCD"[i % 4]})
        elif task == "copa":
            rows.append({"premise": sent(6), "choice1": sent(5), "choice2": sent(5),
                         "question": ("cause", "effect")[i % 2], "idx": i, "label": i % 2})
        elif task == "hellaswag":
            rows.append({"ind": i, "ctx_a": sent(20), "ctx_b": "the man", "ctx": "", "endings": [sent(10) for _ in range(4)],
                         "label": str(i % 4)})
        elif task == "story_cloze":
            rows.append({"InputStoryid": f"s{i}", **{f"InputSentence{k}": sent(8) for k in range(1, 5)},
                         "RandomFifthSentenceQuiz1": sent(8), "RandomFifthSentenceQuiz2": sent(8),
                         "AnswerRightEnding": 1 + i % 2})
        elif task == "lambada":
            rows.append({"text": sent(60)})
        elif task == "web_questions":
            rows.append({"url": "u", "question": sent(8), "answers": [f"answer {i}"]})
        elif task == "nq_open":
            rows.append({"question": sent(8), "answer": [f"answer {i}", f"alias {i}"]})
        elif task == "trivia_qa":
            rows.append({"question_id": f"t{i}", "question": sent(10),
                         "answer": {"value": f"Answer {i}", "aliases": [f"Answer {i}"], "normalized_aliases": []}})
    return rows


@pytest.mark.slow
def test_nine_tasks_ten_thousand_each_from_local_files(tmp_path: Path) -> None:
    rng = random.Random(0)
    files = {}
    for task in TASK9:
        path = tmp_path / f"{task}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in synth_rows(task, 10_000, rng)))
        files[task] = str(path)
    recipe = recipe_from_dict({"model": {"name_or_path": "x"},
                               "data": {"tasks": TASK9, "variants": ["negated"], "files": files}})
    start = time.perf_counter()
    built = build_dataset(recipe.data, recipe.seed)
    manifest = write_dataset(built.instances, tmp_path / "out", recipe, sources=built.sources)
    elapsed = time.perf_counter() - start
    assert manifest["total"] == 90_000
    assert all(manifest["counts"][t] == {"negated": 10_000} for t in TASK9)
    print(f"built 9 x 10k instances in {elapsed:.1f}s")  # timing is reported, not asserted


def test_registry_has_the_paper_tasks_and_demo() -> None:
    assert set(TASK9) | {"demo"} == set(TASKS)
    assert TASKS["demo"].hub is None and TASKS["story_cloze"].hub is None


def test_instance_json_round_trip() -> None:
    from negtune.data.instances import Instance

    for inst in build_instances(sample_cfg(max_instances=2), 0):
        assert Instance.from_json(inst.to_json()) == inst
    inst = Instance("t", "1", "original", "p", (" a",), 0, (0,), meta={"k": 1})
    assert inst.to_json()["meta"] == {"k": 1} and "meta" not in Instance("t", "1", "o", "p", (" a",), 0, (0,)).to_json()


def test_demo_task_reads_arc_schema_with_arc_templates() -> None:
    cfg = DataConfig(tasks=["demo"], variants=["original", "negated"], pairs=True,
                     files={"demo": sample_file("arc_easy")})
    insts = build_instances(cfg, 0)
    assert len(insts) == 40
    assert insts[0].prompt.startswith("Generate the correct answer to the following question. Question: ")
    assert insts[1].prompt.startswith("Generate the incorrect answer") and len(insts[1].gold) == 3


def test_parquet_csv_tsv_json_sources_agree(tmp_path: Path) -> None:
    import csv

    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [json.loads(line) for line in Path(sample_file("nq_open")).read_text().splitlines()]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "nq.parquet")
    for name, delim in (("nq.csv", ","), ("nq.tsv", "\t")):
        with open(tmp_path / name, "w", newline="") as fh:
            w = csv.writer(fh, delimiter=delim)
            w.writerow(["question", "answer"])
            w.writerows([r["question"], json.dumps(r["answer"])] for r in rows)
    (tmp_path / "nq.json").write_text(json.dumps(rows))
    results = []
    for name in ("nq.parquet", "nq.csv", "nq.tsv", "nq.json"):
        cfg = DataConfig(tasks=["nq_open"], variants=["original", "negated"], files={"nq_open": str(tmp_path / name)})
        results.append([i.to_json() for i in build_instances(cfg, 4)])
    ref = [i.to_json() for i in build_instances(
        DataConfig(tasks=["nq_open"], variants=["original", "negated"], files={"nq_open": sample_file("nq_open")}), 4)]
    assert all(r == ref for r in results)
