"""Recipe inputs: registry tasks from local sample files, instruction_free, the trainer's hook."""
from __future__ import annotations

import json
from pathlib import Path

import yaml

from negtune.cli import main as cli_main
from negtune.config import recipe_from_dict
from negtune.evaluation.jobs import evaluate_recipe_eval
from negtune.evaluation.sets import build_eval_sets

REPO = Path(__file__).resolve().parents[2]


def _recipe(tiny_opt_dir):
    return {
        "model": {"name_or_path": str(tiny_opt_dir)},
        "eval": {"tasks": ["piqa", "arc_easy"], "variants": ["original", "negated", "instruction_free"],
                 "files": {"piqa": str(REPO / "data/samples/piqa/validation.jsonl"),
                           "arc_easy": str(REPO / "data/samples/arc_easy/validation.jsonl")},
                 "limit": 3, "batch_size": 4},
    }


def test_recipe_eval_cli_and_trainer_hook(tiny_opt_dir, tmp_path):
    raw = _recipe(tiny_opt_dir)
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(raw))
    out = tmp_path / "res.json"
    assert cli_main(["eval", "--recipe", str(path), "eval.limit=2", "--out", str(out), "--quiet"]) == 0
    res = json.loads(out.read_text())
    assert set(res["tasks"]) == {"piqa", "arc_easy"} and res["recipe_hash"]
    arc = res["tasks"]["arc_easy"]
    assert arc["n_pairs"] == 2 and arc["instruction_free"]["n"] == 2
    assert arc["instruction_free_agreement"] is not None
    resolved = yaml.safe_load((tmp_path / "res.recipe.yaml").read_text())
    assert resolved["eval"]["limit"] == 2  # the resolved recipe (override applied) sits beside the results

    # the trainer's in-process hook: same numbers, model left in training mode
    from negtune.models import load_for_eval

    recipe = recipe_from_dict(raw, str(path), ["eval.limit=2"])
    model, tok = load_for_eval(str(tiny_opt_dir))
    model.train()
    sets = build_eval_sets(recipe)
    hook = evaluate_recipe_eval(model, tok, recipe, tmp_path / "eval", name="epoch-1", instances=sets).to_json()
    assert model.training
    assert (tmp_path / "eval" / "epoch-1.json").is_file()
    assert hook["tasks"]["arc_easy"]["original"] == arc["original"]


def test_one_length_rule_for_training_and_scoring(tiny_opt_dir, tmp_path):
    """Sequences are cut at min(model.max_length, the model's limit) when training and when
    scoring (scoring used the model's limit and training the recipe's length or the
    tokenizer's, so a model could be trained on other prompts than it was scored on)."""
    from negtune.data.instances import Instance
    from negtune.models import load_for_eval
    from negtune.tokenization import effective_max_length
    from negtune.training.checks import check_recipe
    from negtune.training.trainer import Trainer

    raw = _recipe(tiny_opt_dir)
    raw["model"]["max_length"] = 64
    recipe = recipe_from_dict(raw, "r.yaml")
    model, tok = load_for_eval(str(tiny_opt_dir))
    res = evaluate_recipe_eval(model, tok, recipe, tmp_path / "eval", name="x")
    assert res.scoring.max_length == 64 and 0 < res.scoring.n_truncated < res.scoring.n_instances
    assert effective_max_length(model, tok, None) == 512  # the tiny OPT's position table

    # the trainer cuts at the same place; with no model.max_length, at the model's own limit
    long = Instance("copa", "1", "negated", "the cat " * 400, (" dog", " red"), 1, (1,))
    for max_length, limit in ((12, 12), (None, 512)):
        raw = {"model": {"name_or_path": str(tiny_opt_dir), "max_length": max_length},
               "data": {"tasks": ["copa"], "variants": ["negated"]}, "output_dir": str(tmp_path / "run"),
               "train": {"per_device_batch_size": 1, "trackers": []}}
        trainer = Trainer(check_recipe(recipe_from_dict(raw, "r.yaml"), None, 1), instances=[long], save=False)
        trainer.setup()
        assert trainer.examples.lengths == [limit]
