"""The paper's distractor rules.

QA (WebQuestions, NQ, TriviaQA): the other option comes "from the answer candidate list from
the training set that did not overlap with any of the answer candidates from the test set",
for training and evaluation instances alike. LAMBADA: "a random word from the given input
instance", punctuation tokens and clitics included (the paper's released items hold them);
negtune's earlier letters-only rule stays available as ``data.lambada_distractors: words``.
"""
from __future__ import annotations

import json
import string
from collections import Counter
from pathlib import Path

import pytest
import yaml

from negtune import cli
from negtune.config import DataConfig, load_recipe, recipe_from_dict
from negtune.data.build import build_dataset, load_instances, load_items
from negtune.data.options import normalize_answer
from negtune.errors import UserError
from negtune.evaluation.sets import build_eval_sets


def jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


TRAIN = [{"question": f"train question {k}", "answer": [a]} for k, a in
         enumerate(["Alpha", "Bravo", "Charlie", "Delta", "Echo", "Foxtrot"])]
EVAL = [{"question": "eval question 1", "answer": ["bravo!"]},  # normalises to a training answer
        {"question": "eval question 2", "answer": ["Golf", "The Charlie"]}]  # an alias does too


def distractors(instances) -> dict[str, str]:
    return {i.prompt: i.options[1 - i.gold[0]] for i in instances if i.variant == "original"}


def write_recipe(tmp_path: Path, seed: int, train: str, evalf: str) -> Path:
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump({
        "seed": seed, "output_dir": str(tmp_path / "run"), "model": {"name_or_path": "x"},
        "data": {"tasks": ["nq_open"], "variants": ["original"], "files": {"nq_open": train}},
        "eval": {"tasks": ["nq_open"], "variants": ["original", "negated"], "files": {"nq_open": evalf}}}))
    return path


def test_training_distractors_never_name_an_evaluation_answer(tmp_path):
    train = jsonl(tmp_path / "train.jsonl", TRAIN)
    evalf = jsonl(tmp_path / "eval.jsonl", EVAL)
    seen: Counter = Counter()
    for seed in range(25):
        out = tmp_path / f"out{seed}"
        assert cli.main(["build-data", str(write_recipe(tmp_path, seed, train, evalf)), "--out", str(out)]) == 0
        for d in distractors(load_instances(out)).values():
            seen[normalize_answer(d)] += 1
    assert set(seen) <= {"alpha", "delta", "echo", "foxtrot"}  # never bravo, never charlie
    assert len(seen) == 4


def test_evaluation_distractors_come_from_training_answers(tmp_path):
    train = jsonl(tmp_path / "train.jsonl", TRAIN)
    evalf = jsonl(tmp_path / "eval.jsonl", EVAL + [{"question": "eval question 3", "answer": ["Hotel"]}])
    seen = set()
    for seed in range(25):
        for inst in build_eval_sets(load_recipe(write_recipe(tmp_path, seed, train, evalf))):
            original_answer = [k for k in range(2) if (k in inst.gold) == (inst.variant == "original")]
            seen.update(normalize_answer(o) for k, o in enumerate(inst.options) if k not in original_answer)
    # the evaluation split's own answers (golf, hotel, bravo, charlie) are never distractors
    assert seen <= {"alpha", "delta", "echo", "foxtrot"} and len(seen) >= 3


def test_no_distractor_left_is_one_line(tmp_path):
    train = jsonl(tmp_path / "train.jsonl", TRAIN[:2])  # Alpha, Bravo
    evalf = jsonl(tmp_path / "eval.jsonl", [{"question": "e", "answer": ["Alpha"]}])
    r = recipe_from_dict({"model": {"name_or_path": "x"},
                          "data": {"tasks": ["nq_open"], "files": {"nq_open": train}},
                          "eval": {"tasks": ["nq_open"], "files": {"nq_open": evalf}}})
    with pytest.raises(UserError) as err:
        build_dataset(r.data, r.seed, r.eval)
    assert str(err.value) == (f"{train}: row 2: no distractor: the training answers ({train}) hold no answer that "
                              "is neither an alias of this one nor an answer of an evaluation set")


# ---------------------------------------------------------------------------------- LAMBADA

PREFIX = "Please generate a natural ending following the given chunk of text.\n\n"


def kind(token: str) -> str:
    if all(c in string.punctuation for c in token):
        return "punctuation"
    if token[0] == "'" or token.lower() == "n't":
        return "clitic"
    return "word"


def test_lambada_default_rule_reproduces_the_papers_distractors(paper_eval_dir, tmp_path):
    """The paper's 350 released LAMBADA items (300 + 50 files): rebuilt from their passages
    with the default rule, the distractors hold punctuation tokens and clitics in about the
    paper's proportions (the paper: 82 and 34 of 1,050); the ``words`` rule holds none."""
    from negtune.data.paper_csv import read_paper_csv

    rows = (read_paper_csv(paper_eval_dir / "lambada_please_next_word_300.csv")
            + read_paper_csv(paper_eval_dir / "lambada_please_next_word_50.csv"))
    paper = Counter(kind(o[1:]) for r in rows for k, o in enumerate(r.options) if k not in r.gold)
    assert sum(paper.values()) == 1050 and paper["punctuation"] > 50 and paper["clitic"] > 20
    path = jsonl(tmp_path / "lambada.jsonl", [
        {"id": f"p{k}", "text": r.prompt[len(PREFIX):] + " " + r.options[r.gold[0]][1:].lower()}
        for k, r in enumerate(rows)])
    items, _ = load_items("lambada", "validation", path, seed=0)
    ours = Counter(kind(o[1:]) for it in items for k, o in enumerate(it.options) if k != it.answer)
    for what in ("punctuation", "clitic"):
        assert 0.6 * paper[what] <= ours[what] <= 1.5 * paper[what], (what, ours, paper)
    for it, r in zip(items, rows):
        tokens = {t.lower() for t in r.prompt[len(PREFIX):].split()}
        assert len({o.lower() for o in it.options}) == 4
        assert all(o[1:].lower() in tokens for k, o in enumerate(it.options) if k != it.answer)
    words, _ = load_items("lambada", "validation", path, seed=0, data=DataConfig(lambada_distractors="words"))
    assert {kind(o[1:]) for it in words for o in it.options} == {"word"}


def test_lambada_rule_is_a_recipe_key(tmp_path):
    text = "he said , `` it 's the bridge '' and walked to the bridge"
    path = jsonl(tmp_path / "l.jsonl", [{"text": text}])
    options = {}
    for rule in ("paper", "words"):
        r = recipe_from_dict({"model": {"name_or_path": "x"}, "data": {
            "tasks": ["lambada"], "variants": ["original"], "files": {"lambada": path}, "lambada_distractors": rule}})
        found = set()
        for seed in range(40):
            [inst] = build_dataset(r.data, seed).instances
            found |= {o for k, o in enumerate(inst.options) if k != inst.gold[0]}
        options[rule] = found
    assert {" ,", " ``", " 's", " ''"} & options["paper"]
    assert not {o for o in options["words"] if not o[1].isalpha()}
    with pytest.raises(UserError, match="data.lambada_distractors: expected one of 'paper', 'words'"):
        recipe_from_dict({"model": {"name_or_path": "x"}, "data": {"lambada_distractors": "letters"}})
