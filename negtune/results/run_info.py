"""How a results file's numbers were produced: scoring, settings, prompting, intervals.

Why apart from the numbers: these describe how a model was scored, not what it scored.
``EvalSettings`` decides whether ``negtune eval RUN_DIR`` may reuse a file; ``ScoringInfo`` and
``PromptInfo`` are what ``negtune eval`` reports about a run (``PromptInfo.describe`` also
labels sweep plots); ``IntervalInfo`` records how the ``ci`` entries were computed.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Optional

from negtune.results.fields import Malformed, integer, mapping, number, text


@dataclass
class IntervalInfo:
    """How the results' intervals were computed (``negtune.evaluation.stats``)."""

    level: float = 0.95
    accuracy: str = "wilson"  # one variant's accuracy: Wilson score interval
    paired: str = "bootstrap"  # mean, both_correct, flip_rate: percentile bootstrap over items, pairs kept
    macro: str = "stratified bootstrap"  # summary: items resampled within each task
    resamples: int = 2000
    seed: int = 0  # task t draws from PCG64(sha256([seed, t])): the same items for every model

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: Any, where: str) -> Optional["IntervalInfo"]:
        if d is None:
            return None
        d = mapping(d, where)
        return cls(level=number(d.get("level"), f"{where}.level", optional=False),
                   resamples=integer(d.get("resamples"), f"{where}.resamples", optional=False),
                   seed=integer(d.get("seed"), f"{where}.seed", optional=False),
                   **{k: text(d.get(k), f"{where}.{k}") or "" for k in ("accuracy", "paired", "macro")})


@dataclass
class ScoringInfo:
    """How the numbers were computed (not part of the numbers' meaning, except dtype)."""

    method: str
    batch_size: int
    dtype: str
    seconds: float
    n_instances: int
    n_options: int
    max_length: Optional[int] = None  # sequences were cut at this length (prompt trimmed from the left)
    n_truncated: int = 0  # instances whose prompt was trimmed
    architecture: str = "causal"  # or "seq2seq" (encoder-decoder: prompt to the encoder, option decoded)
    processes: int = 1  # processes the items were split across (same numbers as one, to float rounding)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: Any, where: str) -> Optional["ScoringInfo"]:
        if d is None:
            return None
        d = mapping(d, where)
        try:
            return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls)
                          if f.name in d or f.default is dataclasses.MISSING})
        except KeyError as err:
            raise Malformed(f"{where}: missing key {err.args[0]!r}") from None


@dataclass(frozen=True)
class EvalSettings:
    """Everything that changes the numbers (batch size does not: scores are batch-invariant).

    ``negtune eval RUN_DIR`` reuses a results file only when its settings equal the ones
    asked for now; ``sets_sha256`` covers the evaluated items themselves (task, id, variant,
    prompt, options, gold), so a ``--limit`` or an edited eval set is a different setting."""

    limit: Optional[int]
    dtype: str
    tokenization: str
    method: str  # as requested ("auto" resolves per architecture; scoring.method says to what)
    max_length: Optional[int]  # as requested (None: the model's limit); scoring.max_length: effective
    prompting: str  # chat template, system prompt, few-shot k/sampling/seed/source, as requested
    sets_sha256: str

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: Any, where: str) -> Optional["EvalSettings"]:
        if d is None:
            return None
        d = mapping(d, where)
        try:
            return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls)})
        except (KeyError, TypeError) as err:
            raise Malformed(f"{where}: malformed ({err})") from None

    def differences(self, other: Optional["EvalSettings"]) -> list[str]:
        """Human-readable differences, e.g. ``["limit 2 -> None"]`` (all when ``other`` is None)."""
        if other is None:
            return ["not recorded (written by an older negtune)"]
        return [f"{f.name} {getattr(other, f.name)!r} -> {getattr(self, f.name)!r}" for f in dataclasses.fields(self)
                if getattr(self, f.name) != getattr(other, f.name)]


@dataclass
class PromptInfo:
    """What the model read besides the prompt: chat template, few-shot demonstrations.

    ``n_fewshot_reduced``: items shown fewer than ``fewshot_k`` demonstrations because they
    did not fit the max length (whole demonstrations are dropped from the left, the item is
    kept whole); ``min_fewshot_used``: the fewest any item was shown.
    """

    chat_template: bool = False
    system_prompt: Optional[str] = None
    fewshot_k: int = 0
    fewshot_sampling: Optional[str] = None  # fixed | per_item
    fewshot_seed: Optional[int] = None
    fewshot_source: Optional[str] = None
    n_fewshot_reduced: int = 0
    min_fewshot_used: Optional[int] = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: Any, where: str) -> Optional["PromptInfo"]:
        if d is None:
            return None
        d = mapping(d, where)
        return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls) if f.name in d})

    def describe(self) -> str:
        """A short label: "0-shot", "8-shot fixed", "chat, 4-shot per_item"."""
        shots = f"{self.fewshot_k}-shot" + (f" {self.fewshot_sampling}" if self.fewshot_k else "")
        return ("chat, " if self.chat_template else "") + shots
