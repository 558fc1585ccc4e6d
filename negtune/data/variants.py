"""A prompt variant: one template of a task, and whether it asks for a wrong answer.

Why a type of its own: the prompts are the experiment. Every task entry in
``negtune.data.tasks`` lists its variants next to its parser, so every template a model is
trained or evaluated on is visible beside its siblings, and adding a variant (say a
paraphrased negation) is one entry in that task's table::

    variants={**prompt_variants(...), "negated_para": Variant(
        "Pick a solution that does not accomplish the goal: {goal}", negated=True)}

Templates are ``str.format`` strings over the item's fields (``{question}``, ``{goal}``,
``{ctx}``, ``{story}``, ``{context}``, ``{premise}``, ``{connector}``). Rendered with the
paper's options they equal the prompts of the paper's released CSVs character for character
(``tests/data/test_paper_render.py`` checks this), COPA's double space before
"so..."/"because..." included.

``negated=True`` means the correct options are all options except the original answer.
``instruction_free`` keeps the task body and drops the instruction sentence; its gold is the
original answer.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Variant:
    template: str
    negated: bool = False

    def render(self, fields: dict[str, str]) -> str:
        return self.template.format(**fields)


def prompt_variants(original: str, negated: str, instruction_free: str) -> dict[str, Variant]:
    """The paper's three variants of one task."""
    return {
        "original": Variant(original),
        "negated": Variant(negated, negated=True),
        "instruction_free": Variant(instruction_free),
    }
