"""The results file as typed data: the one writer and the one reader.

Why one module: ``negtune eval`` writes a results JSON (``--out``, or
``RUN_DIR/eval/<checkpoint>.json``), and the run summaries, the report, the demo, the trainer's
epoch-end log line and ``negtune compare`` all read it. Parsing it by hand in each of them
lets the readers drift from the writer; here the file is a tree of dataclasses with one
``to_json`` and one ``from_json`` (a malformed file is a one-line ``UserError`` naming the
path and key), the way lm-evaluation-harness keeps its result objects in one place.

Layout of the JSON (keys sorted when written)::

    {"format": "negtune-results/1",
     "model", "adapter", "checkpoint", "label", "run", "loss", "recipe_hash", "step", "epoch",
     "inputs": [...], "tokenization", "versions": {...},
     "settings": {"limit", "dtype", "tokenization", "method", "max_length", "prompting", "sets_sha256"},
     "scoring": {"method", "batch_size", "dtype", "seconds", "n_instances", "n_options", "max_length",
                 "n_truncated", "architecture", "processes"},
     "n_params", "model_type",
     "prompting": {"chat_template", "system_prompt", "fewshot_k", "fewshot_sampling", "fewshot_seed",
                   "fewshot_source", "n_fewshot_reduced", "min_fewshot_used"},
     "tasks": {TASK: {VARIANT: {"acc", "acc_tok_mean", "chance", "n", "ci": [low, high]}, ...,
                      "n_pairs", "mean", "both_correct", "flip_rate", "instruction_free_agreement",
                      "ci": {"mean": [low, high], "both_correct": [...], "flip_rate": [...]},
                      "tok_mean": {"mean", "both_correct", "flip_rate", "instruction_free_agreement"},
                      "items": {VARIANT: {"id": [...], "pred": [...], "correct": [0|1, ...],
                                          "hash": [...], "pred_hash": [...]}}}},
     "summary": {"original_acc", "negated_acc", "mean", "both_correct", "flip_rate",
                 "instruction_free_agreement", "original_acc_tok_mean", "negated_acc_tok_mean",
                 "mean_tok_mean", "n_tasks", "ci": {METRIC: [low, high]}},
     "intervals": {"level", "accuracy", "paired", "macro", "resamples", "seed"}}

The metrics are defined in ``negtune.evaluation.metrics``, the intervals (95%: Wilson for a
variant's accuracy, a paired bootstrap over items for the pair metrics and the macro numbers)
in ``negtune.evaluation.stats``. ``items`` holds one record per item and variant, so that
``negtune compare`` can pair two models item by item; files written before it existed load
with empty ``items`` and ``ci`` (compare then refuses them).
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from negtune.errors import UserError

FORMAT = "negtune-results/1"
PAIR_KEYS = ("mean", "both_correct", "flip_rate", "instruction_free_agreement")


class _Bad(Exception):
    """A malformed value at a key path (turned into one UserError naming the file)."""


def _num(value: Any, where: str, optional: bool = True) -> Optional[float]:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Bad(f"{where}: expected a number, got {value!r}")
    return float(value)


def _int(value: Any, where: str, optional: bool = True) -> Optional[int]:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Bad(f"{where}: expected an integer, got {value!r}")
    return value


def _str(value: Any, where: str) -> Optional[str]:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Bad(f"{where}: expected a string, got {value!r}")
    return value


def _map(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Bad(f"{where}: expected a mapping, got {type(value).__name__}")
    return value


Bounds = tuple[float, float]  # a 95% confidence interval (low, high)


def _bounds(value: Any, where: str) -> Optional[Bounds]:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != 2:
        raise _Bad(f"{where}: expected an interval [low, high], got {value!r}")
    low, high = (_num(v, where, optional=False) for v in value)
    return (low, high)


def _bounds_map(value: Any, where: str) -> dict[str, Bounds]:
    d = _map(value or {}, where)
    return {str(k): b for k, v in d.items() if (b := _bounds(v, f"{where}.{k}")) is not None}


def _column(d: dict[str, Any], key: str, kind: type, where: str) -> list[Any]:
    values = d.get(key)
    if not isinstance(values, list) or not all(isinstance(v, kind) and not isinstance(v, bool) for v in values):
        raise _Bad(f"{where}.{key}: expected a list of {kind.__name__}")
    return values


@dataclass
class ItemRecords:
    """Per-item outcomes of one task under one prompt variant, aligned by position.

    Why in the results file: a paired comparison of two models (``negtune compare``) and the
    reading gain against the base model need each item's outcome, and must refuse to pair
    two different item sets. ``item_hash`` is a short sha256 of the item's prompt, options
    and gold set (same id and hash = same item); ``pred_hash`` a short sha256 of the picked
    option's text, so flips between the two prompts can be counted (options are compared by
    text: some paper files order them differently under negation).
    """

    ids: list[str] = field(default_factory=list)
    pred: list[int] = field(default_factory=list)  # index of the picked option (highest summed log-likelihood)
    correct: list[bool] = field(default_factory=list)
    item_hash: list[str] = field(default_factory=list)
    pred_hash: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.ids, "pred": self.pred, "correct": [int(c) for c in self.correct],
                "hash": self.item_hash, "pred_hash": self.pred_hash}

    @classmethod
    def from_json(cls, d: Any, where: str) -> "ItemRecords":
        d = _map(d, where)
        out = cls(ids=_column(d, "id", str, where), pred=_column(d, "pred", int, where),
                  correct=[bool(c) for c in _column(d, "correct", int, where)],
                  item_hash=_column(d, "hash", str, where), pred_hash=_column(d, "pred_hash", str, where))
        if len({len(out.ids), len(out.pred), len(out.correct), len(out.item_hash), len(out.pred_hash)}) != 1:
            raise _Bad(f"{where}: id, pred, correct, hash and pred_hash differ in length")
        return out


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
        d = _map(d, where)
        return cls(level=_num(d.get("level"), f"{where}.level", optional=False),
                   resamples=_int(d.get("resamples"), f"{where}.resamples", optional=False),
                   seed=_int(d.get("seed"), f"{where}.seed", optional=False),
                   **{k: _str(d.get(k), f"{where}.{k}") or "" for k in ("accuracy", "paired", "macro")})


@dataclass
class VariantScore:
    """Accuracy of one task under one prompt variant."""

    acc: float  # highest summed option log-likelihood is in the gold set
    acc_tok_mean: float  # the same with the per-token mean log-likelihood
    n: int  # items scored under this variant
    chance: Optional[float] = None  # mean of |gold| / |options|: a uniformly random pick's accuracy
    ci: Optional[Bounds] = None  # 95% Wilson interval of acc

    def to_json(self) -> dict[str, Any]:
        out = {"acc": self.acc, "acc_tok_mean": self.acc_tok_mean, "chance": self.chance, "n": self.n}
        if self.ci is not None:
            out["ci"] = list(self.ci)
        return out

    @classmethod
    def from_json(cls, d: Any, where: str) -> "VariantScore":
        d = _map(d, where)
        return cls(acc=_num(d.get("acc"), f"{where}.acc", optional=False),
                   acc_tok_mean=_num(d.get("acc_tok_mean", d.get("acc")), f"{where}.acc_tok_mean", optional=False),
                   n=_int(d.get("n"), f"{where}.n", optional=False), chance=_num(d.get("chance"), f"{where}.chance"),
                   ci=_bounds(d.get("ci"), f"{where}.ci"))


@dataclass
class PairScores:
    """Metrics over the items present under both the original and the negated prompt."""

    mean: Optional[float] = None  # (original acc + negated acc) / 2
    both_correct: Optional[float] = None
    flip_rate: Optional[float] = None
    instruction_free_agreement: Optional[float] = None
    ci: dict[str, Bounds] = field(default_factory=dict)  # 95% paired-bootstrap intervals by key

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: getattr(self, k) for k in PAIR_KEYS}
        if self.ci:
            out["ci"] = {k: list(v) for k, v in self.ci.items()}
        return out

    @classmethod
    def from_json(cls, d: Any, where: str) -> "PairScores":
        d = _map(d, where)
        return cls(**{k: _num(d.get(k), f"{where}.{k}") for k in PAIR_KEYS},
                   ci=_bounds_map(d.get("ci"), f"{where}.ci"))


@dataclass
class TaskResult:
    """One task (or paper CSV set): per-variant accuracies and the paired metrics."""

    variants: dict[str, VariantScore]
    n_pairs: int = 0
    pairs: PairScores = field(default_factory=PairScores)  # from summed log-likelihoods (the headline)
    tok_mean: PairScores = field(default_factory=PairScores)  # from per-token-mean log-likelihoods
    items: dict[str, ItemRecords] = field(default_factory=dict)  # per variant; empty in older files

    def acc(self, variant: str) -> Optional[float]:
        score = self.variants.get(variant)
        return score.acc if score is not None else None

    @property
    def n(self) -> int:
        """Items in the task: pairs when there are any, else the largest variant."""
        return self.n_pairs or max((v.n for v in self.variants.values()), default=0)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {name: v.to_json() for name, v in self.variants.items()}
        out.update(self.pairs.to_json(), n_pairs=self.n_pairs, tok_mean=self.tok_mean.to_json())
        if self.items:
            out["items"] = {name: rec.to_json() for name, rec in self.items.items()}
        return out

    @classmethod
    def from_json(cls, d: Any, where: str) -> "TaskResult":
        d = _map(d, where)
        scalar = set(PAIR_KEYS) | {"n_pairs", "tok_mean", "ci", "items"}
        variants = {k: VariantScore.from_json(v, f"{where}.{k}") for k, v in d.items() if k not in scalar}
        items = _map(d.get("items") or {}, f"{where}.items")
        return cls(variants=variants, n_pairs=_int(d.get("n_pairs"), f"{where}.n_pairs") or 0,
                   pairs=PairScores.from_json({k: d.get(k) for k in (*PAIR_KEYS, "ci")}, where),
                   tok_mean=PairScores.from_json(d.get("tok_mean") or {}, f"{where}.tok_mean"),
                   items={str(k): ItemRecords.from_json(v, f"{where}.items.{k}") for k, v in items.items()})


SUMMARY_KEYS = ("original_acc", "negated_acc", "mean", "both_correct", "flip_rate", "instruction_free_agreement",
                "original_acc_tok_mean", "negated_acc_tok_mean", "mean_tok_mean")


@dataclass
class Summary:
    """Macro averages over tasks: each task counts once, whatever its size."""

    original_acc: Optional[float] = None
    negated_acc: Optional[float] = None
    mean: Optional[float] = None
    both_correct: Optional[float] = None
    flip_rate: Optional[float] = None
    instruction_free_agreement: Optional[float] = None
    original_acc_tok_mean: Optional[float] = None
    negated_acc_tok_mean: Optional[float] = None
    mean_tok_mean: Optional[float] = None
    n_tasks: int = 0
    ci: dict[str, Bounds] = field(default_factory=dict)  # 95% stratified-bootstrap intervals by key

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["ci"] = {k: list(v) for k, v in self.ci.items()}
        return out

    @classmethod
    def from_json(cls, d: Any, where: str) -> "Summary":
        d = _map(d, where)
        return cls(**{k: _num(d.get(k), f"{where}.{k}") for k in SUMMARY_KEYS},
                   n_tasks=_int(d.get("n_tasks"), f"{where}.n_tasks") or 0,
                   ci=_bounds_map(d.get("ci"), f"{where}.ci"))


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
        d = _map(d, where)
        try:
            return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls)
                          if f.name in d or f.default is dataclasses.MISSING})
        except KeyError as err:
            raise _Bad(f"{where}: missing key {err.args[0]!r}") from None


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
        d = _map(d, where)
        try:
            return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls)})
        except (KeyError, TypeError) as err:
            raise _Bad(f"{where}: malformed ({err})") from None

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
        d = _map(d, where)
        return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls) if f.name in d})

    def describe(self) -> str:
        """A short label: "0-shot", "8-shot fixed", "chat, 4-shot per_item"."""
        shots = f"{self.fewshot_k}-shot" + (f" {self.fewshot_sampling}" if self.fewshot_k else "")
        return ("chat, " if self.chat_template else "") + shots


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
            d = _map(d, "top level")
            if not isinstance(d.get("tasks"), dict):
                raise _Bad("no 'tasks' mapping (write one with `negtune eval --out`)")
            fmt = d.get("format", FORMAT)
            if fmt != FORMAT:
                raise _Bad(f"format: {fmt!r} is not {FORMAT!r} (written by another negtune version)")
            tasks = {str(k): TaskResult.from_json(v, f"tasks.{k}") for k, v in d["tasks"].items()}
            step, epoch = d.get("step"), d.get("epoch")
            return cls(
                tasks=tasks, summary=Summary.from_json(d.get("summary") or {}, "summary"),
                **{k: _str(d.get(k), k) for k in _DESCRIPTIVE},
                step=_int(step, "step"), epoch=_num(epoch, "epoch"),
                inputs=[str(x) for x in d.get("inputs") or []],
                scoring=ScoringInfo.from_json(d.get("scoring"), "scoring"),
                settings=EvalSettings.from_json(d.get("settings"), "settings"),
                versions=dict(d.get("versions") or {}),
                n_params=_int(d.get("n_params"), "n_params"), model_type=_str(d.get("model_type"), "model_type"),
                prompting=PromptInfo.from_json(d.get("prompting"), "prompting"),
                intervals=IntervalInfo.from_json(d.get("intervals"), "intervals"),
            )
        except _Bad as err:
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


def finite_or_none(value: Any) -> Optional[float]:
    """A metric as a float, or None when absent or NaN (for tables and plots)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return None if math.isnan(value) else value


def format_metric(value: Any, for_csv: bool = False) -> str:
    """How every table writes a metric: 6 decimals (empty when missing) in CSV files, meant
    for further analysis; 3 decimals ("-" when missing) in markdown and on the console."""
    number = finite_or_none(value)
    if number is None:
        return "" if for_csv else "-"
    return f"{number:.6f}" if for_csv else f"{number:.3f}"
