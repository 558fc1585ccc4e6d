"""Recipe validation: every mistake is one line naming the file and the key path."""
import subprocess
import sys

import pytest

from negtune.config import load_recipe, recipe_from_dict, recipe_hash, save_resolved
from negtune.errors import UserError

BASE = {"model": {"name_or_path": "facebook/opt-125m"}}


def _err(raw, overrides=None) -> str:
    with pytest.raises(UserError) as info:
        recipe_from_dict(raw, "recipes/x.yaml", overrides)
    msg = str(info.value)
    assert "\n" not in msg
    return msg


def test_defaults_are_the_papers():
    r = recipe_from_dict(BASE)
    assert (r.train.lr, r.train.epochs, r.train.scheduler, r.data.max_instances) == (1e-3, 5, "constant", 10000)


@pytest.mark.parametrize(
    "raw, expected",
    [
        ({**BASE, "train": {"lr": 0}}, "recipes/x.yaml: train.lr: must be > 0, got 0.0"),
        ({**BASE, "train": {"lrr": 1}}, "recipes/x.yaml: train.lrr: unknown key"),
        ({**BASE, "train": {"epochs": "five"}}, "recipes/x.yaml: train.epochs: expected an integer"),
        ({**BASE, "train": {"epochs": True}}, "recipes/x.yaml: train.epochs: expected an integer"),
        ({"train": {}}, "recipes/x.yaml: model.name_or_path: required key is missing"),
        ({**BASE, "model": {"name_or_path": "x", "peft": "lora2"}}, "recipes/x.yaml: model.peft: expected one of"),
        ({**BASE, "data": {"tasks": "piqa"}}, "recipes/x.yaml: data.tasks: expected a list"),
        ({**BASE, "data": {"tasks": []}}, "recipes/x.yaml: data.tasks: must name at least one task"),
        ({**BASE, "data": {"variants": ["negated"], "pairs": True}}, "data.pairs: needs at least two"),
        ({**BASE, "model": {"name_or_path": "x", "lora": {"dropout": 1.5}}}, "model.lora.dropout: must be < 1"),
        ({**BASE, "loss": {"alpha": 1}}, "recipes/x.yaml: loss.name: required"),
        ([1, 2], "recipes/x.yaml: top level: expected a mapping"),
        ({**BASE, "data": {"tasks": ["piqa", "boolq"]}}, "recipes/x.yaml: data.tasks[1]: unknown task 'boolq'"),
        ({**BASE, "eval": {"tasks": ["piqa"], "variants": ["zzz"]}}, "recipes/x.yaml: eval.variants[0]: unknown variant"),
        ({**BASE, "eval": {"files": {"copa": "x.jsonl"}}}, "recipes/x.yaml: eval.files.copa: task is not listed"),
        ({**BASE, "train": {"lr": float("inf")}}, "recipes/x.yaml: train.lr: must be a finite number, got inf"),
        ({**BASE, "train": {"max_grad_norm": float("nan")}}, "train.max_grad_norm: must be a finite number"),
        ({**BASE, "output_dir": ""}, "recipes/x.yaml: output_dir: empty"),
    ],
)
def test_bad_values_name_file_and_key(raw, expected):
    assert expected in _err(raw)


def test_overrides_apply_and_are_validated():
    r = recipe_from_dict(BASE, "r.yaml", ["train.lr=5e-4", "data.tasks=[copa, piqa]", "model.peft=lora"])
    assert (r.train.lr, r.data.tasks, r.model.peft) == (5e-4, ["copa", "piqa"], "lora")
    assert "train.lr: must be > 0" in _err(BASE, ["train.lr=-1"])
    assert "train.bogus: unknown key" in _err(BASE, ["train.bogus=1"])
    with pytest.raises(UserError, match="expected key.path=value"):
        recipe_from_dict(BASE, "r.yaml", ["train.lr"])


def test_hash_is_stable_and_sensitive(tmp_path):
    a, b = recipe_from_dict(BASE), recipe_from_dict(BASE)
    assert recipe_hash(a) == recipe_hash(b)
    assert recipe_hash(a) != recipe_hash(recipe_from_dict(BASE, overrides=["seed=1"]))
    out = save_resolved(a, tmp_path)
    again = load_recipe(out)
    assert recipe_hash(again) == recipe_hash(a)


def test_yaml_syntax_error_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(UserError, match="bad.yaml"):
        load_recipe(bad)
    with pytest.raises(UserError, match="recipe file not found"):
        load_recipe(tmp_path / "nope.yaml")


@pytest.mark.slow
def test_cli_reports_bad_recipe_with_exit_2_and_no_traceback(tmp_path):
    bad = tmp_path / "r.yaml"
    bad.write_text("model: {name_or_path: x}\ntrain: {lr: -1}\n")
    code = "import sys; from negtune.config import load_recipe; from negtune.errors import exit_on_user_error; " \
           f"sys.exit(exit_on_user_error(lambda: load_recipe({str(bad)!r})))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"negtune: error: {bad}: train.lr: must be > 0, got -1.0"]


@pytest.mark.slow
def test_validation_imports_nothing_heavy():
    code = "import sys; import negtune.config as c; c.recipe_from_dict({'model': {'name_or_path': 'x'}}); " \
           "print(any(m in sys.modules for m in ('torch', 'transformers', 'datasets')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_inf_override_duplicate_keys_alias_bomb_and_binary(tmp_path):
    assert "train.lr: must be a finite number" in _err(BASE, ["train.lr=.inf"])
    dup = tmp_path / "dup.yaml"
    dup.write_text("model:\n  name_or_path: a\ntrain:\n  lr: 1.0e-3\n  lr: 1.0\n")
    with pytest.raises(UserError, match=r"dup.yaml: line 5: duplicate key 'lr'"):
        load_recipe(dup)
    levels = ["a: &a [x, x, x, x, x, x, x, x, x]"] + [
        f"{n}: &{n} [" + ", ".join(f"*{p}" for _ in range(9)) + "]" for p, n in zip("abcdefg", "bcdefgh")]
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(levels) + "\nmodel: {name_or_path: x}\n")  # 9^8 values once expanded
    with pytest.raises(UserError, match="expands to more than"):
        load_recipe(bomb)
    binary = tmp_path / "weights.yaml"
    binary.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(UserError, match="weights.yaml: not a text file"):
        load_recipe(binary)
