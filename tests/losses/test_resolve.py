"""Recipe-time validation of the loss section, user losses via module:function."""
import math
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import pytest

from negtune.config import DataConfig
from negtune.errors import UserError
from negtune.losses import LossContext, check_data_compat, declare, list_losses, resolve_loss

SRC = "recipes/x.yaml"


def err(cfg):
    with pytest.raises(UserError) as e:
        resolve_loss(cfg, SRC)
    return str(e.value)


def test_builtins_listed_and_resolved():
    assert set(list_losses()) >= {"ce", "mixed", "unlikelihood", "kl_anchor", "rank_margin"}
    assert resolve_loss({"name": "kl_anchor"}).needs == {"paired", "reference_model"}
    assert resolve_loss({"name": "rank_margin", "margin": 2}).args == {"margin": 2.0}
    assert resolve_loss({"name": "unlikelihood", "alpha": "1e-1"}).args == {"alpha": 0.1}


@pytest.mark.slow
def test_resolving_builtins_does_not_import_torch():
    code = ("import sys; from negtune.losses import resolve_loss\n"
            "for n in ['ce','mixed','unlikelihood','kl_anchor','rank_margin']: resolve_loss({'name': n})\n"
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("cfg, message", [
    ({"name": "nope"}, "recipes/x.yaml: loss.name: unknown loss 'nope' (known: ce, kl_anchor, mixed"),
    ({"name": "no_such_module_xyz:fn"}, "loss.name: cannot import module 'no_such_module_xyz'"),
    ({"name": "tests.no_such_file:fn"}, "loss.name: cannot import module 'tests.no_such_file'"),
    ({"name": "tests.losses.user_loss_example:missing"}, "has no attribute 'missing'"),
    ({"name": "tests.losses.user_loss_example:bad_signature"}, "a loss must be fn(model, batch, ctx, **args)"),
    ({"name": "tests.losses.user_loss_example:NOT_CALLABLE"}, "is not callable"),
    ({"name": "tests/none.py:f"}, "file tests/none.py not found"),
    ({"name": ":f"}, "expected 'module.path:function'"),
    ({"name": "unlikelihood", "alfa": 1}, "recipes/x.yaml: loss.alfa: unknown argument of loss 'unlikelihood' (known: alpha)"),
    ({"name": "unlikelihood", "alpha": "much"}, "recipes/x.yaml: loss.alpha: expected a number, got 'much'"),
    ({"name": "unlikelihood", "alpha": -1}, "recipes/x.yaml: loss.alpha: must be >= 0, got -1"),
    ({"name": "rank_margin", "mode": "hinge"}, "loss.mode: expected one of 'softmax', 'margin', got 'hinge'"),
    ({"name": "rank_margin", "margin": 0}, "loss.margin: must be > 0"),
    ({"name": "rank_margin", "length_norm": "yes"}, "loss.length_norm: expected true or false"),
    ({"name": "tests.losses.user_loss_example:needs_k"}, "recipes/x.yaml: loss.k: required argument of loss"),
    ({"name": "tests.losses.user_loss_example:needs_k", "k": 1.5}, "loss.k: expected an integer, got 1.5"),
    ({"name": "tests.losses.user_loss_example:focal_ce", "gamma": -2}, "loss.gamma: must be >= 0"),
    ({}, "recipes/x.yaml: loss.name: required"),
])
def test_bad_loss_sections(cfg, message):
    assert message in err(cfg)


def test_broken_user_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "broken_syntax_loss.py").write_text("def f(model, batch, ctx:\n")
    (tmp_path / "missing_dep_loss.py").write_text("import not_installed_pkg_abc\n")
    (tmp_path / "bad_needs_loss.py").write_text("def f(model, batch, ctx): pass\nf.needs = {'pairs'}\n")
    assert "importing 'broken_syntax_loss' failed: SyntaxError" in err({"name": "broken_syntax_loss:f"})
    assert "importing 'missing_dep_loss' failed: No module named 'not_installed_pkg_abc'" in err(
        {"name": "missing_dep_loss:f"})
    assert "declares unknown needs ['pairs']" in err({"name": "bad_needs_loss:f"})


def test_user_loss_from_cwd_subprocess_style(tmp_path, monkeypatch):
    """A file in the CWD works even when the CWD is not on sys.path (the console script case)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my_cwd_losses.py").write_text(textwrap.dedent("""
        def my_loss(model, batch, ctx, scale: float = 1.0):
            return None
    """))
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    spec = resolve_loss({"name": "my_cwd_losses:my_loss", "scale": 3}, SRC)
    assert spec.args == {"scale": 3.0} and spec.needs == frozenset()


def test_user_loss_by_module_and_by_file_path():
    a = resolve_loss({"name": "tests.losses.user_loss_example:focal_ce", "gamma": 1}, SRC)
    b = resolve_loss({"name": "tests/losses/user_loss_example.py:focal_ce"}, SRC)
    assert a.args == {"gamma": 1.0} and b.args == {}
    assert resolve_loss({"name": "tests.losses.user_loss_example:paired_user_loss"}).needs == {"paired"}


def test_focal_with_gamma_zero_equals_ce():
    import torch

    from helpers import FixedLogits

    model = FixedLogits([[0.0, 1.0, 2.0], [0.5, 0.0, -1.0], [0.0, 0.0, 0.0]])
    batch = {"input_ids": torch.tensor([[0, 1, 2, 0]]), "attention_mask": torch.tensor([[1, 1, 1, 0]]),
             "labels": torch.tensor([[-100, 1, 2, -100]]), "n_target_tokens": torch.tensor(2)}
    ce = resolve_loss({"name": "ce"})(model, batch, LossContext())
    focal0 = resolve_loss({"name": "tests.losses.user_loss_example:focal_ce", "gamma": 0})(model, batch, LossContext())
    focal2 = resolve_loss({"name": "tests.losses.user_loss_example:focal_ce"})(model, batch, LossContext())
    assert math.isclose(ce.loss.item(), focal0.loss.item(), rel_tol=1e-6)
    assert focal2.loss.item() < ce.loss.item()
    with pytest.raises(UserError, match="returned dict; expected negtune.losses.LossOutput"):
        resolve_loss({"name": "tests.losses.user_loss_example:returns_wrong_type"})(model, batch, LossContext())


def test_user_loss_trains_tiny_opt(tiny_opt_dir):
    from helpers import train_steps

    spec = resolve_loss({"name": "tests.losses.user_loss_example:focal_ce", "gamma": 1.0})
    losses = train_steps(spec, tiny_opt_dir, spec.needs)
    assert losses[-1] < 0.7 * losses[0]


def test_declare_rejects_unknown_needs():
    with pytest.raises(ValueError, match="unknown loss needs"):
        declare(needs=("pairs",))(lambda model, batch, ctx: None)


def test_check_data_compat():
    paired = resolve_loss({"name": "mixed"})
    ok = DataConfig(variants=["original", "negated"], pairs=True)
    check_data_compat(paired, ok, SRC)
    check_data_compat(resolve_loss({"name": "ce"}), DataConfig(), SRC)
    check_data_compat(resolve_loss({"name": "rank_margin"}), DataConfig(), SRC)
    with pytest.raises(UserError, match=r"recipes/x.yaml: data.variants: loss 'mixed' needs original/negated "
                                        r"pairs but data.variants lacks original; set data.variants"):
        check_data_compat(paired, DataConfig(), SRC)
    with pytest.raises(UserError, match=r"recipes/x.yaml: data.pairs: .*set data.pairs: true"):
        check_data_compat(paired, SimpleNamespace(variants=["original", "negated"], pairs=False), SRC)
