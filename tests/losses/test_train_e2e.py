"""Non-default losses through the real trainer (negtune train), tiny OPT on the CPU."""
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # subprocess or in-process training runs
import yaml

from negtune.cli import main as cli_main

REPO = Path(__file__).resolve().parents[2]
ARC = REPO / "data" / "samples" / "arc_easy" / "train.jsonl"


def _recipe(tmp_path, model_dir, loss, **model):
    recipe = {
        "seed": 1,
        "output_dir": str(tmp_path / "run"),
        "data": {"tasks": ["arc_easy"], "variants": ["original", "negated"], "pairs": True,
                 "max_instances": 8, "files": {"arc_easy": str(ARC)}},
        "model": {"name_or_path": str(model_dir), "max_length": 128, **model},
        "train": {"lr": 0.003, "epochs": 1, "per_device_batch_size": 2, "grad_accum": 2, "max_steps": 2,
                  "trackers": []},
        "loss": loss,
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


@pytest.mark.parametrize("loss, model", [
    ({"name": "kl_anchor", "beta": 0.5}, {"peft": "lora"}),  # paired + reference = adapter disabled
    ({"name": "tests.losses.user_loss_example:focal_ce", "gamma": 1.0}, {}),  # a user's loss by reference
])
def test_train_with_loss(loss, model, tmp_path, tiny_opt_dir, monkeypatch):
    assert ARC.is_file(), "data/samples/arc_easy is part of the repository"
    monkeypatch.chdir(REPO)  # "tests.losses.user_loss_example" resolves from the CWD
    recipe = _recipe(tmp_path, tiny_opt_dir, loss, **model)
    assert cli_main(["train", str(recipe)]) == 0
    state = yaml.safe_load((tmp_path / "run" / "checkpoints" / "step-000002" / "trainer_state.json").read_text())
    assert state["loss"] == loss["name"] and state["step"] == 2


def test_paired_loss_on_unpaired_data_fails_before_training(tmp_path, tiny_opt_dir, capsys):
    recipe = _recipe(tmp_path, tiny_opt_dir, {"name": "mixed"})
    assert cli_main(["train", str(recipe), "data.pairs=false"]) == 2
    assert "data.pairs: loss 'mixed' needs original/negated pairs; set data.pairs: true" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
