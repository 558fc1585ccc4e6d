"""Our templates + field mappings reproduce the paper's released prompts character for character.

For every row of every paper CSV we parse the prompt back into the source's fields with
literal prefixes written here (independently of negtune.data.variants), build a row in the
hub source's schema, run the task's parser and renderer, and compare prompt, options and
answer sets with the CSV (original and negated files). The CSVs are third-party: they are
read from ../shared/paper_eval and never copied into the repository.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from negtune.data.build import gold_indices, load_items, make_instances
from negtune.data.options import passage_tokens
from negtune.data.paper_csv import read_paper_csv
from negtune.data.fields import TextRow
from negtune.data.instances import Item
from negtune.data.tasks import get_task, get_variant


def _paper_dir() -> Path:
    for cand in (Path(__file__).parents[2].parent / "shared" / "paper_eval", Path("/work/shared/paper_eval")):
        if cand.is_dir():
            return cand
    pytest.skip("paper_eval CSVs not available")


PAPER = None


def paper(name: str) -> list:
    return read_paper_csv(_paper_dir() / name)


def lower_first(text: str) -> str:
    """Sources store many options lower-case; the paper capitalises the first character."""
    return text[:1].lower() + text[1:]


def strip_prefix(prompt: str, prefix: str, suffix: str = "") -> str:
    assert prompt.startswith(prefix), prompt[:80]
    assert prompt.endswith(suffix), prompt[-40:]
    return prompt[len(prefix) : len(prompt) - len(suffix)]


# Literal instruction text of the paper, per task: (original prefix, negated prefix, suffix)
PREFIX = {
    "piqa": ("Generate the correct solution to accomplish the following goal: ",
             "Generate the incorrect solution to accomplish the following goal: ", ""),
    "arc_easy": ("Generate the correct answer to the following question. Question: ",
                 "Generate the incorrect answer to the following question. Question: ", " Answer is"),
    "copa": ("Complete the sentence with the appropriate ending. ",
             "Complete the sentence with an inappropriate ending. ", "..."),
    "hellaswag": ("Complete the sentence with an appropriate ending: ",
                  "Complete the sentence with an inappropriate ending: ", ""),
    "story_cloze": ("Generate a natural ending for the following story: ",
                    "Generate an unnatural ending for the following story: ", ""),
    "lambada": ("Please generate a natural ending following the given chunk of text.\n\n",
                "Please generate an unnatural ending following the given chunk of text.\n\n", ""),
    "web_questions": ('Give me a possible correct answer to the question "',
                      'Give me a possible incorrect answer to the question "', '"'),
    "nq_open": ("The goal is to predict a correct English answer string for an input English question.\nQuestion: ",
                "The goal is to predict an incorrect English answer string for an input English question.\nQuestion: ",
                "\nAnswer:"),
    "trivia_qa": ("What is a correct answer to the following question?\nQuestion: ",
                  "What is an incorrect answer to the following question?\nQuestion: ", "\nAnswer:"),
}

FILES = {
    "piqa": [("piqa_generate_300.csv", "piqa_generate_negation_300.csv"),
             ("piqa_generate_50.csv", "piqa_generate_negation_50.csv")],
    "arc_easy": [("ai2_arc_q_a_300.csv", "ai2_arc_q_a_negation_300.csv"),
                 ("ai2_arc_q_a_50.csv", "ai2_arc_q_a_negation_50.csv")],
    "copa": [("super_glue_generate_100.csv", "super_glue_generate_negation_100.csv"),
             ("super_glue_generate_50.csv", "super_glue_generate_negation_50.csv")],
    "hellaswag": [("hellaswag_Open-ended_completion_300.csv", "hellaswag_Open-ended_completion_negation_300.csv"),
                  ("hellaswag_Open-ended_completion_50.csv", "hellaswag_Open-ended_completion_negation_50.csv")],
    "story_cloze": [("story_cloze_Generate_Ending_300.csv", "story_cloze_Generate_Ending_Negation_300.csv"),
                    ("story_cloze_Generate_Ending_50.csv", "story_cloze_Generate_Ending_Negation_50.csv")],
    "lambada": [("lambada_please_next_word_300.csv", "lambada_please_next_word_negation_300.csv"),
                ("lambada_please_next_word_50.csv", "lambada_please_next_word_negation_50.csv")],
    "web_questions": [("webqa_correct_answer_300.csv", "webqa_correct_answer_negation_300.csv")],
    "nq_open": [("nq_correct_answer_300.csv", "nq_correct_answer_negation_300.csv")],
    "trivia_qa": [("triviaqa_correct_answer_300.csv", "triviaqa_correct_answer_negation_300.csv")],
}


def source_row(task: str, body: str, options: tuple[str, ...], answer: int, i: int) -> dict:
    """A row in the hub source's own schema that should render to the paper's prompt."""
    texts = [o[1:] for o in options]  # drop the leading space
    if task == "piqa":
        return {"goal": body, "sol1": lower_first(texts[0]), "sol2": lower_first(texts[1]), "label": answer}
    if task == "arc_easy":
        labels = list("ABCDE")[: len(texts)] if i % 2 else [str(k + 1) for k in range(len(texts))]
        return {"id": f"q{i}", "question": body, "choices": {"text": texts, "label": labels},
                "answerKey": labels[answer]}
    if task == "copa":
        m = re.fullmatch(r"(.*)  (so|because)", body, re.DOTALL)
        assert m, body
        return {"premise": m.group(1), "choice1": texts[0], "choice2": texts[1],
                "question": "effect" if m.group(2) == "so" else "cause", "idx": i, "label": answer}
    if task == "hellaswag":
        row = {"ind": i, "endings": [lower_first(t) for t in texts], "label": str(answer),
               "activity_label": "x", "source_id": "x", "split": "val", "split_type": "indomain"}
        cut = body.rfind(". ")
        if i % 2 and cut > 0 and "[" not in body[cut:]:  # ActivityNet style: ctx_a + lower-case ctx_b
            row.update(ctx_a=body[: cut + 1], ctx_b=body[cut + 2 :], ctx="")
        else:
            row.update(ctx_a=body, ctx_b="", ctx=body)
        return row
    if task == "story_cloze":
        parts = re.split(r"(?<=[.!?]) ", body, maxsplit=3)
        while len(parts) < 4:  # fewer sentence breaks: split at any single space
            k = max(range(len(parts)), key=lambda j: len(parts[j]))
            a, _, b = parts[k].partition(" ")
            parts[k : k + 1] = [a, b]
        return TextRow({"InputStoryid": f"s{i}", **{f"InputSentence{k + 1}": parts[k] for k in range(4)},
                        "RandomFifthSentenceQuiz1": texts[0], "RandomFifthSentenceQuiz2": texts[1],
                        "AnswerRightEnding": str(answer + 1)})  # the official files are CSV: text cells
    if task == "lambada":
        return {"text": f"{body} {lower_first(texts[answer])}", "domain": None}
    if task == "web_questions":
        return {"url": "u", "question": body, "answers": [texts[answer]]}
    if task == "nq_open":
        return {"question": body, "answer": [lower_first(texts[answer])]}
    if task == "trivia_qa":
        return {"question_id": f"tq{i}", "question": body,
                "answer": {"value": texts[answer], "aliases": [texts[answer]], "normalized_aliases": []}}
    raise AssertionError(task)


@pytest.mark.parametrize("task", list(FILES))
def test_render_matches_paper(task: str) -> None:
    """Every row of every file, each file on its own (the _50 negation files hold other items)."""
    spec = get_task(task)
    orig_prefix, neg_prefix, suffix = PREFIX[task]
    checked = 0
    for name in [f for pair in FILES[task] for f in pair]:
        negated = "negation" in name.lower()
        for i, row in enumerate(paper(name)):
            body = strip_prefix(row.prompt, neg_prefix if negated else orig_prefix, suffix)
            # The original answer: the file's answer, or the one option a negated file leaves out.
            answer = [k for k in range(len(row.options)) if k not in row.gold] if negated else list(row.gold)
            assert len(answer) == 1, (name, i, row.gold)
            answer = answer[0]
            src = source_row(task, body, row.options, answer, i)
            item = spec.parse(src, f"{name}: row {i + 1}", i)
            if spec.complete_options is None:  # the source gives the options
                assert item.options == row.options
                assert item.answer == answer
            else:
                # Options of QA tasks and LAMBADA are sampled by our seeded rules; render the
                # paper's own options to check templates and answer sets, and check the gold.
                assert " " + item.answers[0][:1].upper() + item.answers[0][1:] == row.options[answer]
                item.options, item.answer = row.options, answer
            [got] = make_instances(task, item, "negated" if negated else "original", seed=i)
            assert got.prompt == row.prompt
            assert got.options == row.options
            assert got.gold == row.gold
            assert got.target in got.gold
            checked += 1
    assert checked >= 200


def test_lambada_options_from_passage(tmp_path: Path) -> None:
    rows = paper("lambada_please_next_word_300.csv")[:60]
    prefix = PREFIX["lambada"][0]
    lines = []
    import json

    for r in rows:
        body = r.prompt[len(prefix):]
        lines.append(json.dumps({"text": f"{body} {r.options[r.gold[0]][1:].lower()}"}))
    path = tmp_path / "lambada.jsonl"
    path.write_text("\n".join(lines) + "\n")
    items, _ = load_items("lambada", "validation", str(path), seed=3)
    first = 0
    for r, item in zip(rows, items):
        gold = item.options[item.answer]
        assert gold == r.options[r.gold[0]]
        assert len(item.options) == 4 and len({o.lower() for o in item.options}) == 4
        words = {w.lower() for w in passage_tokens(r.prompt[len(prefix):])}  # the paper's rule: any token
        for k, opt in enumerate(item.options):
            assert opt.startswith(" ") and opt[1].isupper() or not opt[1].isalpha()
            if k != item.answer:
                assert opt[1:].lower() in words and opt.lower() != gold.lower()
        first += item.answer == 0
        inst = make_instances("lambada", item, "original", 3)[0]
        assert inst.prompt == r.prompt
    assert first < len(rows) * 0.5  # the gold is not always first (the paper's files put it first)


def test_instruction_free_drops_instruction() -> None:
    fields = {"question": "Why is the sky blue?"}
    assert get_variant("trivia_qa", "instruction_free").render(fields) == "Question: Why is the sky blue?\nAnswer:"
    assert get_variant("arc_easy", "instruction_free").render(fields) == "Question: Why is the sky blue? Answer is"
    item = Item(id="1", fields={"premise": "It rained.", "connector": "so"}, options=(" A", " B"), answer=1)
    [inst] = make_instances("copa", item, "instruction_free", 0)
    assert inst.prompt == "It rained.  so..." and inst.gold == (1,)
    assert gold_indices(item, get_variant("copa", "negated")) == (0,)
