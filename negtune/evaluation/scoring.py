"""Rank-classification scoring: log p(option | prompt) for every option of every instance.

Why this design: an item's options all share one prompt (``negtune.tokenization`` makes the
prompt ids independent of the option), so the prompt is run once and its key/value cache is
reused for each option. Work is sorted by length (longest first, as lm-evaluation-harness
does) so batches pad little, and results come back in input order.

Three methods compute the same numbers (to float rounding, ~1e-6 in fp32):

* ``kv`` - a batch of prompts is run once, left-padded, with explicit ``position_ids``. The
  per-layer key/value tensors of its ``DynamicCache`` are kept; for each option pass the
  cache layers are rebuilt from an ``index_select`` of them (one row per option: the same
  thing ``Cache.reorder_cache(index)`` does, but non-destructive, so the option rows can be
  split into similar-length chunks that pad little). Option tokens are fed after the prompt,
  right-padded, with a 2-D attention mask over ``[prompt | option]`` and explicit positions.
  The first option token is scored from the prompt pass's last logit (computed alone via
  ``logits_to_keep=1``). Verified exact for OPT, GPT-2 and Llama (SmolLM2).
* ``batched`` - prompt+option sequences batched and right-padded, no cache reuse; used for
  architectures the ``kv`` path has not been verified on (sliding-window or hybrid caches).
* ``plain`` - one unpadded sequence at a time; the reference (and the benchmark baseline).

Log-softmax is always computed in fp32, whatever the model dtype.
"""
from __future__ import annotations

import inspect
import sys
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from negtune.data.instances import Instance
from negtune.errors import UserError
from negtune.tokenization import effective_max_length, encode_pair, truncate_left

METHODS = ("auto", "kv", "batched", "plain")
# Architectures whose KV-cache path was checked against the plain path (tests/evaluation/test_scoring.py).
KV_VERIFIED = frozenset({"opt", "gpt2", "llama"})


@dataclass(frozen=True)
class OptionScore:
    loglik: float  # sum over the option's tokens of log p(token | prompt, previous option tokens)
    n_tokens: int
    truncated: bool = False  # the prompt lost tokens from the left to fit the max length

    @property
    def mean(self) -> float:
        return self.loglik / self.n_tokens


@dataclass
class _Group:
    """One instance's options that share the same (possibly truncated) prompt."""

    item: int
    prompt: list[int]
    options: list[tuple[int, list[int]]]  # (option index, option ids)
    truncated: bool = False  # the prompt lost tokens from the left to fit the max length

    @property
    def length(self) -> int:
        return len(self.prompt) + max(len(o) for _, o in self.options)


# --------------------------------------------------------------------------- helpers


def encode_instances(tokenizer: Any, instances: Sequence[Instance], tokenization: str = "joint",
                     max_length: int | None = None) -> list[list[tuple[list[int], list[int], bool]]]:
    """Per instance, per option: (prompt_ids, option_ids, truncated) after left truncation."""
    bos = getattr(tokenizer, "bos_token_id", None)
    out = []
    for inst in instances:
        pairs = []
        for option in inst.options:
            full, option_ids = encode_pair(tokenizer, inst.prompt, option, tokenization)
            prompt_ids = truncate_left(full, option_ids, max_length, bos)
            if not prompt_ids:
                raise UserError(
                    f"{inst.task}: item {inst.source_id}: prompt encodes to no tokens; "
                    "nothing to condition the option on"
                )
            pairs.append((prompt_ids, option_ids, len(prompt_ids) < len(full)))
        out.append(pairs)
    return out


def _groups(encoded: list[list[tuple[list[int], list[int], bool]]]) -> list[_Group]:
    groups = []
    for item, pairs in enumerate(encoded):
        by_prompt: dict[tuple[int, ...], _Group] = {}
        for j, (prompt_ids, option_ids, truncated) in enumerate(pairs):
            key = tuple(prompt_ids)
            if key not in by_prompt:
                by_prompt[key] = _Group(item, list(prompt_ids), [], truncated)
                groups.append(by_prompt[key])
            by_prompt[key].options.append((j, list(option_ids)))
    # Longest first (an out-of-memory shows up at once, batches pad little); stable on ties.
    order = sorted(range(len(groups)), key=lambda i: (-groups[i].length, i))
    return [groups[i] for i in order]


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


def _device(model: Any) -> Any:
    import torch

    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def resolve_method(model: Any, method: str = "auto") -> str:
    if method not in METHODS:
        raise UserError(f"scoring method {method!r}: use one of {', '.join(METHODS)}")
    if method != "auto":
        return method
    return "kv" if _model_type(model) in KV_VERIFIED else "batched"


def _token_logprobs(logits: Any, targets: Any) -> Any:
    """log p(target) per position, computed in fp32: logit[target] - logsumexp(logits)."""
    logits = logits.float()
    picked = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return picked - logits.logsumexp(-1)


# --------------------------------------------------------------------------- methods


def _length_chunks(rows: list[int], lengths: list[int], ratio: float = 0.75) -> list[list[int]]:
    """Split rows (sorted longest first) wherever a row is shorter than ``ratio`` x the chunk's
    longest: each option pass then pads little (option lengths vary a lot, e.g. HellaSwag)."""
    order = sorted(rows, key=lambda r: (-lengths[r], r))
    chunks: list[list[int]] = []
    for r in order:
        if chunks and lengths[r] >= ratio * lengths[chunks[-1][0]]:
            chunks[-1].append(r)
        else:
            chunks.append([r])
    return chunks


def _score_kv(model: Any, batch: list[_Group], pad_id: int, keep: bool) -> list[list[tuple[float, int]]]:
    import torch

    dev = _device(model)
    G = len(batch)
    P = max(len(g.prompt) for g in batch)
    ids = torch.full((G, P), pad_id, dtype=torch.long)
    mask = torch.zeros((G, P), dtype=torch.long)
    for i, g in enumerate(batch):  # left padding: every prompt ends at column P-1
        ids[i, P - len(g.prompt):] = torch.tensor(g.prompt)
        mask[i, P - len(g.prompt):] = 1
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    kwargs: dict[str, Any] = {"logits_to_keep": 1} if keep else {}
    out = model(input_ids=ids.to(dev), attention_mask=mask.to(dev), position_ids=pos.to(dev),
                use_cache=True, **kwargs)
    last = out.logits[:, -1, :]  # predicts each option's first token
    cache = out.past_key_values
    # The prompt's per-layer key/value tensors; every option pass starts from a selection of them.
    saved = [(layer.keys, layer.values) for layer in cache.layers]

    rows = [(i, opt) for i, g in enumerate(batch) for _, opt in g.options]
    lengths = [len(opt) for _, opt in rows]
    owner = torch.tensor([i for i, _ in rows], dtype=torch.long)
    first_tok = torch.tensor([opt[0] for _, opt in rows], dtype=torch.long)
    totals = _token_logprobs(last[owner.to(dev)], first_tok.to(dev)).double().cpu()
    prompt_len = mask.sum(-1)
    for chunk in _length_chunks([r for r in range(len(rows)) if lengths[r] > 1], lengths):
        O = lengths[chunk[0]] - 1  # tokens fed: all but each option's last
        n = len(chunk)
        inp = torch.full((n, O), pad_id, dtype=torch.long)
        tgt = torch.zeros((n, O), dtype=torch.long)
        m = torch.zeros((n, O), dtype=torch.long)
        for k, r in enumerate(chunk):
            opt = rows[r][1]
            inp[k, : len(opt) - 1] = torch.tensor(opt[:-1])
            tgt[k, : len(opt) - 1] = torch.tensor(opt[1:])
            m[k, : len(opt) - 1] = 1
        idx = owner[chunk]
        opt_pos = prompt_len[idx].unsqueeze(-1) + torch.arange(O).unsqueeze(0)
        opt_pos = torch.where(m.bool(), opt_pos, torch.zeros_like(opt_pos))  # pads stay in range
        idx_dev = idx.to(dev)
        for layer, (k_, v_) in zip(cache.layers, saved):
            layer.keys = k_.index_select(0, idx_dev)
            layer.values = v_.index_select(0, idx_dev)
        out2 = model(input_ids=inp.to(dev), attention_mask=torch.cat([mask[idx], m], dim=-1).to(dev),
                     position_ids=opt_pos.to(dev), past_key_values=cache, use_cache=True)
        lp = _token_logprobs(out2.logits, tgt.to(dev)).double().cpu()
        totals[chunk] += (lp * m).sum(-1)
    return _regroup(batch, [float(t) for t in totals])


def _score_batched(model: Any, batch: list[_Group], pad_id: int) -> list[list[tuple[float, int]]]:
    import torch

    dev = _device(model)
    rows = [(g.prompt, opt) for g in batch for _, opt in g.options]
    L = max(len(p) + len(o) for p, o in rows)
    ids = torch.full((len(rows), L), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), L), dtype=torch.long)
    for r, (p, o) in enumerate(rows):
        ids[r, : len(p) + len(o)] = torch.tensor(p + o)
        mask[r, : len(p) + len(o)] = 1
    out = model(input_ids=ids.to(dev), attention_mask=mask.to(dev), use_cache=False)
    lp = _token_logprobs(out.logits[:, :-1], ids[:, 1:].to(dev))  # lp[:, t] = log p(ids[t+1])
    totals = []
    for r, (p, o) in enumerate(rows):
        totals.append(float(lp[r, len(p) - 1: len(p) + len(o) - 1].double().sum()))
    return _regroup(batch, totals)


def _regroup(batch: list[_Group], totals: list[float]) -> list[list[tuple[float, int]]]:
    """Flat per-option totals (in batch order) back into (loglik, n_tokens) lists per item."""
    it = iter(totals)
    return [[(next(it), len(opt)) for _, opt in g.options] for g in batch]


def _score_plain(model: Any, batch: list[_Group]) -> list[list[tuple[float, int]]]:
    import torch

    dev = _device(model)
    result = []
    for g in batch:
        scores = []
        for _, opt in g.options:
            ids = torch.tensor([g.prompt + opt], device=dev)
            logits = model(input_ids=ids, use_cache=False).logits
            lp = _token_logprobs(logits[:, len(g.prompt) - 1: -1], ids[:, len(g.prompt):])
            scores.append((float(lp.double().sum()), len(opt)))
        result.append(scores)
    return result


# --------------------------------------------------------------------------- public


def _progress(total: int, enabled: bool, desc: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="opt", file=sys.stderr, leave=False,
                disable=not (enabled and sys.stderr.isatty()))


def score_instances(model: Any, tokenizer: Any, instances: Sequence[Instance], batch_size: int = 16,
                    tokenization: str = "joint", progress: bool = True, method: str = "auto",
                    max_length: int | None = None, desc: str = "scoring") -> list[list[OptionScore]]:
    """Log-likelihood of every option of every instance, in input order.

    ``batch_size`` is the number of (prompt, option) sequences per forward pass; the result
    does not depend on it (beyond float rounding). Sequences are cut at
    ``min(max_length, the model's limit)`` (``negtune.tokenization.effective_max_length``):
    longer prompts are trimmed from the left (the option is never cut) and their scores say
    ``truncated``.
    """
    import torch

    if batch_size < 1:
        raise UserError(f"batch size {batch_size}: must be >= 1")
    method = resolve_method(model, method)
    encoded = encode_instances(tokenizer, instances, tokenization, effective_max_length(model, tokenizer, max_length))
    groups = _groups(encoded)
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
            for batch in _batches(groups, batch_size):
                if method == "kv":
                    scored = _score_kv(model, batch, pad_id, keep)
                elif method == "batched":
                    scored = _score_batched(model, batch, pad_id)
                else:
                    scored = _score_plain(model, batch)
                for g, scores in zip(batch, scored):
                    for (j, _), (ll, n) in zip(g.options, scores):
                        results[g.item][j] = OptionScore(ll, n, g.truncated)
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
