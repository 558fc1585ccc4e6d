"""Causal-LM scoring passes: log p(option | prompt) for a batch of items (``negtune.evaluation.scoring``
groups, orders and dispatches the work).

Three methods compute the same numbers (to float rounding, ~1e-6 in fp32):

* ``kv`` - a batch of prompts is run once, left-padded, with explicit ``position_ids``. The
  per-layer key/value tensors of its ``DynamicCache`` are kept; for each option pass the
  cache layers are rebuilt from an ``index_select`` of them (one row per option: the same
  thing ``Cache.reorder_cache(index)`` does, but non-destructive, so the option rows can be
  split into similar-length chunks that pad little). Option tokens are fed after the prompt,
  right-padded, with a 2-D attention mask over ``[prompt | option]`` and explicit positions.
  The first option token is scored from the prompt pass's last logit (computed alone via
  ``logits_to_keep=1``). With a ``SharedPrefix`` (a few-shot demonstration block that many
  items share), the prefix is run once for all of them and its cache expanded to each batch;
  only the rest of each prompt (left-padded after the prefix, pads masked out) is run per
  batch. Verified exact for OPT, GPT-2 and Llama (SmolLM2).
* ``batched`` - prompt+option sequences batched and right-padded, no cache reuse; used for
  architectures the ``kv`` path has not been verified on (sliding-window or hybrid caches).
* ``plain`` - one unpadded sequence at a time; the reference (and the benchmark baseline).

Log-softmax is always computed in fp32, whatever the model dtype.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

Scored = list[list[tuple[float, int]]]  # per group, per option: (loglik, n_tokens)


def device_of(model: Any) -> Any:
    import torch

    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def token_logprobs(logits: Any, targets: Any) -> Any:
    """log p(target) per position, computed in fp32: logit[target] - logsumexp(logits)."""
    logits = logits.float()
    picked = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return picked - logits.logsumexp(-1)


def length_chunks(rows: list[int], lengths: list[int], ratio: float = 0.75) -> list[list[int]]:
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


def regroup(batch: Sequence[Any], totals: list[float]) -> Scored:
    """Flat per-option totals (in batch order) back into (loglik, n_tokens) lists per group."""
    it = iter(totals)
    return [[(next(it), len(opt)) for _, opt in g.options] for g in batch]


@dataclass
class SharedPrefix:
    """Prompt tokens shared by a bucket of items, run once: its cache object and layer tensors."""

    ids: list[int]
    cache: Any
    saved: list[tuple[Any, Any]]

    @classmethod
    def run(cls, model: Any, ids: list[int], keep: bool) -> "SharedPrefix":
        """Run the prefix alone (its logits are not needed: with ``keep``, only the last is computed)."""
        import torch

        dev = device_of(model)
        t = torch.tensor([ids], device=dev)
        kwargs: dict[str, Any] = {"logits_to_keep": 1} if keep else {}
        positions = torch.arange(len(ids), device=dev)[None]
        out = model(input_ids=t, attention_mask=torch.ones_like(t), position_ids=positions, use_cache=True, **kwargs)
        cache = out.past_key_values
        return cls(list(ids), cache, [(layer.keys, layer.values) for layer in cache.layers])


def _prompt_pass(model: Any, batch: Sequence[Any], pad_id: int, keep: bool, prefix: Optional[SharedPrefix]):
    """Run the batch's prompts; return (last logits, cache, [G, P] prompt mask)."""
    import torch

    dev = device_of(model)
    P0 = len(prefix.ids) if prefix is not None else 0
    rests = [g.prompt[P0:] for g in batch]
    G, R = len(batch), max(len(r) for r in rests)
    ids = torch.full((G, R), pad_id, dtype=torch.long)
    rest_mask = torch.zeros((G, R), dtype=torch.long)
    for i, r in enumerate(rests):  # left padding: every prompt ends at the last column
        ids[i, R - len(r):] = torch.tensor(r)
        rest_mask[i, R - len(r):] = 1
    pos = P0 + (rest_mask.cumsum(-1) - 1).clamp(min=0)
    kwargs: dict[str, Any] = {"logits_to_keep": 1} if keep else {}
    if prefix is not None:
        for layer, (k_, v_) in zip(prefix.cache.layers, prefix.saved):
            layer.keys = k_.expand(G, -1, -1, -1)
            layer.values = v_.expand(G, -1, -1, -1)
        kwargs["past_key_values"] = prefix.cache
    mask = torch.cat([torch.ones((G, P0), dtype=torch.long), rest_mask], dim=-1)
    out = model(input_ids=ids.to(dev), attention_mask=mask.to(dev), position_ids=pos.to(dev), use_cache=True, **kwargs)
    return out.logits[:, -1, :], out.past_key_values, mask


def score_kv(model: Any, batch: Sequence[Any], pad_id: int, keep: bool,
             prefix: Optional[SharedPrefix] = None) -> Scored:
    import torch

    dev = device_of(model)
    last, cache, mask = _prompt_pass(model, batch, pad_id, keep, prefix)
    # The prompt's per-layer key/value tensors; every option pass starts from a selection of them.
    saved = [(layer.keys, layer.values) for layer in cache.layers]

    rows = [(i, opt) for i, g in enumerate(batch) for _, opt in g.options]
    lengths = [len(opt) for _, opt in rows]
    owner = torch.tensor([i for i, _ in rows], dtype=torch.long)
    first_tok = torch.tensor([opt[0] for _, opt in rows], dtype=torch.long)
    totals = token_logprobs(last[owner.to(dev)], first_tok.to(dev)).double().cpu()
    prompt_len = mask.sum(-1)
    for chunk in length_chunks([r for r in range(len(rows)) if lengths[r] > 1], lengths):
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
        lp = token_logprobs(out2.logits, tgt.to(dev)).double().cpu()
        totals[chunk] += (lp * m).sum(-1)
    return regroup(batch, [float(t) for t in totals])


def score_batched(model: Any, batch: Sequence[Any], pad_id: int) -> Scored:
    import torch

    dev = device_of(model)
    rows = [(g.prompt, opt) for g in batch for _, opt in g.options]
    L = max(len(p) + len(o) for p, o in rows)
    ids = torch.full((len(rows), L), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), L), dtype=torch.long)
    for r, (p, o) in enumerate(rows):
        ids[r, : len(p) + len(o)] = torch.tensor(p + o)
        mask[r, : len(p) + len(o)] = 1
    out = model(input_ids=ids.to(dev), attention_mask=mask.to(dev), use_cache=False)
    lp = token_logprobs(out.logits[:, :-1], ids[:, 1:].to(dev))  # lp[:, t] = log p(ids[t+1])
    totals = []
    for r, (p, o) in enumerate(rows):
        totals.append(float(lp[r, len(p) - 1: len(p) + len(o) - 1].double().sum()))
    return regroup(batch, totals)


def score_plain(model: Any, batch: Sequence[Any]) -> Scored:
    import torch

    dev = device_of(model)
    result = []
    for g in batch:
        scores = []
        for _, opt in g.options:
            ids = torch.tensor([g.prompt + opt], device=dev)
            logits = model(input_ids=ids, use_cache=False).logits
            lp = token_logprobs(logits[:, len(g.prompt) - 1: -1], ids[:, len(g.prompt):])
            scores.append((float(lp.double().sum()), len(opt)))
        result.append(scores)
    return result
