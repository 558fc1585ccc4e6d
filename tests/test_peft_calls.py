"""negtune.peft_calls: bitsandbytes only for QLoRA, one known deprecation dropped, every other
warning kept."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import pytest

from negtune.peft_calls import peft_calls


def test_only_the_known_peft_deprecation_is_dropped():
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with peft_calls():
            warnings.warn("`is_gradient_checkpointing` is deprecated and will be removed in v6.", FutureWarning)
            warnings.warn("`other_thing` is deprecated", FutureWarning)
            warnings.warn("target module x not found; check lora.target_modules", UserWarning)
        warnings.warn("`is_gradient_checkpointing` is deprecated and will be removed in v6.", FutureWarning)
    assert [str(w.message) for w in seen] == [
        "`other_thing` is deprecated", "target module x not found; check lora.target_modules",
        "`is_gradient_checkpointing` is deprecated and will be removed in v6."]  # outside: untouched


def test_bitsandbytes_is_hidden_inside_and_restored_after():
    import importlib.util

    if importlib.util.find_spec("bitsandbytes") is None or "bitsandbytes" in sys.modules:
        pytest.skip("needs bitsandbytes installed and not yet imported in this process")
    with peft_calls():
        assert importlib.util.find_spec("bitsandbytes") is None
        with pytest.raises(ImportError):
            import bitsandbytes  # noqa: F401
    assert importlib.util.find_spec("bitsandbytes") is not None and "bitsandbytes" not in sys.modules
    with peft_calls(quantized=True):
        assert importlib.util.find_spec("bitsandbytes") is not None


SCRIPT = """
import json, sys
from negtune.config import recipe_from_dict
from negtune.models import load_for_training
out = {}
lora = recipe_from_dict({"model": {"name_or_path": sys.argv[1], "peft": "lora", "gradient_checkpointing": True}})
model = load_for_training(lora.model, "opt")
out["lora_bnb_imported"] = "bitsandbytes" in sys.modules
out["lora_trainable"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
qlora = recipe_from_dict({"model": {"name_or_path": sys.argv[1], "peft": "qlora"}})
model = load_for_training(qlora.model, "opt")  # the same process, after a LoRA model
out["qlora_layers"] = sorted({type(m).__module__ + "." + type(m).__name__ for m in model.modules()
                              if "lora" in type(m).__module__ and hasattr(m, "base_layer")})
print(json.dumps(out))
"""


@pytest.mark.slow  # a fresh interpreter loading peft and bitsandbytes
def test_lora_without_bitsandbytes_then_qlora_in_the_same_process(tiny_opt_dir):
    import importlib.util

    if importlib.util.find_spec("bitsandbytes") is None:
        pytest.skip("bitsandbytes is not installed")
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tiny_opt_dir)], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["lora_bnb_imported"] is False and out["lora_trainable"] > 0
    assert out["qlora_layers"] and all(name.endswith(".bnb.Linear4bit") for name in out["qlora_layers"])
    assert "is_gradient_checkpointing" not in proc.stderr and "gradient_checkpointing_enable" not in proc.stderr
