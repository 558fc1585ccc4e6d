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
* ``ci``: 95% intervals (``negtune.evaluation.stats``): Wilson for each variant's accuracy, a
  paired bootstrap over items for mean / both_correct / flip_rate, a stratified bootstrap for
  the summary. ``items``: one record per item and variant (``negtune.results.ItemRecords``).

The numbers are returned as ``negtune.results`` types, the results file's own schema.

One implementation: every number above is computed by ``score_picks`` from per-item
``Pick``s (item, variant, picked option, correct?) and averaged over tasks by ``macro``.
``compute_metrics`` derives the picks from option scores; the ``evaluate`` module
(``negtune.evaluation.hf_metric``) takes them from a user's own loop.
``outcome_arrays`` (from a results file's item records) and ``paired_outcomes`` (from picks)
give the aligned arrays ``negtune.evaluation.stats`` resamples for intervals.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Iterable, Optional, Sequence

import numpy as np

from negtune.data.instances import Instance
from negtune.errors import UserError
from negtune.evaluation import stats
from negtune.evaluation.scoring import OptionScore, predictions
from negtune.results import ItemRecords, PairScores, Summary, TaskResult, VariantScore

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


def _sorted_ids(ids: Iterable[Hashable]) -> list[Hashable]:
    unique = set(ids)
    try:
        return sorted(unique)
    except TypeError:  # ids of mixed types (a user's own loop): any fixed order will do
        return sorted(unique, key=repr)


def _aligned(per_variant: dict[str, list[tuple[Hashable, bool, Hashable]]]) -> Optional[dict[str, np.ndarray]]:
    """``{variant: [(item, correct, choice), ...]}`` as float arrays over the union of the
    original and negated items (sorted ids), NaN where an item is absent; ``flipped`` is 1.0
    where the two prompts' choices differ. None without either variant."""
    variants = [v for v in (PAIR_A, PAIR_B) if per_variant.get(v)]
    if not variants:
        return None
    ids = _sorted_ids(i for v in variants for i, _, _ in per_variant[v])
    pos = {i: k for k, i in enumerate(ids)}
    out: dict[str, np.ndarray] = {}
    chosen: dict[str, list[Optional[Hashable]]] = {}
    for v in variants:
        arr = np.full(len(ids), np.nan)
        picked: list[Optional[Hashable]] = [None] * len(ids)
        for i, correct, choice in per_variant[v]:
            arr[pos[i]] = float(correct)
            picked[pos[i]] = choice
        out[v], chosen[v] = arr, picked
    if len(variants) == 2:
        out["flipped"] = np.array([np.nan if a is None or b is None else float(a != b)
                                   for a, b in zip(chosen[PAIR_A], chosen[PAIR_B])])
    return out


def paired_outcomes(picks: Iterable[Pick], where: str = "picks") -> Optional[dict[str, np.ndarray]]:
    """One task's picks as the arrays ``negtune.evaluation.stats`` resamples (``_aligned``);
    instruction_free is left out. None when neither the original nor the negated prompt is there."""
    table = _by_variant(picks, where)
    return _aligned({v: [(p.item, p.correct, p.choice) for p in items.values()] for v, items in table.items()})


def outcome_arrays(items: dict[str, ItemRecords]) -> Optional[dict[str, np.ndarray]]:
    """The same arrays from a results file's item records (the picked option compared by its
    text's hash, as ``flip_rate`` compares texts)."""
    return _aligned({v: list(zip(r.ids, r.correct, r.pred_hash)) for v, r in items.items()})


def _sha(value: Any, length: int) -> str:
    return hashlib.sha256(json.dumps(value, ensure_ascii=False).encode("utf-8")).hexdigest()[:length]


def item_hash(inst: Instance) -> str:
    """12 hex digits of sha256([prompt, options, gold]): two results name the same item
    under a variant exactly when its id and this hash agree."""
    return _sha([inst.prompt, list(inst.options), sorted(inst.gold)], 12)


def option_hash(text: str) -> str:
    """8 hex digits of sha256(option text): enough to tell an item's options apart."""
    return _sha(text, 8)


def _item_records(instances: Sequence[Instance], preds: Sequence[int]) -> dict[str, dict[str, ItemRecords]]:
    """Per task and variant, one record per item in evaluation order (``negtune compare``)."""
    out: dict[str, dict[str, ItemRecords]] = {}
    for inst, pred in zip(instances, preds):
        rec = out.setdefault(inst.task, {}).setdefault(inst.variant, ItemRecords())
        rec.ids.append(inst.source_id)
        rec.pred.append(pred)
        rec.correct.append(pred in inst.gold)
        rec.item_hash.append(item_hash(inst))
        rec.pred_hash.append(option_hash(inst.options[pred]))
    return out


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
    records = _item_records(instances, by_sum)

    tasks: dict[str, TaskResult] = {}
    for task, (sum_picks, mean_picks) in picks.items():
        s, m = score_picks(sum_picks, task), score_picks(mean_picks, task)
        variants = {v: VariantScore(acc=s.acc[v], acc_tok_mean=m.acc[v], chance=sum(chance[task][v]) / s.n[v],
                                    n=s.n[v]) for v in s.acc}
        tasks[task] = TaskResult(variants=variants, n_pairs=s.n_pairs, pairs=s.pairs, tok_mean=m.pairs,
                                 items=records[task])
    summary = summarize(tasks)
    _add_intervals(tasks, summary)
    return tasks, summary


def _add_intervals(tasks: dict[str, TaskResult], summary: Summary) -> None:
    """Wilson intervals for each accuracy; one set of bootstrap draws per task for the task's
    pair metrics and the macro ones (``stats.intervals``)."""
    for t in tasks.values():
        for name, v in t.variants.items():
            v.ci = stats.wilson(sum(t.items[name].correct), v.n).as_tuple()
    per_task = {task: a for task, t in tasks.items() if (a := outcome_arrays(t.items)) is not None}
    if per_task:
        task_ivs, macro_ivs = stats.intervals(per_task)
        for task, ivs in task_ivs.items():
            tasks[task].pairs.ci = {k: ivs[k].as_tuple() for k in ("mean", "both_correct", "flip_rate") if k in ivs}
        summary.ci = {k: iv.as_tuple() for k, iv in macro_ivs.items()}


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
