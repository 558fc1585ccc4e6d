"""Train/evaluation overlap: training items an evaluation set of the recipe holds are dropped
(counted per task in the manifest and the summary) or refused (``data.on_overlap: error``).

The paper's StoryCloze items come from StoryCloze's validation/test files, the only labelled
ones, so a user who trains on them trains on the paper's evaluation items: the first test
builds exactly that case from the paper's own file. Items are matched across sources by their
question/context text (a CSV row by its rendered prompt, a source row by its fields).
"""
from __future__ import annotations

import csv
import json
import pathlib

import pytest
import yaml

from fixtures import hub_mirror as hm
from negtune import cli
from negtune.config import recipe_from_dict
from negtune.data.build import build_dataset
from negtune.data.paper_csv import read_paper_csv, write_paper_csv

STORY_PREFIX = "Generate a natural ending for the following story: "
STORY_COLUMNS = ["InputStoryid", "InputSentence1", "InputSentence2", "InputSentence3", "InputSentence4",
                 "RandomFifthSentenceQuiz1", "RandomFifthSentenceQuiz2", "AnswerRightEnding"]


def story_rows(paper_eval_dir: pathlib.Path, n: int) -> list[dict]:
    """The first ``n`` items of the paper's StoryCloze file in the official cloze-test schema."""
    rows = []
    for inst in read_paper_csv(paper_eval_dir / "story_cloze_Generate_Ending_300.csv")[:n]:
        assert inst.prompt.startswith(STORY_PREFIX)
        sentences = inst.prompt[len(STORY_PREFIX):].split(" ", 3)  # any 4-way split joins back the same
        rows.append({"InputStoryid": f"paper-{inst.source_id}", **{f"InputSentence{k + 1}": s for k, s in enumerate(sentences)},
                     "RandomFifthSentenceQuiz1": inst.options[0][1:], "RandomFifthSentenceQuiz2": inst.options[1][1:],
                     "AnswerRightEnding": inst.gold[0] + 1})
    return rows


def invented_stories(n: int) -> list[dict]:
    return [{"InputStoryid": f"own-{k}", "InputSentence1": f"Mira planted {k + 2} bulbs in autumn.",
             "InputSentence2": "Winter was long and cold.", "InputSentence3": "In spring she checked the bed daily.",
             "InputSentence4": f"On day {k + 10} green tips appeared.", "RandomFifthSentenceQuiz1": "She smiled at the garden.",
             "RandomFifthSentenceQuiz2": "She sold the garden to a whale.", "AnswerRightEnding": 1} for k in range(n)]


def write_csv(path: pathlib.Path, rows: list[dict]) -> str:
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=STORY_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return str(path)


def write_recipe(tmp_path: pathlib.Path, data: dict, eval_: dict) -> pathlib.Path:
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump({"seed": 1, "output_dir": str(tmp_path / "run"), "model": {"name_or_path": "x"},
                                    "data": {"variants": ["original", "negated"], "pairs": True, **data},
                                    "eval": eval_}))
    return path


def build_error(path: pathlib.Path, tmp_path: pathlib.Path, capsys) -> str:
    out = tmp_path / "out-error"
    rc = cli.main(["build-data", str(path), "--out", str(out)])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("negtune: error: ")]
    assert rc == 2 and len(errors) == 1, err
    assert not out.exists() and not (tmp_path / "run").exists()
    return errors[0]


def test_story_cloze_paper_items_are_dropped_from_training(paper_eval_dir, tmp_path, capsys):
    train = write_csv(tmp_path / "train.csv", story_rows(paper_eval_dir, 30) + invented_stories(10))
    path = write_recipe(tmp_path, {"tasks": ["story_cloze"], "files": {"story_cloze": train}},
                        {"tasks": ["story_cloze"], "paper_csv_dir": str(paper_eval_dir)})
    out = tmp_path / "out"
    assert cli.main(["build-data", str(path), "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert "story_cloze: " in stdout and "30 overlaps dropped, 10 items" in stdout
    manifest = json.loads((out / "manifest.json").read_text())
    report = manifest["report"]["story_cloze"]
    assert (report["rows"], report["overlaps_dropped"], report["items"], report["instances"]) == (40, 30, 10, 20)
    assert report["compared_with"] == [str(paper_eval_dir / "story_cloze_Generate_Ending_300.csv"),
                                       str(paper_eval_dir / "story_cloze_Generate_Ending_Negation_300.csv")]
    ids = {json.loads(line)["source_id"] for line in (out / "instances.jsonl").read_text().splitlines()}
    assert ids == {f"own-{k}" for k in range(10)}

    # on_overlap: error -> one line naming a training row and the evaluation row, nothing written
    path = write_recipe(tmp_path, {"tasks": ["story_cloze"], "files": {"story_cloze": train}, "on_overlap": "error"},
                        {"tasks": ["story_cloze"], "paper_csv_dir": str(paper_eval_dir)})
    msg = build_error(path, tmp_path, capsys)
    assert msg == (f"negtune: error: data.on_overlap: error: 30 training item(s) of task 'story_cloze' are in an "
                   f"evaluation set, e.g. {train}: row 1 = {paper_eval_dir / 'story_cloze_Generate_Ending_300.csv'}: "
                   "sample_id 0; set data.on_overlap: drop to train without them")


def test_every_training_item_overlapping_is_an_error(paper_eval_dir, tmp_path, capsys):
    train = write_csv(tmp_path / "train.csv", story_rows(paper_eval_dir, 5))
    path = write_recipe(tmp_path, {"tasks": ["story_cloze"], "files": {"story_cloze": train}},
                        {"tasks": ["story_cloze"], "paper_csv_dir": str(paper_eval_dir)})
    assert "all 5 training items are in an evaluation set" in build_error(path, tmp_path, capsys)


def test_hub_training_split_against_a_local_eval_file(tmp_path):
    """LAMBADA trains on the hub's validation passages; an evaluation file holding two of them
    (re-typed with other spacing and case) drops those two."""
    mirror = hm.build_hub_mirror(tmp_path / "mirror")
    passages = [r["text"] for r in hm.LAMBADA_ROWS["validation"]]
    other = "the dog slept by the fire all evening , dreaming of rabbits and long walks in the park"
    evalf = tmp_path / "lambada_eval.jsonl"
    evalf.write_text("".join(json.dumps({"text": t}) + "\n"
                             for t in [passages[0].upper(), "  " + passages[3].replace(" , ", ", "), other]))
    raw = {"model": {"name_or_path": "x"},
           "data": {"tasks": ["lambada"], "variants": ["negated"], "hub_mirror": str(mirror),
                    "cache_dir": str(tmp_path / "cache")},
           "eval": {"tasks": ["lambada"], "files": {"lambada": str(evalf)}}}
    recipe = recipe_from_dict(raw)
    built = build_dataset(recipe.data, 0, recipe.eval)
    assert built.report["lambada"]["overlaps_dropped"] == 2
    assert built.report["lambada"]["items"] == len(passages) - 2
    assert built.report["lambada"]["compared_with"] == [f"eval {evalf}"]
    kept = {i.prompt.split("\n\n", 1)[1] for i in built.instances}
    assert passages[0].rsplit(" ", 1)[0] not in kept and passages[1].rsplit(" ", 1)[0] in kept
    # without the eval section (the plain API) nothing is compared
    assert build_dataset(recipe.data, 0).report["lambada"]["overlaps_dropped"] == 0


def test_eval_csv_set_in_its_own_wording(tmp_path):
    """An ``eval.csv`` set in a wording no template has: a training question contained in one
    of its prompts (as whole words) is an overlap. The three prompts share more than their
    instruction ("Quiz time! Which of these is a m..."), so a prompt-minus-shared-text rule
    would miss them."""
    rows = [json.loads(line) for line in (pathlib.Path(__file__).parents[2] / "data/samples/arc_easy/train.jsonl")
            .read_text().splitlines()]
    from negtune.data.instances import Instance

    picked = rows[:3]
    insts = [Instance("x", str(k), "original", f"Quiz time! {r['question']} Your pick:", (" A", " B"), 0, (0,))
             for k, r in enumerate(picked)]
    custom = tmp_path / "quiz_custom_3.csv"
    write_paper_csv(custom, insts)
    train = tmp_path / "arc.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in rows))
    raw = {"model": {"name_or_path": "x"},
           "data": {"tasks": ["arc_easy"], "variants": ["negated"], "files": {"arc_easy": str(train)}},
           "eval": {"csv": [{"name": "quiz", "files": {"original": str(custom)}}]}}
    recipe = recipe_from_dict(raw)
    built = build_dataset(recipe.data, 0, recipe.eval)
    questions = {r["question"] for r in picked}
    expected = sum(r["question"] in questions for r in rows)
    assert built.report["arc_easy"]["overlaps_dropped"] == expected >= 3


def test_trainer_checks_overlap_too(tiny_opt_dir, tmp_path):
    """The trainer builds its data with the same check and writes the report to RUN_DIR/data."""
    from negtune.training.checks import check_recipe
    from negtune.training.trainer import Trainer

    samples = pathlib.Path(__file__).parents[2] / "data/samples/copa"
    rows = (samples / "train.jsonl").read_text().splitlines()
    evalf = tmp_path / "copa_eval.jsonl"
    evalf.write_text("\n".join(rows[:4]) + "\n")
    raw = {"model": {"name_or_path": str(tiny_opt_dir)}, "output_dir": str(tmp_path / "run"),
           "data": {"tasks": ["copa"], "variants": ["negated"], "files": {"copa": str(samples / "train.jsonl")}},
           "eval": {"tasks": ["copa"], "files": {"copa": str(evalf)}},
           "train": {"per_device_batch_size": 2, "trackers": []}}
    trainer = Trainer(check_recipe(recipe_from_dict(raw, "r.yaml"), None, 1), save=False)
    trainer.setup()
    assert len(trainer.instances) == len(rows) - 4
    manifest = json.loads((tmp_path / "run" / "data" / "manifest.json").read_text())
    assert manifest["report"]["copa"]["overlaps_dropped"] == 4


@pytest.mark.parametrize("bad", ["sometimes", 1])
def test_on_overlap_is_validated(bad):
    from negtune.errors import UserError

    with pytest.raises(UserError, match=r"data.on_overlap: expected one of 'drop', 'error'"):
        recipe_from_dict({"model": {"name_or_path": "x"}, "data": {"on_overlap": bad}}, "r.yaml")
