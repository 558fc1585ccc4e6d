"""The numbers of a results file: per-variant accuracy, paired metrics, per-item records and
the macro summary.

Why together: they are what ``negtune.evaluation.metrics`` computes and what the report, the
run summaries and ``negtune compare`` read; each has one ``to_json`` and one ``from_json``.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Optional

from negtune.results.fields import Bounds, Malformed, bounds, bounds_map, column, integer, mapping, number

PAIR_KEYS = ("mean", "both_correct", "flip_rate", "instruction_free_agreement")


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
        d = mapping(d, where)
        out = cls(ids=column(d, "id", str, where), pred=column(d, "pred", int, where),
                  correct=[bool(c) for c in column(d, "correct", int, where)],
                  item_hash=column(d, "hash", str, where), pred_hash=column(d, "pred_hash", str, where))
        if len({len(out.ids), len(out.pred), len(out.correct), len(out.item_hash), len(out.pred_hash)}) != 1:
            raise Malformed(f"{where}: id, pred, correct, hash and pred_hash differ in length")
        return out


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
        d = mapping(d, where)
        return cls(acc=number(d.get("acc"), f"{where}.acc", optional=False),
                   acc_tok_mean=number(d.get("acc_tok_mean", d.get("acc")), f"{where}.acc_tok_mean", optional=False),
                   n=integer(d.get("n"), f"{where}.n", optional=False), chance=number(d.get("chance"), f"{where}.chance"),
                   ci=bounds(d.get("ci"), f"{where}.ci"))


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
        d = mapping(d, where)
        return cls(**{k: number(d.get(k), f"{where}.{k}") for k in PAIR_KEYS},
                   ci=bounds_map(d.get("ci"), f"{where}.ci"))


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
        d = mapping(d, where)
        scalar = set(PAIR_KEYS) | {"n_pairs", "tok_mean", "ci", "items"}
        variants = {k: VariantScore.from_json(v, f"{where}.{k}") for k, v in d.items() if k not in scalar}
        items = mapping(d.get("items") or {}, f"{where}.items")
        return cls(variants=variants, n_pairs=integer(d.get("n_pairs"), f"{where}.n_pairs") or 0,
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
        d = mapping(d, where)
        return cls(**{k: number(d.get(k), f"{where}.{k}") for k in SUMMARY_KEYS},
                   n_tasks=integer(d.get("n_tasks"), f"{where}.n_tasks") or 0,
                   ci=bounds_map(d.get("ci"), f"{where}.ci"))
