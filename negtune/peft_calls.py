"""Calling peft without its side effects on a plain (not 4-bit) model.

Why: two things peft does print foreign lines on every LoRA run and every adapter evaluation,
though nothing is wrong and the user can do nothing about them:

* peft imports bitsandbytes whenever it is installed (``peft/helpers.py`` at import, the
  8/4-bit layer dispatch while wrapping), and bitsandbytes' CPU backend then logs
  ``Failed to load CPU gemm_4bit_forward from kernels-community: No module named
  'kernels'`` and loads its native library. Only QLoRA needs it.
* ``PeftModel.__init__`` reads ``model.is_gradient_checkpointing``, which transformers 5
  deprecated (``FutureWarning``) in favour of ``is_activation_checkpointing``.

``peft_calls(quantized)`` runs peft code with bitsandbytes hidden unless the model is
quantized, and ignores exactly that one deprecation message (raised inside peft); every
other warning, peft's configuration warnings among them, stays visible.

Hiding: ``sys.modules["bitsandbytes"] = None`` makes ``import bitsandbytes`` raise
ImportError (peft catches it) and ``importlib.util.find_spec`` return None (peft's
``is_bnb_available``). peft caches those checks (``lru_cache``): they are reset on entry and
on exit, so a QLoRA model wrapped later in the same process still finds bitsandbytes.
"""
from __future__ import annotations

import contextlib
import sys
import warnings
from typing import Iterator

BNB = "bitsandbytes"
_PEFT_BNB_CHECKS = ("is_bnb_available", "is_bnb_4bit_available")
# peft.PeftModel.__init__ -> transformers PreTrainedModel.is_gradient_checkpointing (v5 alias)
_PEFT_DEPRECATION = r"`is_gradient_checkpointing` is deprecated"


def _reset_peft_bnb_checks() -> None:
    utils = sys.modules.get("peft.import_utils")
    for name in _PEFT_BNB_CHECKS:
        check = getattr(utils, name, None)
        if hasattr(check, "cache_clear"):
            check.cache_clear()


@contextlib.contextmanager
def peft_calls(quantized: bool = False) -> Iterator[None]:
    """Context for importing peft and wrapping / loading adapters (see the module docstring).

    ``quantized``: the model is (or will be) a bitsandbytes 4-bit model (QLoRA): then
    bitsandbytes is left visible. It is also left alone once something imported it.
    """
    hide = not quantized and BNB not in sys.modules
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_PEFT_DEPRECATION, category=FutureWarning)
        if not hide:
            yield
            return
        sys.modules[BNB] = None  # type: ignore[assignment]
        _reset_peft_bnb_checks()
        try:
            yield
        finally:
            if BNB in sys.modules and sys.modules[BNB] is None:
                del sys.modules[BNB]
            _reset_peft_bnb_checks()
