"""The results file itself: ``Results``, its one writer and its one reader.

Why one reader: the run summaries, the report, the sweep plot, the demo and ``negtune compare``
all load results files through ``Results.read``, so a malformed or foreign file fails the same
way everywhere (one ``UserError`` naming the path and key). Its parts are typed in
``negtune.results.scores`` (the numbers) and ``negtune.results.run_info`` (how they were made).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from negtune.errors import UserError
from negtune.results.fields import Malformed, integer, mapping, number, text
from negtune.results.run_info import EvalSettings, IntervalInfo, PromptInfo, ScoringInfo
from negtune.results.scores import Summary, TaskResult

FORMAT = "negtune-results/1"
_DESCRIPTIVE = ("model", "adapter", "checkpoint", "label", "run", "loss", "recipe_hash", "tokenization")


@dataclass
class Results:
    """One evaluation of one model (or checkpoint) on a set of tasks."""

    tasks: dict[str, TaskResult]
    summary: Summary
    model: Optional[str] = None
    adapter: Optional[str] = None
    checkpoint: Optional[str] = None  # "base" or "step-000084" inside a run directory
    label: Optional[str] = None
    run: Optional[str] = None  # the run directory, when evaluated as part of one
    loss: Optional[str] = None
    recipe_hash: Optional[str] = None
    step: Optional[int] = None
    epoch: Optional[float] = None
    inputs: list[str] = field(default_factory=list)  # CSV files read
    tokenization: Optional[str] = None
    scoring: Optional[ScoringInfo] = None
    settings: Optional[EvalSettings] = None
    versions: dict[str, Optional[str]] = field(default_factory=dict)
    n_params: Optional[int] = None  # the model's parameter count (adapter weights excluded): size sweeps
    model_type: Optional[str] = None  # config.model_type ("opt"): the family of a size sweep
    prompting: Optional[PromptInfo] = None
    intervals: Optional[IntervalInfo] = None  # how the ci entries were computed (None: no intervals)

    @property
    def is_base(self) -> bool:
        """The untuned model: the base of a run, or a bare model evaluated on its own."""
        if self.checkpoint == "base":
            return True
        return (self.adapter is None and self.checkpoint is None and self.run is None
                and self.label in (None, "base"))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"format": FORMAT}
        out.update({k: getattr(self, k) for k in _DESCRIPTIVE})
        out.update(step=self.step, epoch=self.epoch, inputs=list(self.inputs), versions=dict(self.versions),
                   scoring=self.scoring.to_json() if self.scoring else None,
                   settings=self.settings.to_json() if self.settings else None,
                   tasks={name: t.to_json() for name, t in self.tasks.items()}, summary=self.summary.to_json())
        out.update(n_params=self.n_params, model_type=self.model_type,
                   prompting=self.prompting.to_json() if self.prompting else None)
        if self.intervals is not None:
            out["intervals"] = self.intervals.to_json()
        return out

    @classmethod
    def from_json(cls, d: Any, where: str = "results") -> "Results":
        """Parse a results mapping; a malformed one is a UserError naming ``where`` and the key."""
        try:
            d = mapping(d, "top level")
            if not isinstance(d.get("tasks"), dict):
                raise Malformed("no 'tasks' mapping (write one with `negtune eval --out`)")
            fmt = d.get("format", FORMAT)
            if fmt != FORMAT:
                raise Malformed(f"format: {fmt!r} is not {FORMAT!r} (written by another negtune version)")
            tasks = {str(k): TaskResult.from_json(v, f"tasks.{k}") for k, v in d["tasks"].items()}
            step, epoch = d.get("step"), d.get("epoch")
            return cls(
                tasks=tasks, summary=Summary.from_json(d.get("summary") or {}, "summary"),
                **{k: text(d.get(k), k) for k in _DESCRIPTIVE},
                step=integer(step, "step"), epoch=number(epoch, "epoch"),
                inputs=[str(x) for x in d.get("inputs") or []],
                scoring=ScoringInfo.from_json(d.get("scoring"), "scoring"),
                settings=EvalSettings.from_json(d.get("settings"), "settings"),
                versions=dict(d.get("versions") or {}),
                n_params=integer(d.get("n_params"), "n_params"), model_type=text(d.get("model_type"), "model_type"),
                prompting=PromptInfo.from_json(d.get("prompting"), "prompting"),
                intervals=IntervalInfo.from_json(d.get("intervals"), "intervals"),
            )
        except Malformed as err:
            raise UserError(f"{where}: not a results JSON: {err}") from None

    def write(self, path: str | Path) -> None:
        """Write atomically (a reader never sees half a file)."""
        from negtune.io import write_json

        write_json(path, self.to_json())

    @classmethod
    def read(cls, path: str | Path) -> "Results":
        p = Path(path)
        if not p.is_file():
            raise UserError(f"{p}: no such results file")
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise UserError(f"{p}: not a results JSON (cannot parse: {err})") from None
        return cls.from_json(data, str(p))
