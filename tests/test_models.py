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
