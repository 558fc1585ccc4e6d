"""The records data building passes along: a parsed source row (``Item``) and a rendered
prompt instance (``Instance``).

Why a fixed record: the builder writes an ``Instance``, the trainer trains on it, the
evaluator scores it and losses pair it, and a researcher reads it in ``instances.jsonl`` to
see exactly what the model saw. Options carry their own leading space (" Paris"), as in the
paper's files. An ``Item`` is one source row in canonical form, before a prompt variant is
applied; task parsers make it and option rules complete it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Item:
    """One source row in canonical form (before a prompt variant is applied)."""

    id: str
    fields: dict[str, str]  # template fields, e.g. {"question": ...}
    options: tuple[str, ...] = ()  # formatted options (" Text"); empty until completed (LAMBADA, QA)
    answer: int = -1  # index of the correct option under the original prompt
    answers: tuple[str, ...] = ()  # LAMBADA/QA: acceptable answers; answers[0] becomes the gold option
    where: str = ""  # "file: row N" for error messages


@dataclass(frozen=True)
class Instance:
    task: str  # registry name, e.g. "piqa"
    source_id: str  # the item's id in its source; (task, source_id) pairs variants
    variant: str  # "original" | "negated" | "instruction_free" | ...
    prompt: str  # fully rendered prompt, exactly as scored/trained
    options: tuple[str, ...]  # answer options, each with its leading space
    target: int  # index of the option trained on (a correct option under this variant)
    gold: tuple[int, ...]  # every option index that counts as correct under this variant
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def pair_key(self) -> tuple[str, str]:
        """Items with the same pair key are the same question under different prompts."""
        return (self.task, self.source_id)

    @property
    def uid(self) -> str:
        return f"{self.task}/{self.source_id}/{self.variant}/{self.target}"

    def to_json(self) -> dict[str, Any]:
        # Built by hand: dataclasses.asdict deep-copies and is 5x slower at 100k rows.
        row: dict[str, Any] = {
            "task": self.task,
            "source_id": self.source_id,
            "variant": self.variant,
            "prompt": self.prompt,
            "options": list(self.options),
            "target": self.target,
            "gold": list(self.gold),
        }
        if self.meta:
            row["meta"] = dict(self.meta)
        return row

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> "Instance":
        return cls(
            task=row["task"],
            source_id=str(row["source_id"]),
            variant=row["variant"],
            prompt=row["prompt"],
            options=tuple(row["options"]),
            target=int(row["target"]),
            gold=tuple(int(g) for g in row["gold"]),
            meta=dict(row.get("meta") or {}),
        )
