"""Task registry: one entry per task holds everything about it.

Why one entry per task: a task is data, not code paths scattered through the builder (the
way lm-evaluation-harness keeps a task in one YAML file). An entry names

* its Hugging Face source (id, config, revision, split aliases) and the fields a row in that
  source's own schema must have;
* ``parse``: one row -> an ``Item`` (an id, the named text fields the templates use, and
  either the options with the correct index, or the acceptable answers);
* ``variants``: its prompt templates (``negtune.data.variants``): original, negated,
  instruction-free;
* ``complete_options``: for sources that give answers rather than options (LAMBADA, the QA
  tasks), the seeded rule that adds distractors (``negtune.data.options``).

The builder (``negtune.data.build``) calls these hooks and never branches on a task's name.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from negtune.data import fields as F
from negtune.data.instances import Item
from negtune.data.options import complete_lambada, complete_qa
from negtune.data.variants import Variant, prompt_variants
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


Parser = Callable[[dict[str, Any], str, int], Item]
Completer = Callable[[list[Item], int, str], None]


@dataclass(frozen=True)
class TaskSpec:
    name: str
    title: str
    fields: tuple[str, ...]  # top-level fields every source row must have
    parse: Parser
    variants: dict[str, Variant]
    hub: Optional[HubSource]
    schema_doc: str  # one line: the source schema, for docs and error messages
    negated_rule: str  # one line: what counts as correct under a negated prompt
    complete_options: Optional[Completer] = None  # adds options to items that only have answers
    n_options: Optional[int] = None  # fixed option count, None: varies by row
    paper_csv_prefix: tuple[str, ...] = ()  # file-name prefixes of the paper's CSVs


# --------------------------------------------------------------------------- parsers


def _parse_piqa(row: dict[str, Any], where: str, index: int) -> Item:
    opts = (F.text(row, "sol1", where), F.text(row, "sol2", where))
    return Item(
        id=F.row_id(row, None, index),
        fields={"goal": F.text(row, "goal", where)},
        options=tuple(F.fmt_option(o) for o in opts),
        answer=F.label(row, "label", where, 2),
        where=where,
    )


def _parse_arc(row: dict[str, Any], where: str, index: int) -> Item:
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


def _parse_copa(row: dict[str, Any], where: str, index: int) -> Item:
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


def _parse_hellaswag(row: dict[str, Any], where: str, index: int) -> Item:
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


def _parse_story_cloze(row: dict[str, Any], where: str, index: int) -> Item:
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


def _parse_lambada(row: dict[str, Any], where: str, index: int) -> Item:
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


_parse_web_questions = _question_with_answer_list("answers")
_parse_nq_open = _question_with_answer_list("answer")


def _parse_trivia_qa(row: dict[str, Any], where: str, index: int) -> Item:
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


# --------------------------------------------------------------------------- registry

_TWO_WAY = "the other option"
_ALL_WRONG = "every wrong option (gold set); training targets one by a seeded rule or all (negated_target)"
_ARC_VARIANTS = prompt_variants(
    "Generate the correct answer to the following question. Question: {question} Answer is",
    "Generate the incorrect answer to the following question. Question: {question} Answer is",
    "Question: {question} Answer is",
)

TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in [
        TaskSpec(
            name="piqa",
            title="PIQA",
            fields=("goal", "sol1", "sol2", "label"),
            parse=_parse_piqa,
            variants=prompt_variants(
                "Generate the correct solution to accomplish the following goal: {goal}",
                "Generate the incorrect solution to accomplish the following goal: {goal}",
                "{goal}",
            ),
            hub=HubSource("baber/piqa"),
            schema_doc="goal, sol1, sol2, label (0/1)",
            negated_rule=_TWO_WAY,
            n_options=2,
            paper_csv_prefix=("piqa",),
        ),
        TaskSpec(
            name="arc_easy",
            title="ARC-Easy",
            fields=("id", "question", "choices", "answerKey"),
            parse=_parse_arc,
            variants=_ARC_VARIANTS,
            hub=HubSource("allenai/ai2_arc", "ARC-Easy"),
            schema_doc="id, question, choices{text[], label[]}, answerKey",
            negated_rule=_ALL_WRONG,
            paper_csv_prefix=("ai2_arc",),
        ),
        TaskSpec(
            name="copa",
            title="COPA",
            fields=("premise", "choice1", "choice2", "question", "label"),
            parse=_parse_copa,
            variants=prompt_variants(
                "Complete the sentence with the appropriate ending. {premise}  {connector}...",
                "Complete the sentence with an inappropriate ending. {premise}  {connector}...",
                "{premise}  {connector}...",
            ),
            hub=HubSource("aps/super_glue", "copa", revision="refs/convert/parquet"),
            schema_doc="premise, choice1, choice2, question (cause/effect), idx, label (0/1)",
            negated_rule=_TWO_WAY,
            n_options=2,
            paper_csv_prefix=("super_glue", "copa"),
        ),
        TaskSpec(
            name="hellaswag",
            title="HellaSwag",
            fields=("endings", "label"),
            parse=_parse_hellaswag,
            variants=prompt_variants(
                "Complete the sentence with an appropriate ending: {ctx}",
                "Complete the sentence with an inappropriate ending: {ctx}",
                "{ctx}",
            ),
            hub=HubSource("Rowan/hellaswag"),
            schema_doc="ind, ctx (or ctx_a + ctx_b), endings[4], label",
            negated_rule=_ALL_WRONG,
            n_options=4,
            paper_csv_prefix=("hellaswag",),
        ),
        TaskSpec(
            name="story_cloze",
            title="StoryCloze 2016",
            fields=tuple(f"InputSentence{i}" for i in range(1, 5))
            + ("RandomFifthSentenceQuiz1", "RandomFifthSentenceQuiz2", "AnswerRightEnding"),
            parse=_parse_story_cloze,
            variants=prompt_variants(
                "Generate a natural ending for the following story: {story}",
                "Generate an unnatural ending for the following story: {story}",
                "{story}",
            ),
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
            fields=("text",),
            parse=_parse_lambada,
            variants=prompt_variants(
                "Please generate a natural ending following the given chunk of text.\n\n{context}",
                "Please generate an unnatural ending following the given chunk of text.\n\n{context}",
                "{context}",
            ),
            complete_options=complete_lambada,
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
            fields=("question", "answers"),
            parse=_parse_web_questions,
            variants=prompt_variants(
                'Give me a possible correct answer to the question "{question}"',
                'Give me a possible incorrect answer to the question "{question}"',
                "{question}",
            ),
            complete_options=complete_qa,
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
            fields=("question", "answer"),
            parse=_parse_nq_open,
            variants=prompt_variants(
                "The goal is to predict a correct English answer string for an input English question.\n"
                "Question: {question}\nAnswer:",
                "The goal is to predict an incorrect English answer string for an input English question.\n"
                "Question: {question}\nAnswer:",
                "Question: {question}\nAnswer:",
            ),
            complete_options=complete_qa,
            hub=HubSource("google-research-datasets/nq_open"),
            schema_doc="question, answer[]",
            negated_rule=_TWO_WAY + " (the sampled distractor)",
            n_options=2,
            paper_csv_prefix=("nq",),
        ),
        TaskSpec(
            name="trivia_qa",
            title="TriviaQA",
            fields=("question", "answer"),
            parse=_parse_trivia_qa,
            variants=prompt_variants(
                "What is a correct answer to the following question?\nQuestion: {question}\nAnswer:",
                "What is an incorrect answer to the following question?\nQuestion: {question}\nAnswer:",
                "Question: {question}\nAnswer:",
            ),
            complete_options=complete_qa,
            hub=HubSource("mandarjoshi/trivia_qa", "rc.nocontext"),
            schema_doc="question_id, question, answer{value, aliases[], normalized_aliases[]}",
            negated_rule=_TWO_WAY + " (the sampled distractor)",
            n_options=2,
            paper_csv_prefix=("triviaqa", "trivia_qa"),
        ),
        TaskSpec(
            name="demo",
            title="demo (ARC schema, local files only)",
            fields=("id", "question", "choices", "answerKey"),
            parse=_parse_arc,
            variants=dict(_ARC_VARIANTS),
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


def get_variant(task: str, name: str, where: str = "variant") -> Variant:
    """The variant ``name`` of ``task``; unknown -> one-line UserError listing the known ones."""
    variants = get_task(task, where=where).variants
    if name not in variants:
        raise UserError(f"{where}: unknown variant {name!r} for task {task!r} (known: {', '.join(variants)})")
    return variants[name]


def check_names(tasks: list[str], variants: list[str], section: str, prefix: str = "") -> None:
    """Every task is registered and defines every variant. Recipe loading calls this, so a
    typo fails before anything is loaded; the builders call it again for direct API use."""
    for i, task in enumerate(tasks):
        get_task(task, where=f"{prefix}{section}.tasks[{i}]")
        for j, name in enumerate(variants):
            get_variant(task, name, where=f"{prefix}{section}.variants[{j}]")
    if len(set(tasks)) != len(tasks):
        raise UserError(f"{prefix}{section}.tasks: lists a task twice")
