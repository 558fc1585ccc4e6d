#!/usr/bin/env python
"""Test helper (no tests here): the gradient of one training step, per loss, through the real trainer.

    [accelerate launch ...] python tests/training/grad_split.py OUT.pt MODEL_DIR RUN_ROOT PER_DEVICE

For every loss in ``LOSSES`` it builds a recipe (global batch 8 rows, ``PER_DEVICE`` rows
per micro-batch, accumulation derived from the process count), runs
``negtune.training.trainer.Trainer`` for one SGD step without clipping, and records the
gradient the optimizer is about to apply (after DDP's all-reduce). Rank 0 saves
``{loss label: {parameter: gradient}}`` to OUT.pt. ``tests/training/test_run.py`` compares
8 x 1, 4 x 2 and 2 processes x 4 x 1: the same global batch must give the same gradient.

The data exercise every normalisation unit: ARC-Easy samples under original and negated
prompts, ``negated_target: all_wrong`` (three negated rows share one original partner), so
micro-batches differ in target tokens, partner weights, option tokens and ranked rows.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

# (label, loss section): every built-in, both rank_margin modes, and the example user loss.
LOSSES = [
    ("ce", {"name": "ce"}),
    ("mixed", {"name": "mixed"}),
    ("unlikelihood", {"name": "unlikelihood", "alpha": 0.5}),
    ("kl_anchor", {"name": "kl_anchor", "beta": 0.5}),
    ("rank_margin_softmax", {"name": "rank_margin"}),
    ("rank_margin_margin", {"name": "rank_margin", "mode": "margin", "margin": 2.0, "ce_weight": 0.5}),
    ("focal_ce", {"name": "tests.losses.user_loss_example:focal_ce", "gamma": 2.0}),
]


def recipe_for(label: str, loss: dict, model_dir: str, run_root: Path, per_device: int) -> dict:
    return {
        "seed": 3,
        "output_dir": str(run_root / label),
        "model": {"name_or_path": model_dir, "max_length": 96},
        "data": {"tasks": ["arc_easy"], "variants": ["original", "negated"], "pairs": True,
                 "negated_target": "all_wrong", "files": {"arc_easy": str(REPO / "data/samples/arc_easy/train.jsonl")}},
        "train": {"optimizer": "sgd", "lr": 1.0, "max_grad_norm": None, "per_device_batch_size": per_device,
                  "global_batch_size": 8, "max_steps": 1, "epochs": 1, "trackers": [], "log_every_steps": 1},
        "loss": loss,
    }


def main(out: str, model_dir: str, run_root: str, per_device: str) -> None:
    import torch

    from negtune.config import recipe_from_dict
    from negtune.training.checks import check_recipe, world_size_from_env
    from negtune.training.trainer import Trainer

    grads: dict[str, dict[str, torch.Tensor]] = {}
    for label, loss in LOSSES:
        raw = recipe_for(label, loss, model_dir, Path(run_root), int(per_device))
        checked = check_recipe(recipe_from_dict(raw, f"<{label}>"), None, world_size_from_env())
        trainer = Trainer(checked, save=False)
        trainer.setup()
        seen: dict[str, torch.Tensor] = {}
        apply = trainer.optimizer.step

        def record_then_step(*args, _seen=seen, _trainer=trainer, _apply=apply, **kwargs):
            model = _trainer.acc.unwrap_model(_trainer.model)
            _seen.update({n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None})
            return _apply(*args, **kwargs)

        trainer.optimizer.step = record_then_step
        trainer.acc.end_training = lambda: None  # it would tear down the process group the next loss needs
        trainer.train()
        assert seen, f"{label}: no gradient recorded"
        grads[label] = seen
    if int(os.environ.get("RANK", "0")) == 0:
        torch.save(grads, out)


if __name__ == "__main__":
    main(*sys.argv[1:5])
