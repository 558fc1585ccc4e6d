"""Prompt variants per task: the paper's original and negated templates, in one table.

Why one table: the prompts are the experiment. Every template a model is trained or
evaluated on is visible here, next to its siblings, and adding a variant (say a paraphrased
negation) is one entry::

    VARIANTS["piqa"]["negated_para"] = Variant(
        "Pick a solution that does not accomplish the goal: {goal}", negated=True)

Templates are ``str.format`` strings over the item's fields (see ``negtune.data.tasks``):
``{question}``, ``{goal}``, ``{ctx}``, ``{story}``, ``{context}``, ``{premise}``,
``{connector}``. Rendered with the paper's options they equal the prompts of the paper's
released CSVs character for character (tests/test_data_paper_render.py checks this), COPA's
double space before "so..."/"because..." included.

``negated=True`` means the correct options are all options except the original answer.
``instruction_free`` keeps the task body and drops the instruction sentence; its gold is the
original answer.
"""
from __future__ import annotations

from dataclasses import dataclass

from negtune.errors import UserError


@dataclass(frozen=True)
class Variant:
    template: str
    negated: bool = False

    def render(self, fields: dict[str, str]) -> str:
        return self.template.format(**fields)


def _task(original: str, negated: str, instruction_free: str) -> dict[str, Variant]:
    return {
        "original": Variant(original),
        "negated": Variant(negated, negated=True),
        "instruction_free": Variant(instruction_free),
    }


_ARC = _task(
    "Generate the correct answer to the following question. Question: {question} Answer is",
    "Generate the incorrect answer to the following question. Question: {question} Answer is",
    "Question: {question} Answer is",
)

VARIANTS: dict[str, dict[str, Variant]] = {
    "piqa": _task(
        "Generate the correct solution to accomplish the following goal: {goal}",
        "Generate the incorrect solution to accomplish the following goal: {goal}",
        "{goal}",
    ),
    "arc_easy": _ARC,
    "demo": dict(_ARC),
    "copa": _task(
        "Complete the sentence with the appropriate ending. {premise}  {connector}...",
        "Complete the sentence with an inappropriate ending. {premise}  {connector}...",
        "{premise}  {connector}...",
    ),
    "hellaswag": _task(
        "Complete the sentence with an appropriate ending: {ctx}",
        "Complete the sentence with an inappropriate ending: {ctx}",
        "{ctx}",
    ),
    "story_cloze": _task(
        "Generate a natural ending for the following story: {story}",
        "Generate an unnatural ending for the following story: {story}",
        "{story}",
    ),
    "lambada": _task(
        "Please generate a natural ending following the given chunk of text.\n\n{context}",
        "Please generate an unnatural ending following the given chunk of text.\n\n{context}",
        "{context}",
    ),
    "web_questions": _task(
        'Give me a possible correct answer to the question "{question}"',
        'Give me a possible incorrect answer to the question "{question}"',
        "{question}",
    ),
    "nq_open": _task(
        "The goal is to predict a correct English answer string for an input English question.\n"
        "Question: {question}\nAnswer:",
        "The goal is to predict an incorrect English answer string for an input English question.\n"
        "Question: {question}\nAnswer:",
        "Question: {question}\nAnswer:",
    ),
    "trivia_qa": _task(
        "What is a correct answer to the following question?\nQuestion: {question}\nAnswer:",
        "What is an incorrect answer to the following question?\nQuestion: {question}\nAnswer:",
        "Question: {question}\nAnswer:",
    ),
}


def get_variant(task: str, name: str, where: str = "variant") -> Variant:
    """The variant ``name`` of ``task``; unknown → one-line UserError listing the known ones."""
    table = VARIANTS.get(task)
    if table is None:
        raise UserError(f"{where}: task {task!r} has no prompt variants")
    if name not in table:
        raise UserError(
            f"{where}: unknown variant {name!r} for task {task!r} (known: {', '.join(table)})"
        )
    return table[name]
