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
"""
from __future__ import annotations

from typing import Any, Sequence

from negtune.data.instances import Instance
from negtune.errors import UserError
from negtune.scoring import OptionScore, predictions

PAIR_A, PAIR_B, FREE = "original", "negated", "instruction_free"


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _pair_metrics(preds: dict[str, dict[str, int]], texts: dict[str, dict[str, str]],
                  correct: dict[str, dict[str, bool]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if PAIR_A in preds and PAIR_B in preds:
        keys = [k for k in preds[PAIR_A] if k in preds[PAIR_B]]
        out["n_pairs"] = len(keys)
        out["both_correct"] = _mean([float(correct[PAIR_A][k] and correct[PAIR_B][k]) for k in keys])
        out["flip_rate"] = _mean([float(texts[PAIR_A][k] != texts[PAIR_B][k]) for k in keys])
    else:
        out["n_pairs"] = 0
        out["both_correct"] = None
        out["flip_rate"] = None
    if PAIR_A in preds and FREE in preds:
        keys = [k for k in preds[PAIR_A] if k in preds[FREE]]
        out["instruction_free_agreement"] = _mean([float(texts[PAIR_A][k] == texts[FREE][k]) for k in keys])
    else:
        out["instruction_free_agreement"] = None
    return out


def compute_metrics(instances: Sequence[Instance], scores: Sequence[Sequence[OptionScore]]) -> dict[str, Any]:
    """Per-task and macro metrics (see the module docstring) as the results-JSON fragment
    ``{"tasks": {...}, "summary": {...}}``."""
    if len(instances) != len(scores):
        raise ValueError(f"{len(instances)} instances but {len(scores)} score lists")
    by_sum = predictions(scores)
    by_mean = predictions(scores, per_token_mean=True)
    tasks: dict[str, dict[str, Any]] = {}
    # task -> rule -> variant -> source_id -> value
    table: dict[str, dict[str, dict[str, dict[str, dict[str, Any]]]]] = {}
    for inst, opts, ps, pm in zip(instances, scores, by_sum, by_mean):
        if len(opts) != len(inst.options):
            raise ValueError(f"{inst.uid}: {len(inst.options)} options but {len(opts)} scores")
        per = table.setdefault(inst.task, {"sum": {}, "mean": {}})
        for rule, pred in (("sum", ps), ("mean", pm)):
            slot = per[rule].setdefault(inst.variant, {"pred": {}, "text": {}, "correct": {}, "chance": {}})
            if inst.source_id in slot["pred"]:
                raise UserError(f"{inst.task}: item {inst.source_id}: appears twice under variant {inst.variant}")
            slot["pred"][inst.source_id] = pred
            slot["text"][inst.source_id] = inst.options[pred]
            slot["correct"][inst.source_id] = pred in inst.gold
            slot["chance"][inst.source_id] = len(set(inst.gold)) / len(inst.options)

    for task, per in table.items():
        entry: dict[str, Any] = {}
        for variant, slot in per["sum"].items():
            tok = per["mean"][variant]
            n = len(slot["pred"])
            entry[variant] = {
                "acc": sum(slot["correct"].values()) / n,
                "acc_tok_mean": sum(tok["correct"].values()) / n,
                "chance": sum(slot["chance"].values()) / n,
                "n": n,
            }
        for rule, prefix in (("sum", ""), ("mean", "tok_mean")):
            variants = per[rule]
            pm = _pair_metrics({v: s["pred"] for v, s in variants.items()},
                               {v: s["text"] for v, s in variants.items()},
                               {v: s["correct"] for v, s in variants.items()})
            key = "acc" if rule == "sum" else "acc_tok_mean"
            both = PAIR_A in entry and PAIR_B in entry
            pm["mean"] = (entry[PAIR_A][key] + entry[PAIR_B][key]) / 2 if both else None
            if prefix:
                pm.pop("n_pairs")
                entry[prefix] = pm
            else:
                entry.update(pm)
        tasks[task] = entry
    return {"tasks": tasks, "summary": summarize(tasks)}


def summarize(tasks: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Macro averages over tasks (each task counts once, whatever its size)."""

    def macro(get: Any) -> float | None:
        vals = []
        for t in tasks.values():
            try:
                v = get(t)
            except (KeyError, TypeError):
                continue
            if v is not None:
                vals.append(v)
        return _mean(vals)

    return {
        "original_acc": macro(lambda t: t[PAIR_A]["acc"]),
        "negated_acc": macro(lambda t: t[PAIR_B]["acc"]),
        "mean": macro(lambda t: t["mean"]),
        "both_correct": macro(lambda t: t["both_correct"]),
        "flip_rate": macro(lambda t: t["flip_rate"]),
        "instruction_free_agreement": macro(lambda t: t["instruction_free_agreement"]),
        "original_acc_tok_mean": macro(lambda t: t[PAIR_A]["acc_tok_mean"]),
        "negated_acc_tok_mean": macro(lambda t: t[PAIR_B]["acc_tok_mean"]),
        "mean_tok_mean": macro(lambda t: t["tok_mean"]["mean"]),
        "n_tasks": len(tasks),
    }
