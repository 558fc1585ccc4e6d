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
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, Callable, Optional, Sequence

import numpy as np

from negtune.data.instances import Instance
from negtune.errors import UserError
from negtune.evaluation import stats
from negtune.evaluation.scoring import OptionScore, predictions
from negtune.results import ItemRecords, PairScores, Summary, TaskResult, VariantScore

PAIR_A, PAIR_B, FREE = "original", "negated", "instruction_free"


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _sha(value: Any, length: int) -> str:
    return hashlib.sha256(json.dumps(value, ensure_ascii=False).encode("utf-8")).hexdigest()[:length]


def item_hash(inst: Instance) -> str:
    """12 hex digits of sha256([prompt, options, gold]): two results name the same item
    under a variant exactly when its id and this hash agree."""
    return _sha([inst.prompt, list(inst.options), sorted(inst.gold)], 12)


def option_hash(text: str) -> str:
    """8 hex digits of sha256(option text): enough to tell an item's options apart."""
    return _sha(text, 8)


def outcome_arrays(items: dict[str, ItemRecords]) -> Optional[dict[str, np.ndarray]]:
    """One task's per-item outcomes as the float arrays ``negtune.evaluation.stats`` resamples:
    aligned over the items of the original and/or negated prompt (sorted ids), NaN where an
    item is absent; ``flipped`` compares the picked options' texts. None without either variant."""
    variants = [v for v in (PAIR_A, PAIR_B) if v in items]
    if not variants:
        return None
    ids = sorted({i for v in variants for i in items[v].ids})
    pos = {i: k for k, i in enumerate(ids)}
    out: dict[str, np.ndarray] = {}
    picked: dict[str, list[Optional[str]]] = {}
    for v in variants:
        arr = np.full(len(ids), np.nan)
        texts: list[Optional[str]] = [None] * len(ids)
        rec = items[v]
        for i, c, h in zip(rec.ids, rec.correct, rec.pred_hash):
            arr[pos[i]] = float(c)
            texts[pos[i]] = h
        out[v], picked[v] = arr, texts
    if len(variants) == 2:
        out["flipped"] = np.array([np.nan if a is None or b is None else float(a != b)
                                   for a, b in zip(picked[PAIR_A], picked[PAIR_B])])
    return out


def _pair_metrics(preds: dict[str, dict[str, int]], texts: dict[str, dict[str, str]],
                  correct: dict[str, dict[str, bool]]) -> tuple[int, PairScores]:
    out = PairScores()
    n_pairs = 0
    if PAIR_A in preds and PAIR_B in preds:
        keys = [k for k in preds[PAIR_A] if k in preds[PAIR_B]]
        n_pairs = len(keys)
        out.both_correct = _mean([float(correct[PAIR_A][k] and correct[PAIR_B][k]) for k in keys])
        out.flip_rate = _mean([float(texts[PAIR_A][k] != texts[PAIR_B][k]) for k in keys])
    if PAIR_A in preds and FREE in preds:
        keys = [k for k in preds[PAIR_A] if k in preds[FREE]]
        out.instruction_free_agreement = _mean([float(texts[PAIR_A][k] == texts[FREE][k]) for k in keys])
    return n_pairs, out


def compute_metrics(instances: Sequence[Instance],
                    scores: Sequence[Sequence[OptionScore]]) -> tuple[dict[str, TaskResult], Summary]:
    """Per-task results and their macro summary (see the module docstring)."""
    if len(instances) != len(scores):
        raise ValueError(f"{len(instances)} instances but {len(scores)} score lists")
    by_sum = predictions(scores)
    by_mean = predictions(scores, per_token_mean=True)
    # task -> rule -> variant -> source_id -> value
    table: dict[str, dict[str, dict[str, dict[str, dict[str, Any]]]]] = {}
    for inst, opts, ps, pm in zip(instances, scores, by_sum, by_mean):
        if len(opts) != len(inst.options):
            raise ValueError(f"{inst.uid}: {len(inst.options)} options but {len(opts)} scores")
        per = table.setdefault(inst.task, {"sum": {}, "mean": {}})
        for rule, pred in (("sum", ps), ("mean", pm)):
            slot = per[rule].setdefault(inst.variant, {"pred": {}, "text": {}, "correct": {}, "chance": {},
                                                       "hash": {}})
            if inst.source_id in slot["pred"]:
                raise UserError(f"{inst.task}: item {inst.source_id}: appears twice under variant {inst.variant}")
            slot["pred"][inst.source_id] = pred
            slot["text"][inst.source_id] = inst.options[pred]
            slot["correct"][inst.source_id] = pred in inst.gold
            slot["chance"][inst.source_id] = len(set(inst.gold)) / len(inst.options)
            if rule == "sum":
                slot["hash"][inst.source_id] = item_hash(inst)

    tasks: dict[str, TaskResult] = {}
    for task, per in table.items():
        variants: dict[str, VariantScore] = {}
        for variant, slot in per["sum"].items():
            tok = per["mean"][variant]
            n = len(slot["pred"])
            k = sum(slot["correct"].values())
            variants[variant] = VariantScore(acc=k / n, acc_tok_mean=sum(tok["correct"].values()) / n,
                                             chance=sum(slot["chance"].values()) / n, n=n,
                                             ci=stats.wilson(k, n).as_tuple())
        items = {variant: ItemRecords(ids=list(slot["pred"]), pred=list(slot["pred"].values()),
                                      correct=list(slot["correct"].values()), item_hash=list(slot["hash"].values()),
                                      pred_hash=[option_hash(t) for t in slot["text"].values()])
                 for variant, slot in per["sum"].items()}
        result = TaskResult(variants=variants, items=items)
        both = PAIR_A in variants and PAIR_B in variants
        for rule in ("sum", "mean"):
            v = per[rule]
            n_pairs, pm = _pair_metrics({k: s["pred"] for k, s in v.items()}, {k: s["text"] for k, s in v.items()},
                                        {k: s["correct"] for k, s in v.items()})
            if rule == "sum":
                pm.mean = (variants[PAIR_A].acc + variants[PAIR_B].acc) / 2 if both else None
                result.n_pairs, result.pairs = n_pairs, pm
            else:
                pm.mean = (variants[PAIR_A].acc_tok_mean + variants[PAIR_B].acc_tok_mean) / 2 if both else None
                result.tok_mean = pm
        tasks[task] = result
    summary = summarize(tasks)
    per_task = {task: a for task, t in tasks.items() if (a := outcome_arrays(t.items)) is not None}
    if per_task:  # one set of bootstrap draws per task gives the task and the macro intervals
        task_ivs, macro_ivs = stats.intervals(per_task)
        for task, ivs in task_ivs.items():
            tasks[task].pairs.ci = {k: ivs[k].as_tuple() for k in ("mean", "both_correct", "flip_rate") if k in ivs}
        summary.ci = {k: iv.as_tuple() for k, iv in macro_ivs.items()}
    return tasks, summary


def summarize(tasks: dict[str, TaskResult]) -> Summary:
    """Macro averages over tasks (each task counts once, whatever its size)."""

    def macro(get: Callable[[TaskResult], Optional[float]]) -> float | None:
        return _mean([v for v in (get(t) for t in tasks.values()) if v is not None])

    def tok(variant: str) -> Callable[[TaskResult], Optional[float]]:
        return lambda t: t.variants[variant].acc_tok_mean if variant in t.variants else None

    return Summary(
        original_acc=macro(lambda t: t.acc(PAIR_A)),
        negated_acc=macro(lambda t: t.acc(PAIR_B)),
        mean=macro(lambda t: t.pairs.mean),
        both_correct=macro(lambda t: t.pairs.both_correct),
        flip_rate=macro(lambda t: t.pairs.flip_rate),
        instruction_free_agreement=macro(lambda t: t.pairs.instruction_free_agreement),
        original_acc_tok_mean=macro(tok(PAIR_A)),
        negated_acc_tok_mean=macro(tok(PAIR_B)),
        mean_tok_mean=macro(lambda t: t.tok_mean.mean),
        n_tasks=len(tasks),
    )
