import pytest

from negtune.errors import UserError
from negtune.models import load_for_eval, resolve_model_path


def test_load_tiny_opt(tiny_opt_dir):
    model, tok = load_for_eval(str(tiny_opt_dir))
    assert tok.pad_token_id is not None and tok.padding_side == "right"
    assert not model.training


@pytest.mark.parametrize("name", ["./no/such/dir", "/abs/missing", "a/b/c"])
def test_missing_local_path_is_one_line_error(name):
    with pytest.raises(UserError, match="no such directory"):
        resolve_model_path(name)


def test_hub_id_offline_is_explained(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError, match="offline"):
        load_for_eval("facebook/opt-125m-does-not-exist")


@pytest.mark.parametrize("var", ["HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"])
def test_one_offline_rule_for_models_and_data(monkeypatch, var):
    """Models and data sets read the same variables (they used to disagree)."""
    from negtune.hub import OFFLINE_VARIABLES, hub_offline

    for v in OFFLINE_VARIABLES:
        monkeypatch.delenv(v, raising=False)
    assert not hub_offline()
    monkeypatch.setenv(var, "1")
    assert hub_offline()
    with pytest.raises(UserError, match="offline mode is on"):
        load_for_eval("facebook/opt-125m-does-not-exist")


def test_stale_gguf_quantization_config_loads_as_the_plain_model(tiny_opt_dir, tmp_path):
    """A directory whose config.json names a GGUF quantization (negtune's SmolLM2 cache before
    conversion version 2) holds plain weights: it loads unquantized, so it can be saved."""
    import json
    import shutil

    import torch

    from negtune.models import load_causal_lm, stale_gguf_quantization

    stale = tmp_path / "stale"
    shutil.copytree(tiny_opt_dir, stale)
    config = json.loads((stale / "config.json").read_text())
    config["quantization_config"] = {"quant_method": "gguf", "gguf_file": "model.gguf", "dequantize": False}
    (stale / "config.json").write_text(json.dumps(config))
    assert stale_gguf_quantization(stale) and not stale_gguf_quantization(tiny_opt_dir)
    model = load_causal_lm(str(stale))
    assert not getattr(model, "is_quantized", False)
    assert getattr(model.config, "quantization_config", None) is None
    reference = load_causal_lm(str(tiny_opt_dir))
    ids = torch.tensor([[2, 10, 20, 30]])
    with torch.no_grad():
        assert torch.equal(model(ids).logits, reference(ids).logits)
    model.save_pretrained(tmp_path / "resaved")  # a GGUF-quantized model refuses this
    assert "quantization_config" not in json.loads((tmp_path / "resaved" / "config.json").read_text())
