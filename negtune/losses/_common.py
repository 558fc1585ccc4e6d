"""Small tensor helpers shared by the built-in losses (torch imported lazily by callers)."""
from __future__ import annotations

from typing import Any

from negtune.tokenization import IGNORE_INDEX


def logits_of(model: Any, input_ids: Any, attention_mask: Any) -> Any:
    """The model's logits for a batch, as float32 (losses are computed in full precision)."""
    return model(input_ids=input_ids, attention_mask=attention_mask).logits.float()


def shift(logits: Any, labels: Any) -> tuple[Any, Any, Any]:
    """Align next-token predictions with their labels.

    Returns ``(logits[:, :-1], targets, mask)`` where ``targets`` is ``labels[:, 1:]`` with
    ``-100`` replaced by 0 (safe for gather) and ``mask`` marks the real target positions.
    """
    labels = labels[:, 1:]
    mask = labels != IGNORE_INDEX
    return logits[:, :-1], labels.clamp(min=0), mask


def token_logprobs(logits: Any, labels: Any) -> tuple[Any, Any]:
    """Per-position ``log p(label_t | <t)`` [B, L-1] and the float target mask [B, L-1]."""
    import torch

    logits, targets, mask = shift(logits, labels)
    logp = torch.log_softmax(logits, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return logp, mask.to(logp.dtype)


def sequence_logprobs(model: Any, input_ids: Any, attention_mask: Any, labels: Any) -> tuple[Any, Any]:
    """Forward and return (token log-probs, mask) for the labelled tokens."""
    return token_logprobs(logits_of(model, input_ids, attention_mask), labels)


def need(batch: dict, keys: tuple[str, ...], loss: str, what: str) -> None:
    missing = [k for k in keys if k not in batch]
    if missing:
        raise KeyError(f"loss {loss}: batch lacks {missing}; the loss must declare needs {what!r} "
                       "so that the collator provides them")
