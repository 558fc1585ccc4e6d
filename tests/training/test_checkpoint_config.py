"""Full fine-tuning checkpoints carry no quantization config their weights do not have."""
from __future__ import annotations

import json

import torch
from safetensors.torch import save_file

from negtune.training.checkpoint import drop_stale_quantization, save_checkpoint
from negtune.training.state import DataPosition, TrainerState

GGUF = {"dequantize": False, "gguf_file": "model.gguf", "quant_method": "gguf"}


def _state(kind: str) -> TrainerState:
    return TrainerState(step=1, epoch=1.0, kind=kind, base_model="base", data_position=DataPosition(1, 0),
                        total_steps=1, steps_per_epoch=1, global_batch=1, processes=1,
                        recipe_sha256="0" * 64, recipe_sha256_train="0" * 64, loss="ce")


def test_full_checkpoint_drops_an_inherited_quantization_config(tiny_opt_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_opt_dir)
    model.config.quantization_config = dict(GGUF)  # inherited from a base model's config.json
    path = save_checkpoint(tmp_path / "step-000001", model=model, state_dict=model.state_dict(), tokenizer=None,
                           optimizer_state={}, scheduler_state={}, rng_states=[], trainer_state=_state("full"))
    config = json.loads((path / "model" / "config.json").read_text())
    assert "quantization_config" not in config and config["model_type"] == "opt"
    reloaded = AutoModelForCausalLM.from_pretrained(path / "model")
    assert not getattr(reloaded, "is_quantized", False)


def test_quantized_weights_keep_their_config(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "opt", "quantization_config": {"quant_method": "bitsandbytes"}}))
    save_file({"w": torch.zeros(4, dtype=torch.uint8), "b": torch.zeros(2)}, str(tmp_path / "model.safetensors"))
    assert drop_stale_quantization(tmp_path) is False
    assert "quantization_config" in json.loads((tmp_path / "config.json").read_text())
    save_file({"w": torch.zeros(4, dtype=torch.bfloat16)}, str(tmp_path / "model.safetensors"))
    assert drop_stale_quantization(tmp_path) is True
    assert "quantization_config" not in json.loads((tmp_path / "config.json").read_text())
