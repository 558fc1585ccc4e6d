"""Bad input: one line naming the file and row (or key), exit code 2, nothing written."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from negtune import cli
from negtune.data.build import build_instances
from negtune.data.paper_csv import read_paper_csv, write_paper_csv
from negtune.config import DataConfig
from negtune.errors import UserError

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "data" / "samples"


def jsonl(path: Path, rows: list) -> str:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return str(path)


PIQA_OK = {"goal": "g", "sol1": "a", "sol2": "b", "label": 0}
ARC_OK = {"id": "x1", "question": "q?", "choices": {"text": ["a", "b", "c", "d"], "label": list("ABCD")}, "answerKey": "B"}


def run_build(tmp_path: Path, capsys, data: dict, env: dict | None = None) -> str:
    recipe = tmp_path / "r.yaml"
    run_dir = tmp_path / "run"
    recipe.write_text(yaml.safe_dump({"output_dir": str(run_dir), "model": {"name_or_path": "x"}, "data": data}))
    out = tmp_path / "out"
    rc = cli.main(["build-data", str(recipe), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("negtune: error: ")
    assert not out.exists() and not run_dir.exists()
    return lines[0]


def test_missing_file(tmp_path, capsys):
    msg = run_build(tmp_path, capsys, {"tasks": ["piqa"], "files": {"piqa": str(tmp_path / "nope.jsonl")}})
    assert "nope.jsonl: file not found" in msg


def test_row_lacking_a_field(tmp_path, capsys):
    f = jsonl(tmp_path / "p.jsonl", [PIQA_OK, {"goal": "g", "sol1": "a", "label": 1}])
    msg = run_build(tmp_path, capsys, {"tasks": ["piqa"], "files": {"piqa": f}})
    assert f"{f}: row 2: missing field 'sol2'" in msg


def test_label_out_of_range(tmp_path, capsys):
    f = jsonl(tmp_path / "p.jsonl", [PIQA_OK, PIQA_OK, {**PIQA_OK, "label": 2}])
    msg = run_build(tmp_path, capsys, {"tasks": ["piqa"], "files": {"piqa": f}})
    assert f"{f}: row 3: field 'label': label 2 out of range (0-1)" in msg


@pytest.mark.parametrize("label, expected", [
    (1.5, "expected an integer label, got 1.5"),  # used to become 1 silently
    ("1", "expected an integer label, got '1'"),  # a string where the schema says int
])
def test_label_of_the_wrong_type(tmp_path, capsys, label, expected):
    f = jsonl(tmp_path / "p.jsonl", [PIQA_OK, {**PIQA_OK, "label": label}])
    msg = run_build(tmp_path, capsys, {"tasks": ["piqa"], "files": {"piqa": f}})
    assert f"{f}: row 2: field 'label': {expected}" in msg


def test_all_options_identical(tmp_path, capsys):
    f = jsonl(tmp_path / "p.jsonl", [PIQA_OK, {**PIQA_OK, "sol1": "same", "sol2": "same"}])
    msg = run_build(tmp_path, capsys, {"tasks": ["piqa"], "files": {"piqa": f}})
    assert f"{f}: row 2: all 2 options are identical (' Same')" in msg
    csv_file = tmp_path / "x_300.csv"
    csv_file.write_text("sample_id,prompt,classes,answer_index\n0,q,\"[' a', ' a']\",0\n")
    with pytest.raises(UserError, match=r"x_300.csv: row 1: all 2 options are identical"):
        read_paper_csv(csv_file)


def test_arc_answer_key_out_of_range(tmp_path, capsys):
    f = jsonl(tmp_path / "a.jsonl", [{**ARC_OK, "answerKey": "E"}])
    msg = run_build(tmp_path, capsys, {"tasks": ["arc_easy"], "files": {"arc_easy": f}})
    assert f"{f}: row 1: field 'answerKey'" in msg and "out of range" in msg


def test_story_cloze_tsv_bad_ending_and_missing_column(tmp_path, capsys):
    header = ["InputStoryid"] + [f"InputSentence{i}" for i in range(1, 5)] + [
        "RandomFifthSentenceQuiz1", "RandomFifthSentenceQuiz2", "AnswerRightEnding"]
    good = ["s1", "a.", "b.", "c.", "d.", "e.", "f.", "1"]
    f = tmp_path / "s.tsv"
    f.write_text("\t".join(header) + "\n" + "\t".join(good) + "\n" + "\t".join(good[:-1] + ["3"]) + "\n")
    msg = run_build(tmp_path, capsys, {"tasks": ["story_cloze"], "files": {"story_cloze": str(f)}})
    assert f"{f}: row 2: field 'AnswerRightEnding': label 3 out of range (1-2)" in msg
    g = tmp_path / "s.csv"
    g.write_text(",".join(header[:-1]) + "\n" + ",".join(good[:-1]) + "\n")
    msg = run_build(tmp_path, capsys, {"tasks": ["story_cloze"], "files": {"story_cloze": str(g)}})
    assert f"{g}: missing column 'AnswerRightEnding'" in msg


def test_empty_split(tmp_path, capsys):
    f = tmp_path / "empty.jsonl"
    f.write_text("")
    msg = run_build(tmp_path, capsys, {"tasks": ["piqa"], "files": {"piqa": str(f)}})
    assert f"{f}: no rows (empty split)" in msg


def test_duplicate_ids(tmp_path, capsys):
    """A repeated id with another question or answer names both rows (identical repeats merge:
    tests/data/test_hub_build.py)."""
    f = jsonl(tmp_path / "a.jsonl", [ARC_OK, {**ARC_OK, "id": "x2"}, {**ARC_OK, "question": "other?"}])
    msg = run_build(tmp_path, capsys, {"tasks": ["arc_easy"], "files": {"arc_easy": f}})
    assert msg.endswith(f"{f}: row 3: duplicate id 'x1' with a different question than {f}: row 1")
    g = jsonl(tmp_path / "b.jsonl", [ARC_OK, {**ARC_OK, "answerKey": "C"}])
    msg = run_build(tmp_path, capsys, {"tasks": ["arc_easy"], "files": {"arc_easy": g}})
    assert msg.endswith(f"{g}: row 2: duplicate id 'x1' with a different answer than {g}: row 1")


def test_invalid_json_row(tmp_path, capsys):
    f = jsonl(tmp_path / "p.jsonl", [PIQA_OK, "{not json"])
    msg = run_build(tmp_path, capsys, {"tasks": ["piqa"], "files": {"piqa": f}})
    assert f"{f}: row 2: invalid JSON" in msg


def test_unknown_task_and_variant(tmp_path, capsys):
    msg = run_build(tmp_path, capsys, {"tasks": ["piqa", "boolq"]})
    assert "data.tasks[1]: unknown task 'boolq' (known: piqa," in msg
    f = jsonl(tmp_path / "p.jsonl", [PIQA_OK])
    msg = run_build(tmp_path, capsys, {"tasks": ["piqa"], "variants": ["negated", "sarcastic"], "files": {"piqa": f}})
    assert "data.variants[1]: unknown variant 'sarcastic' for task 'piqa' (known: original, negated, instruction_free)" in msg


def test_task_without_hub_source_needs_files(tmp_path, capsys):
    msg = run_build(tmp_path, capsys, {"tasks": ["story_cloze"]})
    assert "data.files.story_cloze: required" in msg


def test_lambada_passage_too_short_and_qa_without_distractor(tmp_path, capsys):
    f = jsonl(tmp_path / "l.jsonl", [{"text": "the cat the dog"}])
    msg = run_build(tmp_path, capsys, {"tasks": ["lambada"], "files": {"lambada": f}})
    assert f"{f}: row 1: passage has fewer than 3 distinct words" in msg
    g = jsonl(tmp_path / "w.jsonl", [{"question": "a?", "answers": ["Paris"]}, {"question": "b?", "answers": ["paris"]}])
    msg = run_build(tmp_path, capsys, {"tasks": ["web_questions"], "files": {"web_questions": g}})
    assert f"{g}: row 1: no distractor" in msg


@pytest.mark.slow
def test_hub_unreachable_is_one_line(tmp_path):
    """Real datasets.load_dataset in offline mode with an empty cache: one line, exit 2."""
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"output_dir": str(tmp_path / "run"), "model": {"name_or_path": "x"},
                                      "data": {"tasks": ["piqa"], "cache_dir": str(tmp_path / "cache")}}))
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    proc = subprocess.run([sys.executable, "-m", "negtune.cli", "build-data", str(recipe)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.startswith("negtune:")]
    assert len(lines) == 1 and "baber/piqa" in lines[0] and "could not be loaded" in lines[0], proc.stderr
    assert "data.files.piqa" in lines[0]
    assert not (tmp_path / "run").exists()


def test_bad_nested_field_in_csv(tmp_path):
    f = tmp_path / "a.csv"
    f.write_text('id,question,choices,answerKey\nx,q?,"{not a list",A\n')
    with pytest.raises(UserError, match=r"a\.csv: row 1: field 'choices': cannot parse"):
        build_instances(DataConfig(tasks=["arc_easy"], files={"arc_easy": str(f)}), 0)


# --------------------------------------------------------------------------- paper CSV reader


def csv_error(tmp_path: Path, text: str, name: str = "t_q_a.csv") -> str:
    p = tmp_path / name
    p.write_text(text)
    with pytest.raises(UserError) as info:
        read_paper_csv(p)
    msg = str(info.value)
    assert "\n" not in msg and str(p) in msg
    return msg


HEADER = "sample_id,prompt,classes,answer_index\n"


def test_paper_csv_bad_inputs(tmp_path):
    with pytest.raises(UserError, match="file not found"):
        read_paper_csv(tmp_path / "missing.csv")
    assert "empty file" in csv_error(tmp_path, "")
    assert "no rows" in csv_error(tmp_path, HEADER)
    assert "missing column 'answer_index'" in csv_error(tmp_path, "sample_id,prompt,classes\n0,p,\"[' a']\"\n")
    assert "row 2: unparsable option list" in csv_error(
        tmp_path, HEADER + "0,p,\"[' a', ' b']\",0\n1,p,\"[' a', ' b'\",0\n")
    assert "row 1: unparsable option list" in csv_error(tmp_path, HEADER + "0,p,\"[1, 2]\",0\n")
    assert "row 1: answer index 2 out of range (2 options)" in csv_error(tmp_path, HEADER + "0,p,\"[' a', ' b']\",2\n")
    assert "row 1: malformed answer set '0;1'" in csv_error(tmp_path, HEADER + "0,p,\"[' a', ' b', ' c']\",0;1\n")
    assert "row 1: malformed answer set ''" in csv_error(tmp_path, HEADER + "0,p,\"[' a', ' b', ' c']\",\n")
    assert "row 2: duplicate sample_id '0'" in csv_error(
        tmp_path, HEADER + "0,p,\"[' a', ' b']\",0\n0,q,\"[' a', ' b']\",1\n")


def test_paper_csv_round_trip(tmp_path):
    cfg = DataConfig(tasks=["arc_easy", "nq_open"], variants=["negated"],
                     files={"arc_easy": str(SAMPLES / "arc_easy" / "train.jsonl"),
                            "nq_open": str(SAMPLES / "nq_open" / "train.jsonl")})
    insts = [i for i in build_instances(cfg, 0)]
    path = tmp_path / "mixed_negation.csv"
    write_paper_csv(path, insts)
    back = read_paper_csv(path, task=None)
    assert [(b.source_id, b.prompt, b.options, b.gold, b.variant) for b in back] == [
        (i.source_id, i.prompt, i.options, i.gold, "negated") for i in insts]
    assert path.read_text().splitlines()[1].count(",") >= 3


def test_paper_files_rewrite_byte_identical():
    from negtune.data.paper_csv import paper_csv_text

    base = Path(__file__).parents[2].parent / "shared" / "paper_eval"
    if not base.is_dir():
        base = Path("/work/shared/paper_eval")
    if not base.is_dir():
        pytest.skip("paper_eval CSVs not available")
    checked = 0
    for path in sorted(base.glob("*.csv")):
        raw = path.read_bytes().decode("utf-8")
        insts = read_paper_csv(path)
        assert insts[0].task in {"piqa", "arc_easy", "copa", "hellaswag", "story_cloze", "lambada",
                                 "web_questions", "nq_open", "trivia_qa"}
        assert insts[0].variant == ("negated" if "negation" in path.name.lower() else "original")
        if "\r" not in raw and raw.endswith("\n"):
            assert paper_csv_text(insts) == raw
            checked += 1
    assert checked >= 20
