"""Paired metrics: how a model answers the same item under original and negated prompts.

Definitions (per task; a "pair" is an item present under both variants, matched by
``Instance.pair_key`` = (task, source_id)):

* ``<variant>.acc``: share of that variant's items whose highest-scoring option (sum of
  option-token log-probabilities) is in the item's gold set (negated 4-option items have
  3 correct answers). ``acc_tok_mean``: the same with the per-token mean log-probability.
  ``chance``: the accuracy of a uniformly random pick, mean of |gold| / |options| (0.25
  original and 0.75 negated on 4-option tasks), so a report need not guess it.
* ``mean``: (original.acc + negated.acc) / 2, the headline number.
* ``both_correct``: share of pairs right under both prompts.
* ``flip_rate``: share of pairs whose predicted option changes between the two prompts.
  Options are compared by text, because some paper files list them in a different
  order in the negated file (TriviaQA, NQ). A model that ignores the instruction never
  flips; one that follows it on 2-option tasks always does.
* ``instruction_free_agreement``: share of items whose instruction-free prediction equals
  the original-prompt prediction (null when instruction_free was not evaluated).
* ``tok_mean``: the pair metrics recomputed from per-token-mean predictions.
* ``summary``: unweighted (macro) means over tasks of the per-task numbers.

The numbers are returned as ``negtune.results`` types, the results file's own schema.

One implementation: every number above is computed by ``score_picks`` from per-item
``Pick``s (item, variant, picked option, correct?) and averaged over tasks by ``macro``.
``compute_metrics`` derives the picks from option scores; the ``evaluate`` module
(``negtune.evaluation.hf_metric``) takes them from a user's own loop.
``paired_outcomes`` gives the same picks as the aligned arrays ``negtune.evaluation.stats``
resamples for intervals.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Hashable, Iterable, Optional, Sequence

from negtune.data.instances import Instance
from negtune.errors import UserError
from negtune.evaluation.scoring import OptionScore, predictions
from negtune.results import PairScores, Summary, TaskResult, VariantScore

PAIR_A, PAIR_B, FREE = "original", "negated", "instruction_free"


@dataclass(frozen=True)
class Pick:
    """One item's prediction under one prompt variant: everything the paired metrics read.

    Why a type of its own: ``compute_metrics`` derives picks from option scores, while the
    ``evaluate`` module (``negtune.evaluation.hf_metric``) receives them from a user's
    training loop; both then go through ``score_picks``, so the metrics have one
    implementation. ``choice`` is what ``flip_rate`` and ``instruction_free_agreement``
    compare across variants: the picked option's text (or any value that identifies the
    option the same way under every variant).
    """

    item: str
    variant: str
    choice: Hashable
    correct: bool


@dataclass
class PickScores:
    """``score_picks`` of one task: per-variant accuracy and size, then the paired metrics."""

    acc: dict[str, float] = field(default_factory=dict)
    n: dict[str, int] = field(default_factory=dict)
    n_pairs: int = 0
    pairs: PairScores = field(default_factory=PairScores)


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def macro(values: Iterable[Optional[float]]) -> float | None:
    """Unweighted mean of the values that are defined (None when none is): each task counts
    once whatever its size, the rule of every ``summary`` number."""
    return _mean([v for v in values if v is not None])


def _by_variant(picks: Iterable[Pick], where: str) -> dict[str, dict[str, Pick]]:
    table: dict[str, dict[str, Pick]] = {}
    for p in picks:
        slot = table.setdefault(p.variant, {})
        if p.item in slot:
            raise UserError(f"{where}: item {p.item}: appears twice under variant {p.variant}")
        slot[p.item] = p
    return table


def score_picks(picks: Iterable[Pick], where: str = "picks") -> PickScores:
    """One task's metrics (module docstring): ``<variant>.acc`` over every item of the variant,
    the pair metrics over the items present under both variants. ``where`` names the task
    in the error for an item listed twice under one variant."""
    table = _by_variant(picks, where)
    out = PickScores()
    for variant, items in table.items():
        out.n[variant] = len(items)
        out.acc[variant] = sum(p.correct for p in items.values()) / len(items)
    if PAIR_A in table and PAIR_B in table:
        a, b = table[PAIR_A], table[PAIR_B]
        keys = [k for k in a if k in b]
        out.n_pairs = len(keys)
        out.pairs.mean = (out.acc[PAIR_A] + out.acc[PAIR_B]) / 2
        out.pairs.both_correct = _mean([float(a[k].correct and b[k].correct) for k in keys])
        out.pairs.flip_rate = _mean([float(a[k].choice != b[k].choice) for k in keys])
    if PAIR_A in table and FREE in table:
        a, f = table[PAIR_A], table[FREE]
        out.pairs.instruction_free_agreement = _mean([float(a[k].choice == f[k].choice) for k in a if k in f])
    return out


def paired_outcomes(picks: Iterable[Pick], where: str = "picks") -> dict[str, list[bool]]:
    """The per-pair outcomes ``negtune.evaluation.stats`` resamples, aligned on the items
    present under both prompts (in original-prompt order): ``original`` / ``negated`` (the
    pick is correct) and ``flipped`` (the picked option changes). A task with one of the two
    variants gets that variant's outcomes over all its items; instruction_free is left out."""
    table = _by_variant(picks, where)
    a, b = table.get(PAIR_A), table.get(PAIR_B)
    if a is not None and b is not None:
        keys = [k for k in a if k in b]
        return {PAIR_A: [a[k].correct for k in keys], PAIR_B: [b[k].correct for k in keys],
                "flipped": [a[k].choice != b[k].choice for k in keys]}
    return {v: [p.correct for p in items.values()] for v, items in ((PAIR_A, a), (PAIR_B, b)) if items}


def compute_metrics(instances: Sequence[Instance],
                    scores: Sequence[Sequence[OptionScore]]) -> tuple[dict[str, TaskResult], Summary]:
    """Per-task results and their macro summary (see the module docstring)."""
    if len(instances) != len(scores):
        raise ValueError(f"{len(instances)} instances but {len(scores)} score lists")
    by_sum = predictions(scores)
    by_mean = predictions(scores, per_token_mean=True)
    picks: dict[str, tuple[list[Pick], list[Pick]]] = {}  # task -> (by summed, by per-token-mean scores)
    chance: dict[str, dict[str, list[float]]] = {}  # task -> variant -> |gold| / |options| per item
    for inst, opts, ps, pm in zip(instances, scores, by_sum, by_mean):
        if len(opts) != len(inst.options):
            raise ValueError(f"{inst.uid}: {len(inst.options)} options but {len(opts)} scores")
        by_rule = picks.setdefault(inst.task, ([], []))
        for rule, pred in zip(by_rule, (ps, pm)):
            rule.append(Pick(inst.source_id, inst.variant, inst.options[pred], pred in inst.gold))
        chance.setdefault(inst.task, {}).setdefault(inst.variant, []).append(len(set(inst.gold)) / len(inst.options))

    tasks: dict[str, TaskResult] = {}
    for task, (sum_picks, mean_picks) in picks.items():
        s, m = score_picks(sum_picks, task), score_picks(mean_picks, task)
        variants = {v: VariantScore(acc=s.acc[v], acc_tok_mean=m.acc[v], chance=sum(chance[task][v]) / s.n[v],
                                    n=s.n[v]) for v in s.acc}
        tasks[task] = TaskResult(variants=variants, n_pairs=s.n_pairs, pairs=s.pairs, tok_mean=m.pairs)
    return tasks, summarize(tasks)


def summarize(tasks: dict[str, TaskResult]) -> Summary:
    """Macro averages over tasks (each task counts once, whatever its size)."""

    def over_tasks(get: Callable[[TaskResult], Optional[float]]) -> float | None:
        return macro(get(t) for t in tasks.values())

    def tok(variant: str) -> Callable[[TaskResult], Optional[float]]:
        return lambda t: t.variants[variant].acc_tok_mean if variant in t.variants else None

    return Summary(
        original_acc=over_tasks(lambda t: t.acc(PAIR_A)),
        negated_acc=over_tasks(lambda t: t.acc(PAIR_B)),
        mean=over_tasks(lambda t: t.pairs.mean),
        both_correct=over_tasks(lambda t: t.pairs.both_correct),
        flip_rate=over_tasks(lambda t: t.pairs.flip_rate),
        instruction_free_agreement=over_tasks(lambda t: t.pairs.instruction_free_agreement),
        original_acc_tok_mean=over_tasks(tok(PAIR_A)),
        negated_acc_tok_mean=over_tasks(tok(PAIR_B)),
        mean_tok_mean=over_tasks(lambda t: t.tok_mean.mean),
        n_tasks=len(tasks),
    )
