"""Encoder-decoder (T5/T0-style) scoring: the prompt goes to the encoder, the option tokens
are the decoder's target.

Why its own passes: an encoder-decoder model has no prompt tokens in the decoder to cache;
what every option of an item shares is the encoder's output. So the encoder runs once per
item (a batch of items, right-padded), its last hidden states are ``index_select``-ed to one
row per option, and the decoder runs on the options (right-padded, similar lengths chunked
together) with ``decoder_input_ids`` = the option shifted right behind the model's
``decoder_start_token_id`` (what ``labels=`` does inside transformers). Padding after an
option cannot change its scores: the decoder is causal. ``plain`` runs
``model(input_ids=prompt, labels=option)`` per option: the reference.

Conventions (as lm-evaluation-harness's seq2seq path): encoder input with the tokenizer's
special tokens (T5 appends ``</s>``), option without (no EOS is scored); see
``negtune.evaluation.prompting``.
"""
from __future__ import annotations

from typing import Any, Sequence

from negtune.evaluation.causal import Scored, device_of, length_chunks, regroup, token_logprobs


def is_seq2seq(model: Any) -> bool:
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    return bool(getattr(getattr(inner, "config", None), "is_encoder_decoder", False))


def _decoder_inputs(model: Any, labels: Any) -> Any:
    """``labels`` shifted right behind ``decoder_start_token_id`` (-100 pads become pad ids)."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    if hasattr(inner, "prepare_decoder_input_ids_from_labels"):
        return inner.prepare_decoder_input_ids_from_labels(labels=labels)
    import torch

    cfg = inner.config
    start = cfg.decoder_start_token_id if cfg.decoder_start_token_id is not None else cfg.pad_token_id
    shifted = torch.full_like(labels, start)
    shifted[:, 1:] = labels[:, :-1]
    return shifted.masked_fill(shifted == -100, cfg.pad_token_id)


def score_encoder_decoder(model: Any, batch: Sequence[Any], pad_id: int) -> Scored:
    import torch
    from transformers.modeling_outputs import BaseModelOutput

    dev = device_of(model)
    G = len(batch)
    P = max(len(g.prompt) for g in batch)
    ids = torch.full((G, P), pad_id, dtype=torch.long)
    mask = torch.zeros((G, P), dtype=torch.long)
    for i, g in enumerate(batch):
        ids[i, : len(g.prompt)] = torch.tensor(g.prompt)
        mask[i, : len(g.prompt)] = 1
    encoder = model.get_encoder()
    hidden = encoder(input_ids=ids.to(dev), attention_mask=mask.to(dev)).last_hidden_state

    rows = [(i, opt) for i, g in enumerate(batch) for _, opt in g.options]
    lengths = [len(opt) for _, opt in rows]
    owner = torch.tensor([i for i, _ in rows], dtype=torch.long)
    totals = [0.0] * len(rows)
    for chunk in length_chunks(list(range(len(rows))), lengths):
        O = lengths[chunk[0]]
        labels = torch.full((len(chunk), O), -100, dtype=torch.long)
        for k, r in enumerate(chunk):
            labels[k, : lengths[r]] = torch.tensor(rows[r][1])
        idx = owner[chunk].to(dev)
        out = model(encoder_outputs=BaseModelOutput(last_hidden_state=hidden.index_select(0, idx)),
                    attention_mask=mask.to(dev).index_select(0, idx),
                    decoder_input_ids=_decoder_inputs(model, labels).to(dev), use_cache=False)
        valid = labels != -100
        lp = token_logprobs(out.logits, labels.clamp(min=0).to(dev)).double().cpu()
        sums = (lp * valid).sum(-1)
        for k, r in enumerate(chunk):
            totals[r] = float(sums[k])
    return regroup(batch, totals)


def score_encoder_decoder_plain(model: Any, batch: Sequence[Any]) -> Scored:
    """One ``model(input_ids=prompt, labels=option)`` per option, unpadded: the reference."""
    import torch

    dev = device_of(model)
    result = []
    for g in batch:
        scores = []
        for _, opt in g.options:
            labels = torch.tensor([opt], device=dev)
            logits = model(input_ids=torch.tensor([g.prompt], device=dev), labels=labels, use_cache=False).logits
            scores.append((float(token_logprobs(logits, labels).double().sum()), len(opt)))
        result.append(scores)
    return result
