"""The frozen base model's logits, for losses that declare ``reference_model``.

Why apart from the loop: it is the one thing the trainer builds for a particular kind of
loss, and how depends on the model. Full fine-tuning keeps a frozen copy of the initial
weights; LoRA and QLoRA reuse the trained model with its adapter disabled (no second copy in
memory). The loss receives the function as ``LossContext.reference_logits``.
"""
from __future__ import annotations

import copy
from typing import Any, Callable, Optional


def frozen_copy(model: Any, device: Any) -> Any:
    """A frozen copy of ``model``'s initial weights on ``device`` (full fine-tuning only; the
    copy is not prepared by accelerate, so DDP does not wrap it)."""
    ref = copy.deepcopy(model).eval().to(device)
    ref.requires_grad_(False)
    return ref


def reference_logits(ref_model: Optional[Any], base: Any) -> Callable[[Any, Any], Any]:
    """``(input_ids, attention_mask) -> logits`` of the frozen base, under ``torch.no_grad()``.

    ``ref_model``: the frozen copy (full fine-tuning), or None to use ``base`` (the unwrapped
    PEFT model) with its adapter disabled, restoring its train/eval mode afterwards."""
    import torch

    if ref_model is not None:
        ref = ref_model

        def frozen(input_ids: Any, attention_mask: Any) -> Any:
            with torch.no_grad():
                return ref(input_ids=input_ids, attention_mask=attention_mask).logits.float()
        return frozen

    def adapter_off(input_ids: Any, attention_mask: Any) -> Any:  # LoRA: the same model, adapter off
        was_training = base.training
        base.eval()
        try:
            with torch.no_grad(), base.disable_adapter():
                return base(input_ids=input_ids, attention_mask=attention_mask).logits.float()
        finally:
            base.train(was_training)
    return adapter_off
