"""QLoRA on the CPU: the 4-bit config, and two bitsandbytes (0.50) CPU problems kept out of training.

1. Repacking for inference. ``bitsandbytes.nn.Linear4bit.forward`` repacks a layer's 4-bit
   weight *in place* for a bf16 CPU kernel the first time it runs on the CPU in eval mode
   with an input that needs no gradient, on CPUs with AVX512-BF16. That is exactly what a
   reference model (``kl_anchor``: adapter off, eval, no_grad) and epoch-end evaluation do.
   The repack is permanent: every later call, training included, goes to ``gemv_4bit``, a
   kernel without a backward formula. OPT's biased layers then fail ("a view of a leaf
   Variable that requires grad is being used in an in-place operation"); Llama's train with
   silently wrong gradients. The packed kernel also computes in bf16, so the reference
   differs from the fp32 policy before any step (KL != 0 at step 0). Undoing the repack is
   lossy, so ``keep_training_layout`` prevents it: it clears the per-layer flag
   ``support_avx512bf16_for_cpu`` that the repack condition reads. Eval-mode forwards then
   take the same fp32 dequantise path as training (the reference equals the policy at step
   0, KL exactly 0 with a dropout-free model); the price is the faster bf16 inference kernel.

2. Dequantising rows that split a block. The CPU ``dequantize_4bit`` kernel returns wrong
   weights for layers whose input size is not a multiple of the 64-value quantisation block
   (measured: 16, 32, 48, 96, 160 wrong; 64, 128, 192, 256, 1024 exact). Multiples of 64 are
   right by construction (no block spans two rows); so ``cpu_block_problem`` lets the recipe
   check refuse any other size, naming the layer. Real checkpoints (OPT, Llama, SmolLM2) use
   multiples of 64; tiny test models often do not.

Everything imports torch/transformers/bitsandbytes lazily: the recipe check imports this module.
"""
from __future__ import annotations

from typing import Any, Optional

BLOCKSIZE = 64  # bitsandbytes' 4-bit block size (Params4bit default), what transformers quantises with


def quantization_config(compute_dtype: Any) -> Any:
    """The QLoRA paper's 4-bit setting: NF4, double quantisation, compute in ``compute_dtype``."""
    from transformers import BitsAndBytesConfig

    import_bitsandbytes()  # first, so that transformers' own import of it is quiet too
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=compute_dtype)


def import_bitsandbytes() -> Any:
    """Import bitsandbytes without its one foreign log line on this path.

    On AVX512-BF16 CPUs its CPU backend tries, at import, to fetch a faster *inference* kernel
    from the hub package ``kernels`` and logs "Failed to load CPU gemm_4bit_forward from
    kernels-community" when it is absent. That kernel serves only the repacked layout
    ``keep_training_layout`` turns off, so the line says nothing about a negtune run; other
    bitsandbytes messages stay visible.
    """
    import logging

    log = logging.getLogger("bitsandbytes.backends.cpu.ops")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        import bitsandbytes
    finally:
        log.setLevel(level)
    return bitsandbytes


def _linear4bit(model: Any) -> list:
    bnb = import_bitsandbytes()

    return [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]


def keep_training_layout(model: Any) -> int:
    """Stop bitsandbytes from repacking this model's 4-bit weights for CPU inference (point 1).

    Call right after loading, before any eval-mode forward; idempotent. Returns the number of
    4-bit layers. Raises if one was repacked already (that cannot be undone exactly).
    """
    layers = _linear4bit(model)
    for layer in layers:
        if getattr(getattr(layer.weight, "quant_state", None), "packing_format_for_cpu", False):
            raise RuntimeError("a 4-bit layer was already repacked for CPU inference; reload the model")
        layer.support_avx512bf16_for_cpu = False
    return len(layers)


def quantized_layers(config: Any) -> list[tuple[str, int]]:
    """``(name, in_features)`` of every layer transformers would load in 4 bit for ``config``.

    Uses transformers' own module selection (``get_modules_to_not_convert`` and
    ``replace_with_bnb_linear``) on a model built on the meta device: no weights, no memory.
    """
    bnb = import_bitsandbytes()
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.integrations import replace_with_bnb_linear
    from transformers.quantizers.auto import AutoHfQuantizer

    qconfig = quantization_config(torch.float32)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    skip = AutoHfQuantizer.from_config(qconfig).get_modules_to_not_convert(
        model, qconfig.llm_int8_skip_modules, getattr(model, "_keep_in_fp32_modules", None))
    model = replace_with_bnb_linear(model, modules_to_not_convert=skip, quantization_config=qconfig)

    return [(name, m.in_features) for name, m in model.named_modules() if isinstance(m, bnb.nn.Linear4bit)]


def cpu_block_problem(config: Any) -> Optional[str]:
    """Why QLoRA on the CPU would compute this model wrongly (point 2), or None."""
    for name, in_features in quantized_layers(config):
        if in_features % BLOCKSIZE:
            return (f"layer {name} has {in_features} input features, not a multiple of the 4-bit block size "
                    f"{BLOCKSIZE}; bitsandbytes' CPU kernel dequantises such layers wrongly")
    return None
