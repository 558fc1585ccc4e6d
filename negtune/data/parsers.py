"""Row parsers: one source row in a task's own schema -> an ``Item``.

Why a module of its own: the registry (``negtune.data.tasks``) says *which* parser a task uses
next to its templates; this module holds *how* each source schema is read (field names,
label bases, nested answer structs, hub quirks such as HellaSwag's string labels or ARC's
numeric answer keys), with the field checks of ``negtune.data.fields``.
"""
from __future__ import annotations

import re
from typing import Any, Callable

from negtune.data import fields as F
from negtune.data.instances import Item
from negtune.errors import UserError

def parse_piqa(row: dict[str, Any], where: str, index: int) -> Item:
    opts = (F.text(row, "sol1", where), F.text(row, "sol2", where))
    return Item(
        id=F.row_id(row, None, index),
        fields={"goal": F.text(row, "goal", where)},
        options=tuple(F.fmt_option(o) for o in opts),
        answer=F.label(row, "label", where, 2),
        where=where,
    )


def parse_arc(row: dict[str, Any], where: str, index: int) -> Item:
    choices = F.structured(F.get_field(row, "choices", where), "choices", where)
    texts = F.text_list({"choices": choices}, "choices", where, sub="text")
    labels = F.text_list({"choices": choices}, "choices", where, sub="label")
    if len(labels) != len(texts):
        raise UserError(f"{where}: field 'choices': {len(texts)} texts but {len(labels)} labels")
    if len(texts) < 2:
        raise UserError(f"{where}: field 'choices': needs at least 2 options")
    key = F.text(row, "answerKey", where)
    if key not in labels:
        raise UserError(
            f"{where}: field 'answerKey': label {key!r} out of range (choices {', '.join(labels)})"
        )
    return Item(
        id=F.row_id(row, "id", index),
        fields={"question": F.text(row, "question", where)},
        options=tuple(F.fmt_option(t) for t in texts),
        answer=labels.index(key),
        where=where,
    )


_COPA_CONNECTOR = {"cause": "because", "effect": "so"}


def parse_copa(row: dict[str, Any], where: str, index: int) -> Item:
    question = F.text(row, "question", where)
    if question not in _COPA_CONNECTOR:
        raise UserError(f"{where}: field 'question': expected 'cause' or 'effect', got {question!r}")
    opts = (F.text(row, "choice1", where), F.text(row, "choice2", where))
    return Item(
        id=F.row_id(row, "idx", index),
        fields={"premise": F.text(row, "premise", where), "connector": _COPA_CONNECTOR[question]},
        options=tuple(F.fmt_option(o) for o in opts),
        answer=F.label(row, "label", where, 2),
        where=where,
    )


def parse_hellaswag(row: dict[str, Any], where: str, index: int) -> Item:
    # The paper's prompts show the raw ``ctx`` (= ctx_a + " " + ctx_b, ctx_b kept lower-case).
    if row.get("ctx") not in (None, ""):
        ctx = F.text(row, "ctx", where)
    else:
        ctx_a = F.text(row, "ctx_a", where)
        ctx_b = F.text(row, "ctx_b", where, allow_empty=True) if "ctx_b" in row else ""
        ctx = f"{ctx_a} {ctx_b}".strip()
    endings = F.text_list(row, "endings", where)
    if len(endings) < 2:
        raise UserError(f"{where}: field 'endings': needs at least 2 endings")
    return Item(
        id=F.row_id(row, "ind", index),
        fields={"ctx": ctx},
        options=tuple(F.fmt_option(e) for e in endings),
        answer=F.label(row, "label", where, len(endings), text_in_schema=True),  # "0".."3" on the hub
        where=where,
    )


def parse_story_cloze(row: dict[str, Any], where: str, index: int) -> Item:
    story = " ".join(F.text(row, f"InputSentence{i}", where) for i in range(1, 5))
    opts = (F.text(row, "RandomFifthSentenceQuiz1", where), F.text(row, "RandomFifthSentenceQuiz2", where))
    return Item(
        id=F.row_id(row, "InputStoryid", index),
        fields={"story": story},
        options=tuple(F.fmt_option(o) for o in opts),
        answer=F.label(row, "AnswerRightEnding", where, 2, base=1),
        where=where,
    )


_LAST_WORD = re.compile(r"^(.*\S)\s+(\S+)\s*$", re.DOTALL)


def parse_lambada(row: dict[str, Any], where: str, index: int) -> Item:
    text = F.text(row, "text", where)
    match = _LAST_WORD.match(text)
    if not match:
        raise UserError(f"{where}: field 'text': needs a passage followed by a final word")
    return Item(
        id=F.row_id(row, None, index),
        fields={"context": match.group(1)},
        answers=(match.group(2),),
        where=where,
    )


def _question_with_answer_list(answers_field: str) -> Callable[[dict[str, Any], str, int], Item]:
    """Parser for QA sources whose rows are {question, <answers_field>: [str, ...]}."""

    def parse(row: dict[str, Any], where: str, index: int) -> Item:
        return Item(
            id=F.row_id(row, None, index),
            fields={"question": F.text(row, "question", where)},
            answers=tuple(F.text_list(row, answers_field, where)),
            where=where,
        )

    return parse


parse_web_questions = _question_with_answer_list("answers")
parse_nq_open = _question_with_answer_list("answer")


def parse_trivia_qa(row: dict[str, Any], where: str, index: int) -> Item:
    answer = F.structured(F.get_field(row, "answer", where), "answer", where)
    if not isinstance(answer, dict) or not isinstance(answer.get("value"), str) or not answer["value"].strip():
        raise UserError(f"{where}: field 'answer': expected a mapping with a non-empty 'value'")
    aliases = [answer["value"].strip()]
    for key in ("aliases", "normalized_aliases", "normalized_value"):
        extra = answer.get(key)
        if hasattr(extra, "tolist"):
            extra = extra.tolist()
        if isinstance(extra, str):
            extra = [extra]
        if isinstance(extra, (list, tuple)):
            aliases += [a.strip() for a in extra if isinstance(a, str) and a.strip()]
    return Item(
        id=F.row_id(row, "question_id", index),
        fields={"question": F.text(row, "question", where)},
        answers=tuple(aliases),
        where=where,
    )
