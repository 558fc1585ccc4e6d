"""Epoch-end evaluation: the checkpoint just saved, scored in process by the evaluator.

Why apart from the loop: it is glue to ``negtune.evaluation``, not training. It writes
``RUN_DIR/eval/<checkpoint>.json`` with the same fields ``negtune eval RUN_DIR`` writes, so
that command skips the checkpoint later, and refreshes the run's summary tables.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from negtune.training.state import TrainerState


def evaluate_checkpoint(model: Any, tokenizer: Any, recipe: Any, run_dir: Path, ckpt: Path, is_peft: bool,
                        eval_sets: Sequence[Any]) -> dict[str, float]:
    """Score ``model`` (the in-memory weights saved as ``ckpt``) on ``eval_sets``; return the
    summary's numbers. The model is put in eval mode for it and back afterwards."""
    from negtune.evaluation.jobs import evaluate_recipe_eval
    from negtune.evaluation.summaries import write_run_summary

    state = TrainerState.read(ckpt)
    info = {"run": str(run_dir), "step": state.step, "epoch": state.epoch,
            "model": state.base_model if is_peft else str(ckpt / "model"),
            "adapter": str(ckpt / "model") if is_peft else None}
    was_training = model.training
    model.eval()
    try:
        result = evaluate_recipe_eval(model, tokenizer, recipe, run_dir / "eval", name=ckpt.name,
                                      checkpoint=ckpt.name, instances=eval_sets, info=info)
        write_run_summary(run_dir)
    finally:
        model.train(was_training)
    return {k: v for k, v in result.summary.to_json().items() if isinstance(v, float)}
