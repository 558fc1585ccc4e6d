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

``parse`` is ``render`` backwards: a rendered prompt (a row of the paper's CSVs, say) -> its
fields, or None when the prompt is not this template. The overlap check and the paper's
evaluation sets use it to see which source item a released prompt shows.
"""
from __future__ import annotations

import re
import string
from dataclasses import dataclass
from functools import cached_property
from typing import Optional


@dataclass(frozen=True)
class Variant:
    template: str
    negated: bool = False

    def render(self, fields: dict[str, str]) -> str:
        return self.template.format(**fields)

    @property
    def field_names(self) -> tuple[str, ...]:
        """The template's fields in order of first appearance."""
        names: list[str] = []
        for _, name, _, _ in string.Formatter().parse(self.template):
            if name is not None and name not in names:
                names.append(name)
        return tuple(names)

    @property
    def has_instruction(self) -> bool:
        """False for a bare ``{field}`` template, which would match any prompt."""
        return any(literal.strip() for literal, _, _, _ in string.Formatter().parse(self.template))

    @cached_property
    def _pattern(self) -> "re.Pattern[str]":
        parts: list[str] = []
        seen: set[str] = set()
        for literal, name, _, _ in string.Formatter().parse(self.template):
            parts.append(re.escape(literal))
            if name is not None:
                parts.append(f"(?P={name})" if name in seen else f"(?P<{name}>.*?)")
                seen.add(name)
        return re.compile("".join(parts), re.DOTALL)

    def parse(self, prompt: str) -> Optional[dict[str, str]]:
        """The fields that render to ``prompt`` under this template, or None."""
        match = self._pattern.fullmatch(prompt)
        return match.groupdict() if match else None


def prompt_variants(original: str, negated: str, instruction_free: str) -> dict[str, Variant]:
    """The paper's three variants of one task."""
    return {
        "original": Variant(original),
        "negated": Variant(negated, negated=True),
        "instruction_free": Variant(instruction_free),
    }
