"""Rank-classification scoring: log p(option | prompt) for every option of every instance.

Why this design: an item's options all share one prompt (``negtune.evaluation.prompting``
makes the prompt ids independent of the option), so the prompt is run once and its
key/value cache is reused for each option; items that share a few-shot demonstration block
(``eval.fewshot.sampling: fixed``) share that prefix too, and it is run once for all of
them. Work is sorted by length (longest first, as lm-evaluation-harness does) so batches
pad little, and results come back in input order.

The passes live in ``negtune.evaluation.causal`` (``kv``, ``batched``, ``plain``) and
``negtune.evaluation.seq2seq`` (encoder-decoder models: ``seq2seq``, ``plain``); all methods
of a model type compute the same numbers to float rounding (~1e-6 in fp32).

Across processes (``shard=(rank, world)``) each process scores the items the token-balanced
assignment (``shard_items``) gives it; the caller gathers (``negtune.evaluation.distributed``).
"""
from __future__ import annotations

import inspect
import sys
from dataclasses import dataclass
from typing import Any, Hashable, Iterable, Optional, Sequence

from negtune.data.instances import Instance
from negtune.errors import UserError
from negtune.evaluation.causal import SharedPrefix, score_batched, score_kv, score_plain
from negtune.evaluation.prompting import EncodedItem, PromptFormat, encode_items
from negtune.evaluation.seq2seq import is_seq2seq, score_encoder_decoder, score_encoder_decoder_plain
from negtune.tokenization import effective_max_length

METHODS = ("auto", "kv", "batched", "plain")
# Architectures whose KV-cache path was checked against the plain path (tests/evaluation/test_scoring.py).
KV_VERIFIED = frozenset({"opt", "gpt2", "llama"})


@dataclass(frozen=True)
class OptionScore:
    loglik: float  # sum over the option's tokens of log p(token | prompt, previous option tokens)
    n_tokens: int
    truncated: bool = False  # the item's own prompt lost tokens from the left to fit the max length
    n_demos: int = 0  # few-shot demonstrations in the context (fewer than given when they did not fit)

    @property
    def mean(self) -> float:
        return self.loglik / self.n_tokens


@dataclass
class _Group:
    """One instance's options that share the same (possibly truncated) prompt."""

    item: int
    prompt: list[int]
    options: list[tuple[int, list[int]]]  # (option index, option ids)
    truncated: bool = False
    n_demos: int = 0
    bucket: Optional[Hashable] = None  # items with the same demonstrations (a shared prefix)

    @property
    def length(self) -> int:
        return len(self.prompt) + max(len(o) for _, o in self.options)


# --------------------------------------------------------------------------- helpers


def encode_instances(tokenizer: Any, instances: Sequence[Instance], tokenization: str = "joint",
                     max_length: int | None = None) -> list[list[tuple[list[int], list[int], bool]]]:
    """Per instance, per option: (prompt_ids, option_ids, truncated) after left truncation."""
    encoded = encode_items(tokenizer, instances, tokenization, max_length)
    return [[(p, o, e.truncated) for p, o in e.pairs] for e in encoded]


def _groups(encoded: Sequence[EncodedItem], instances: Sequence[Instance]) -> list[_Group]:
    groups = []
    for item, (enc, inst) in enumerate(zip(encoded, instances)):
        ids = inst.meta.get("demo_ids") or []
        bucket = (inst.task, inst.variant, tuple(ids[len(ids) - enc.n_demos:])) if enc.n_demos else None
        by_prompt: dict[tuple[int, ...], _Group] = {}
        for j, (prompt_ids, option_ids) in enumerate(enc.pairs):
            key = tuple(prompt_ids)
            if key not in by_prompt:
                by_prompt[key] = _Group(item, list(prompt_ids), [], enc.truncated, enc.n_demos, bucket)
                groups.append(by_prompt[key])
            by_prompt[key].options.append((j, list(option_ids)))
    return groups


def _longest_first(groups: list[_Group]) -> list[_Group]:
    """Longest first (an out-of-memory shows up at once, batches pad little); stable on ties."""
    order = sorted(range(len(groups)), key=lambda i: (-groups[i].length, i))
    return [groups[i] for i in order]


def _buckets(groups: list[_Group]) -> list[list[_Group]]:
    """Groups sharing demonstrations together (each bucket longest first); the rest in one."""
    buckets: dict[Hashable, list[_Group]] = {}
    for g in groups:
        buckets.setdefault(g.bucket, []).append(g)
    return [_longest_first(b) for b in buckets.values()]


def shared_prefix_length(groups: Sequence[_Group]) -> int:
    """Tokens every prompt of ``groups`` starts with, leaving each prompt at least one token."""
    if len(groups) < 2:
        return 0
    first = groups[0].prompt
    n = min(len(g.prompt) for g in groups) - 1
    for g in groups[1:]:
        i = 0
        while i < n and g.prompt[i] == first[i]:
            i += 1
        n = i
    return max(n, 0)


def _batches(groups: list[_Group], batch_size: int) -> Iterable[list[_Group]]:
    """Consecutive groups holding at most ``batch_size`` options (at least one group)."""
    batch: list[_Group] = []
    count = 0
    for g in groups:
        if batch and count + len(g.options) > batch_size:
            yield batch
            batch, count = [], 0
        batch.append(g)
        count += len(g.options)
    if batch:
        yield batch


def _model_type(model: Any) -> str:
    return str(getattr(getattr(model, "config", None), "model_type", "") or "")


def _accepts(model: Any, name: str) -> bool:
    inner = model
    if hasattr(inner, "get_base_model"):
        inner = inner.get_base_model()
    try:
        return name in inspect.signature(inner.forward).parameters
    except (TypeError, ValueError):
        return False


def resolve_method(model: Any, method: str = "auto") -> str:
    if method not in METHODS:
        raise UserError(f"scoring method {method!r}: use one of {', '.join(METHODS)}")
    if is_seq2seq(model):
        if method in ("kv", "batched"):
            raise UserError(f"scoring method {method}: not for encoder-decoder models (use auto or plain)")
        return "plain" if method == "plain" else "seq2seq"
    if method != "auto":
        return method
    return "kv" if _model_type(model) in KV_VERIFIED else "batched"


def item_costs(encoded: Sequence[EncodedItem]) -> list[int]:
    """Tokens an item costs to score: its prompt plus every option."""
    return [len(e.pairs[0][0]) + sum(len(o) for _, o in e.pairs) for e in encoded]


def shard_items(costs: Sequence[int], world: int) -> list[int]:
    """The process each item goes to: greedy by cost (largest first, to the least-loaded
    process; ties to the lower index), so processes get about the same number of tokens."""
    load = [0] * world
    owner = [0] * len(costs)
    for i in sorted(range(len(costs)), key=lambda i: (-costs[i], i)):
        r = min(range(world), key=lambda r: (load[r], r))
        owner[i] = r
        load[r] += costs[i]
    return owner


# --------------------------------------------------------------------------- public


def _progress(total: int, enabled: bool, desc: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="opt", file=sys.stderr, leave=False,
                disable=not (enabled and sys.stderr.isatty()))


def score_instances(model: Any, tokenizer: Any, instances: Sequence[Instance], batch_size: int = 16,
                    tokenization: str = "joint", progress: bool = True, method: str = "auto",
                    max_length: int | None = None, desc: str = "scoring", fmt: Optional[PromptFormat] = None,
                    shard: Optional[tuple[int, int]] = None,
                    share_prefix: bool = True) -> list[list[OptionScore]]:
    """Log-likelihood of every option of every instance, in input order.

    ``batch_size`` is the number of (prompt, option) sequences per forward pass; the result
    does not depend on it (beyond float rounding). Sequences are cut at
    ``min(max_length, the model's limit)`` (``negtune.tokenization.effective_max_length``):
    demonstrations are dropped first, then the prompt is trimmed from the left (the option is
    never cut); scores say ``truncated`` and ``n_demos``. ``fmt``: chat template / system
    prompt. ``shard=(rank, world)``: score only this process's items (the others' entries are
    None). ``share_prefix=False`` runs a shared demonstration prefix per batch (benchmarks).
    """
    import torch

    if batch_size < 1:
        raise UserError(f"batch size {batch_size}: must be >= 1")
    method = resolve_method(model, method)
    seq2seq = is_seq2seq(model)
    encoded = encode_items(tokenizer, instances, tokenization, effective_max_length(model, tokenizer, max_length),
                           fmt, seq2seq)
    groups = _groups(encoded, instances)
    if shard is not None:
        owner = shard_items(item_costs(encoded), shard[1])
        groups = [g for g in groups if owner[g.item] == shard[0]]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if pad_id is None:
        pad_id = 0
    keep = _accepts(model, "logits_to_keep")
    results: list[list[OptionScore | None]] = [[None] * len(inst.options) for inst in instances]
    was_training = getattr(model, "training", False)
    model.eval()
    bar = _progress(sum(len(g.options) for g in groups), progress, desc)
    try:
        with torch.inference_mode():
            for bucket in _buckets(groups) if method == "kv" else [_longest_first(groups)]:
                if not bucket:
                    continue
                prefix = None
                n_shared = shared_prefix_length(bucket) if bucket[0].bucket is not None and share_prefix else 0
                if n_shared:
                    prefix = SharedPrefix.run(model, bucket[0].prompt[:n_shared], keep)
                for batch in _batches(bucket, batch_size):
                    if method == "kv":
                        scored = score_kv(model, batch, pad_id, keep, prefix)
                    elif method == "batched":
                        scored = score_batched(model, batch, pad_id)
                    elif method == "seq2seq":
                        scored = score_encoder_decoder(model, batch, pad_id)
                    elif seq2seq:
                        scored = score_encoder_decoder_plain(model, batch)
                    else:
                        scored = score_plain(model, batch)
                    for g, scores in zip(batch, scored):
                        for (j, _), (ll, n) in zip(g.options, scores):
                            results[g.item][j] = OptionScore(ll, n, g.truncated, g.n_demos)
                    bar.update(sum(len(g.options) for g in batch))
    finally:
        bar.close()
        if was_training:
            model.train()
    return results  # type: ignore[return-value]


def predictions(scores: Sequence[Sequence[OptionScore]], per_token_mean: bool = False) -> list[int]:
    """Argmax option per instance (ties: the lowest index) by sum or by per-token mean."""
    preds = []
    for opts in scores:
        values = [s.mean if per_token_mean else s.loglik for s in opts]
        preds.append(max(range(len(values)), key=lambda j: (values[j], -j)))
    return preds
