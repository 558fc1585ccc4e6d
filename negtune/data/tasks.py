"""Task registry: where each task's rows come from and how one row becomes one item.

Why one small spec per task: a task is data, not code paths scattered through the builder.
A spec names its Hugging Face source (id, config, revision, split aliases), the fields a
row in that source's own schema must have, and a ``parse`` function that turns one row into
an ``Item``: an id, the named text fields the prompt templates use, and either the answer
options with the correct index (multiple-choice tasks) or the acceptable answers (QA tasks,
LAMBADA), whose options the builder completes with seeded rules (see ``negtune.data.build``).
Prompt templates live in ``negtune.data.variants``.

Option formatting follows the paper's released files: every option is ``" " + text`` with the
first character upper-cased (HellaSwag endings, LAMBADA words and NQ answers are lower-case in
their sources; the paper's options never are).
"""
from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Optional

from negtune.errors import UserError


@dataclass(frozen=True)
class HubSource:
    """A Hugging Face dataset that loads without a loading script (datasets >= 4)."""

    path: str
    name: Optional[str] = None  # config
    revision: Optional[str] = None
    # Requested split -> hub split, for tasks whose hub copy lacks a split (documented per task).
    split_aliases: dict[str, str] = field(default_factory=dict)

    def split_for(self, split: str) -> str:
        return self.split_aliases.get(split, split)


@dataclass
class Item:
    """One source row in canonical form (before a prompt variant is applied)."""

    id: str
    fields: dict[str, str]  # template fields, e.g. {"question": ...}
    options: tuple[str, ...] = ()  # formatted options (" Text"); empty until completed for qa/lambada
    answer: int = -1  # index of the correct option under the original prompt
    answers: tuple[str, ...] = ()  # qa/lambada: acceptable answers; answers[0] becomes the gold option
    where: str = ""  # "file: row N" for error messages


Kind = Literal["choice", "qa", "lambada"]


@dataclass(frozen=True)
class TaskSpec:
    name: str
    title: str
    kind: Kind
    fields: tuple[str, ...]  # top-level fields every source row must have
    parse: Callable[[dict[str, Any], str, int], Item]
    hub: Optional[HubSource]
    schema_doc: str  # one line: the source schema, for README and error messages
    negated_rule: str  # one line: what counts as correct under a negated prompt
    n_options: Optional[int] = None  # fixed option count, None: varies by row
    paper_csv_prefix: tuple[str, ...] = ()  # file-name prefixes of the paper's CSVs


# --------------------------------------------------------------------------- field helpers


def cap_first(text: str) -> str:
    """Upper-case the first character only (``str.capitalize`` would lower the rest)."""
    return text[:1].upper() + text[1:]


def fmt_option(text: str) -> str:
    """An option as the paper writes it: leading space, first character upper-cased."""
    return " " + cap_first(text.strip())


def _get(row: dict[str, Any], key: str, where: str) -> Any:
    if key not in row or row[key] is None:
        raise UserError(f"{where}: missing field {key!r}")
    return row[key]


def _text(row: dict[str, Any], key: str, where: str, allow_empty: bool = False) -> str:
    value = _get(row, key, where)
    if not isinstance(value, str):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        else:
            raise UserError(f"{where}: field {key!r}: expected text, got {type(value).__name__}")
    value = value.strip()
    if not value and not allow_empty:
        raise UserError(f"{where}: field {key!r}: empty")
    return value


def _structured(value: Any, key: str, where: str) -> Any:
    """Nested fields arrive as JSON/Python literals when the source file is CSV/TSV."""
    if isinstance(value, str):
        text = value.strip()
        for loader in (json.loads, ast.literal_eval):
            try:
                return loader(text)
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                continue
        raise UserError(f"{where}: field {key!r}: cannot parse {text[:40]!r} as a list or mapping")
    return value


def _text_list(row: dict[str, Any], key: str, where: str, sub: Optional[str] = None) -> list[str]:
    value = _structured(_get(row, key, where), key, where)
    name = key
    if sub is not None:
        if not isinstance(value, dict) or sub not in value:
            raise UserError(f"{where}: field {key!r}: expected a mapping with {sub!r}")
        value, name = value[sub], f"{key}.{sub}"
    if hasattr(value, "tolist"):  # numpy arrays from parquet
        value = value.tolist()
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise UserError(f"{where}: field {name!r}: expected a list of strings")
    out = [v.strip() for v in value]
    if not out or not all(out):
        raise UserError(f"{where}: field {name!r}: empty list or empty entry")
    return out


def _label(row: dict[str, Any], key: str, where: str, n: int, base: int = 0) -> int:
    """An integer label in ``base .. base+n-1``; returns the 0-based index."""
    value = _get(row, key, where)
    try:
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        label = int(value) if not isinstance(value, str) else int(value.strip())
    except (TypeError, ValueError):
        raise UserError(f"{where}: field {key!r}: label {value!r} is not an integer") from None
    if not base <= label < base + n:
        raise UserError(
            f"{where}: field {key!r}: label {label} out of range ({base}-{base + n - 1})"
        )
    return label - base


def _row_id(row: dict[str, Any], key: Optional[str], index: int) -> str:
    """The source's id field when it has one (or a local file adds one), else the row index."""
    for k in ([key] if key else []) + ["id"]:
        if k in row and row[k] is not None and str(row[k]).strip() != "":
            return str(row[k]).strip()
    return str(index)


# --------------------------------------------------------------------------- parsers


def _parse_piqa(row: dict[str, Any], where: str, index: int) -> Item:
    opts = (_text(row, "sol1", where), _text(row, "sol2", where))
    return Item(
        id=_row_id(row, None, index),
        fields={"goal": _text(row, "goal", where)},
        options=tuple(fmt_option(o) for o in opts),
        answer=_label(row, "label", where, 2),
        where=where,
    )


def _parse_arc(row: dict[str, Any], where: str, index: int) -> Item:
    choices = _structured(_get(row, "choices", where), "choices", where)
    texts = _text_list({"choices": choices}, "choices", where, sub="text")
    labels = _text_list({"choices": choices}, "choices", where, sub="label")
    if len(labels) != len(texts):
        raise UserError(f"{where}: field 'choices': {len(texts)} texts but {len(labels)} labels")
    if len(texts) < 2:
        raise UserError(f"{where}: field 'choices': needs at least 2 options")
    key = _text(row, "answerKey", where)
    if key not in labels:
        raise UserError(
            f"{where}: field 'answerKey': label {key!r} out of range (choices {', '.join(labels)})"
        )
    return Item(
        id=_row_id(row, "id", index),
        fields={"question": _text(row, "question", where)},
        options=tuple(fmt_option(t) for t in texts),
        answer=labels.index(key),
        where=where,
    )


_COPA_CONNECTOR = {"cause": "because", "effect": "so"}


def _parse_copa(row: dict[str, Any], where: str, index: int) -> Item:
    question = _text(row, "question", where)
    if question not in _COPA_CONNECTOR:
        raise UserError(f"{where}: field 'question': expected 'cause' or 'effect', got {question!r}")
    opts = (_text(row, "choice1", where), _text(row, "choice2", where))
    return Item(
        id=_row_id(row, "idx", index),
        fields={"premise": _text(row, "premise", where), "connector": _COPA_CONNECTOR[question]},
        options=tuple(fmt_option(o) for o in opts),
        answer=_label(row, "label", where, 2),
        where=where,
    )


def _parse_hellaswag(row: dict[str, Any], where: str, index: int) -> Item:
    # The paper's prompts show the raw ``ctx`` (= ctx_a + " " + ctx_b, ctx_b kept lower-case).
    if row.get("ctx") not in (None, ""):
        ctx = _text(row, "ctx", where)
    else:
        ctx_a = _text(row, "ctx_a", where)
        ctx_b = _text(row, "ctx_b", where, allow_empty=True) if "ctx_b" in row else ""
        ctx = f"{ctx_a} {ctx_b}".strip()
    endings = _text_list(row, "endings", where)
    if len(endings) < 2:
        raise UserError(f"{where}: field 'endings': needs at least 2 endings")
    return Item(
        id=_row_id(row, "ind", index),
        fields={"ctx": ctx},
        options=tuple(fmt_option(e) for e in endings),
        answer=_label(row, "label", where, len(endings)),
        where=where,
    )


def _parse_story_cloze(row: dict[str, Any], where: str, index: int) -> Item:
    story = " ".join(_text(row, f"InputSentence{i}", where) for i in range(1, 5))
    opts = (_text(row, "RandomFifthSentenceQuiz1", where), _text(row, "RandomFifthSentenceQuiz2", where))
    return Item(
        id=_row_id(row, "InputStoryid", index),
        fields={"story": story},
        options=tuple(fmt_option(o) for o in opts),
        answer=_label(row, "AnswerRightEnding", where, 2, base=1),
        where=where,
    )


_LAST_WORD = re.compile(r"^(.*\S)\s+(\S+)\s*$", re.DOTALL)


def _parse_lambada(row: dict[str, Any], where: str, index: int) -> Item:
    text = _text(row, "text", where)
    match = _LAST_WORD.match(text)
    if not match:
        raise UserError(f"{where}: field 'text': needs a passage followed by a final word")
    return Item(
        id=_row_id(row, None, index),
        fields={"context": match.group(1)},
        answers=(match.group(2),),
        where=where,
    )


def _question_with_answer_list(answers_field: str) -> Callable[[dict[str, Any], str, int], Item]:
    """Parser for QA sources whose rows are {question, <answers_field>: [str, ...]}."""

    def parse(row: dict[str, Any], where: str, index: int) -> Item:
        return Item(
            id=_row_id(row, None, index),
            fields={"question": _text(row, "question", where)},
            answers=tuple(_text_list(row, answers_field, where)),
            where=where,
        )

    return parse


_parse_web_questions = _question_with_answer_list("answers")
_parse_nq_open = _question_with_answer_list("answer")


def _parse_trivia_qa(row: dict[str, Any], where: str, index: int) -> Item:
    answer = _structured(_get(row, "answer", where), "answer", where)
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
        id=_row_id(row, "question_id", index),
        fields={"question": _text(row, "question", where)},
        answers=tuple(aliases),
        where=where,
    )


# --------------------------------------------------------------------------- registry

_TWO_WAY = "the other option"
_ALL_WRONG = "every wrong option (gold set); training targets one by a seeded rule or all (negated_target)"

TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in [
        TaskSpec(
            name="piqa",
            title="PIQA",
            kind="choice",
            fields=("goal", "sol1", "sol2", "label"),
            parse=_parse_piqa,
            hub=HubSource("baber/piqa"),
            schema_doc="goal, sol1, sol2, label (0/1)",
            negated_rule=_TWO_WAY,
            n_options=2,
            paper_csv_prefix=("piqa",),
        ),
        TaskSpec(
            name="arc_easy",
            title="ARC-Easy",
            kind="choice",
            fields=("id", "question", "choices", "answerKey"),
            parse=_parse_arc,
            hub=HubSource("allenai/ai2_arc", "ARC-Easy"),
            schema_doc="id, question, choices{text[], label[]}, answerKey",
            negated_rule=_ALL_WRONG,
            paper_csv_prefix=("ai2_arc",),
        ),
        TaskSpec(
            name="copa",
            title="COPA",
            kind="choice",
            fields=("premise", "choice1", "choice2", "question", "label"),
            parse=_parse_copa,
            hub=HubSource("aps/super_glue", "copa", revision="refs/convert/parquet"),
            schema_doc="premise, choice1, choice2, question (cause/effect), idx, label (0/1)",
            negated_rule=_TWO_WAY,
            n_options=2,
            paper_csv_prefix=("super_glue", "copa"),
        ),
        TaskSpec(
            name="hellaswag",
            title="HellaSwag",
            kind="choice",
            fields=("endings", "label"),
            parse=_parse_hellaswag,
            hub=HubSource("Rowan/hellaswag"),
            schema_doc="ind, ctx (or ctx_a + ctx_b), endings[4], label",
            negated_rule=_ALL_WRONG,
            n_options=4,
            paper_csv_prefix=("hellaswag",),
        ),
        TaskSpec(
            name="story_cloze",
            title="StoryCloze 2016",
            kind="choice",
            fields=tuple(f"InputSentence{i}" for i in range(1, 5))
            + ("RandomFifthSentenceQuiz1", "RandomFifthSentenceQuiz2", "AnswerRightEnding"),
            parse=_parse_story_cloze,
            hub=None,  # not redistributable: local CSV/TSV in the official cloze-test schema only
            schema_doc=(
                "InputStoryid, InputSentence1..4, RandomFifthSentenceQuiz1, "
                "RandomFifthSentenceQuiz2, AnswerRightEnding (1/2)"
            ),
            negated_rule=_TWO_WAY,
            n_options=2,
            paper_csv_prefix=("story_cloze",),
        ),
        TaskSpec(
            name="lambada",
            title="LAMBADA",
            kind="lambada",
            fields=("text",),
            parse=_parse_lambada,
            # cimec/lambada is the original (tokenised, lower-cased) LAMBADA the paper's prompts
            # show. Its "train" split holds whole novels, not passages, so training reads the
            # validation passages and evaluation reads the test passages.
            hub=HubSource("cimec/lambada", split_aliases={"train": "validation", "validation": "test"}),
            schema_doc="text (passage; its last word is the target)",
            negated_rule=_ALL_WRONG,
            n_options=4,
            paper_csv_prefix=("lambada",),
        ),
        TaskSpec(
            name="web_questions",
            title="WebQuestions",
            kind="qa",
            fields=("question", "answers"),
            parse=_parse_web_questions,
            # No validation split on the hub: evaluation reads "test".
            hub=HubSource("stanfordnlp/web_questions", split_aliases={"validation": "test"}),
            schema_doc="url, question, answers[]",
            negated_rule=_TWO_WAY + " (the sampled distractor)",
            n_options=2,
            paper_csv_prefix=("webqa", "web_questions"),
        ),
        TaskSpec(
            name="nq_open",
            title="Natural Questions (open)",
            kind="qa",
            fields=("question", "answer"),
            parse=_parse_nq_open,
            hub=HubSource("google-research-datasets/nq_open"),
            schema_doc="question, answer[]",
            negated_rule=_TWO_WAY + " (the sampled distractor)",
            n_options=2,
            paper_csv_prefix=("nq",),
        ),
        TaskSpec(
            name="trivia_qa",
            title="TriviaQA",
            kind="qa",
            fields=("question", "answer"),
            parse=_parse_trivia_qa,
            hub=HubSource("mandarjoshi/trivia_qa", "rc.nocontext"),
            schema_doc="question_id, question, answer{value, aliases[], normalized_aliases[]}",
            negated_rule=_TWO_WAY + " (the sampled distractor)",
            n_options=2,
            paper_csv_prefix=("triviaqa", "trivia_qa"),
        ),
        TaskSpec(
            name="demo",
            title="demo (ARC schema, local files only)",
            kind="choice",
            fields=("id", "question", "choices", "answerKey"),
            parse=_parse_arc,
            hub=None,
            schema_doc="id, question, choices{text[], label[]}, answerKey (ai2_arc schema)",
            negated_rule=_ALL_WRONG,
        ),
    ]
}


def get_task(name: str, where: str = "task") -> TaskSpec:
    """The spec for ``name``; an unknown name is a one-line UserError listing the known ones."""
    try:
        return TASKS[name]
    except (KeyError, TypeError):
        raise UserError(f"{where}: unknown task {name!r} (known: {', '.join(TASKS)})") from None


def guess_task_from_filename(filename: str) -> Optional[str]:
    """Map a paper CSV name (``ai2_arc_q_a_300.csv``) to a registry task (``arc_easy``)."""
    stem = filename.rsplit("/", 1)[-1].lower()
    best: Optional[tuple[int, str]] = None
    for spec in TASKS.values():
        for prefix in spec.paper_csv_prefix:
            if stem.startswith(prefix) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), spec.name)
    return best[1] if best else None
