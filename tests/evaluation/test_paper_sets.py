"""``eval.paper_csv_dir``: the paper's released files as a recipe's evaluation sets.

Every task's original and negated file is found by name, paired item by item and evaluated
under the task's registry name, so numbers line up with the paper's. The files are read from
../shared/paper_eval (third-party; symlinked, never copied, when a test needs a partial copy).
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import yaml

from negtune.cli import main as cli_main
from negtune.config import recipe_from_dict
from negtune.data.paper_csv import read_paper_csv
from negtune.errors import UserError
from negtune.evaluation.sets import build_eval_sets

TASK9 = ["piqa", "arc_easy", "copa", "hellaswag", "story_cloze", "lambada", "web_questions", "nq_open", "trivia_qa"]


def recipe(paper_dir, **eval_):
    return recipe_from_dict({"model": {"name_or_path": "x"},
                             "eval": {"tasks": TASK9, "paper_csv_dir": str(paper_dir), **eval_}}, "r.yaml")


def test_every_task_reads_its_full_paper_files(paper_eval_dir):
    sets = build_eval_sets(recipe(paper_eval_dir, variants=["original", "negated", "instruction_free"]))
    counts = Counter((i.task, i.variant) for i in sets)
    for task in TASK9:
        n = 100 if task == "copa" else 300
        assert counts[(task, "original")] == counts[(task, "negated")] == counts[(task, "instruction_free")] == n
    # paired: every negated item shares its original's source_id and options (as a set)
    by_key: dict = {}
    for inst in sets:
        by_key.setdefault(inst.pair_key, {})[inst.variant] = inst
    assert len(by_key) == 8 * 300 + 100
    for variants in by_key.values():
        o, n, f = variants["original"], variants["negated"], variants["instruction_free"]
        assert sorted(o.options) == sorted(n.options) and f.options == o.options and f.gold == o.gold
        assert f.prompt in o.prompt and len(f.prompt) < len(o.prompt)
    # WebQuestions' negated file numbers items 0, 2, 4, ...: paired by prompt, not sample_id
    web = [i for i in sets if i.task == "web_questions" and i.variant == "negated"]
    assert any(i.meta["sample_id"] != i.source_id for i in web)
    assert all(i.meta["file"].endswith("webqa_correct_answer_negation_300.csv") for i in web)
    # the files as released: the original file's rows, unchanged
    piqa = [i for i in sets if i.task == "piqa" and i.variant == "original"]
    released = read_paper_csv(paper_eval_dir / "piqa_generate_300.csv")
    assert [(i.prompt, i.options, i.gold) for i in piqa] == [(r.prompt, r.options, r.gold) for r in released]


def test_limit_keeps_the_first_items(paper_eval_dir):
    sets = build_eval_sets(recipe(paper_eval_dir), limit=5)
    assert Counter(i.task for i in sets) == {t: 10 for t in TASK9}
    assert sorted({i.source_id for i in sets if i.task == "arc_easy"}) == ["0", "1", "2", "3", "4"]


def partial_copy(paper_eval_dir: Path, tmp_path: Path, leave_out: str) -> Path:
    d = tmp_path / "paper"
    d.mkdir()
    for f in paper_eval_dir.iterdir():
        if f.name != leave_out:
            (d / f.name).symlink_to(f)
    return d


def test_a_missing_file_is_one_line_naming_directory_and_name(paper_eval_dir, tmp_path):
    d = partial_copy(paper_eval_dir, tmp_path, "piqa_generate_negation_300.csv")
    with pytest.raises(UserError) as err:
        build_eval_sets(recipe(d))
    assert str(err.value) == (f"{d}: no negated paper file for task 'piqa' (expected piqa_generate_negation_300.csv; "
                              "from eval.paper_csv_dir)")


def test_files_found_by_task_prefix_largest_set_first(paper_eval_dir, tmp_path):
    """Renamed files: any original/negated pair whose name maps to the task, same set and size,
    the largest size first; two different sets for one task are refused."""
    from negtune.data.paper_csv import find_paper_files

    d = tmp_path / "own"
    d.mkdir()
    src = {"orig": paper_eval_dir / "piqa_generate_300.csv", "neg": paper_eval_dir / "piqa_generate_negation_300.csv"}
    for name, target in [("piqa_mine_120.csv", "orig"), ("piqa_mine_negated_120.csv", "neg"),
                         ("piqa_mine_50.csv", "orig"), ("piqa_mine_negated_50.csv", "neg")]:
        (d / name).symlink_to(src[target])
    assert find_paper_files(d, "piqa") == (d / "piqa_mine_120.csv", d / "piqa_mine_negated_120.csv")
    (d / "piqa_other_10.csv").symlink_to(src["orig"])
    with pytest.raises(UserError, match=r"task 'piqa' has several paper sets \(piqa_mine, piqa_other\)"):
        find_paper_files(d, "piqa")


def test_eval_cli_on_the_paper_sets(paper_eval_dir, tiny_opt_dir, tmp_path, capsys):
    raw = {"model": {"name_or_path": str(tiny_opt_dir)},
           "eval": {"tasks": TASK9, "paper_csv_dir": str(paper_eval_dir), "limit": 2, "batch_size": 8}}
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(raw))
    out = tmp_path / "res.json"
    assert cli_main(["eval", "--recipe", str(path), "--out", str(out), "--quiet"]) == 0
    res = json.loads(out.read_text())
    assert set(res["tasks"]) == set(TASK9)
    assert all(res["tasks"][t]["n_pairs"] == 2 for t in TASK9)
    capsys.readouterr()
    # bad input: the directory lacks a task's file -> one line, exit 2, nothing written
    d = partial_copy(paper_eval_dir, tmp_path, "ai2_arc_q_a_300.csv")
    raw["eval"]["paper_csv_dir"] = str(d)
    path.write_text(yaml.safe_dump(raw))
    out2 = tmp_path / "res2.json"
    assert cli_main(["eval", "--recipe", str(path), "--out", str(out2), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"negtune: error: {d}: no original paper file for task 'arc_easy' (expected ai2_arc_q_a_300.csv; "
                   "from eval.paper_csv_dir)"]
    assert not out2.exists()


@pytest.mark.parametrize("eval_, message", [
    ({"tasks": []}, "r.yaml: eval.paper_csv_dir: list the tasks to evaluate in eval.tasks"),
    ({"tasks": ["piqa"], "files": {"piqa": "x.jsonl"}},
     "r.yaml: eval.files.piqa: conflicts with eval.paper_csv_dir (the paper's files are the evaluation set)"),
    ({"tasks": ["demo"]}, "r.yaml: eval.tasks[0]: task 'demo' has no paper CSV files (eval.paper_csv_dir)"),
])
def test_recipe_checks(eval_, message):
    with pytest.raises(UserError) as err:
        recipe_from_dict({"model": {"name_or_path": "x"}, "eval": {"paper_csv_dir": "somewhere", **eval_}}, "r.yaml")
    assert str(err.value) == message


def test_opt_recipes_show_the_keys_commented():
    for path in sorted((Path(__file__).parents[2] / "recipes").glob("opt*.yaml")):
        text = path.read_text()
        assert "# paper_csv_dir:" in text and "# hub_mirror:" in text, path
        r = recipe_from_dict(yaml.safe_load(text.replace("# paper_csv_dir:", "paper_csv_dir:")), str(path))
        assert r.eval.paper_csv_dir and r.eval.tasks
