"""Everything about a training recipe that can be wrong, checked before any weights load.

Why a separate step: a typo in a loss argument, a batch size that does not divide, a missing
tracker or a resume into a run made with other settings should cost a second, not the
minutes it takes to load a model and build the data. ``check_recipe`` returns a ``Checked``
that the dry-run plan and the trainer both start from.
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import os
from pathlib import Path
from typing import Any, Optional

from negtune.config import Recipe, recipe_to_dict
from negtune.errors import UserError


@dataclasses.dataclass
class Checked:
    """Everything settled before loading a model: the result of ``check_recipe``."""

    recipe: Recipe
    loss_spec: Any  # negtune.losses.LossSpec
    model_type: str
    model_type_certain: bool  # False: guessed from the name (dry run, hub config not cached)
    processes: int
    grad_accum: int
    resume_from: Optional[Path]


def world_size_from_env() -> int:
    """Process count as set by accelerate/torchrun, known before any process group exists."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def train_hash(recipe: Recipe) -> str:
    """Hash of the settings a resumed run must share with the original (not epochs/logging)."""
    d = recipe_to_dict(recipe)
    # Where data sets are read from is not what is trained on (a resumed run reuses RUN_DIR/data):
    # a run started with the hub may resume on an air-gapped cluster with data.hub_mirror.
    data = {k: v for k, v in d["data"].items() if k not in ("cache_dir", "hub_mirror")}
    keep = {"seed": d["seed"], "data": data, "model": d["model"], "loss": d["loss"],
            "train": {k: d["train"][k] for k in ("lr", "scheduler", "warmup_steps", "optimizer", "weight_decay",
                                                  "max_grad_norm", "group_by_length", "per_device_batch_size")}}
    return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()


def qlora_cpu_problem(model_cfg: Any, dry_run: bool) -> Optional[str]:
    """Why 4-bit training on this machine's CPU would compute the model wrongly, or None.

    Reads config.json only (``negtune.qlora_cpu.cpu_block_problem``); a dry run converts no
    named offline source for it (the real run checks).
    """
    import torch

    if torch.cuda.is_available():
        return None
    from transformers import AutoConfig

    from negtune.hub import hub_offline
    from negtune.models import is_named_offline_source, resolve_model_path
    from negtune.qlora_cpu import cpu_block_problem

    if dry_run and is_named_offline_source(model_cfg.name_or_path):
        return None
    try:
        config = AutoConfig.from_pretrained(resolve_model_path(model_cfg.name_or_path), revision=model_cfg.revision,
                                            local_files_only=hub_offline())
    except (OSError, ValueError):  # not readable here: already reported by model_type_of, or a dry run
        return None
    return cpu_block_problem(config)


def check_recipe(recipe: Recipe, resume: Optional[str], processes: int, dry_run: bool = False) -> Checked:
    """All checks that can fail on user input, in the order a user would fix them. No weights."""
    from negtune.data.sampler import derive_grad_accum
    from negtune.io import check_output_dir
    from negtune.losses import check_data_compat, is_user_reference, locate_user_loss, resolve_loss
    from negtune.models import check_qlora_available, lora_targets, model_type_of
    from negtune.training.checkpoint import list_checkpoints, resolve_resume
    from negtune.training.state import TrainerState

    src = recipe.source
    if dry_run and is_user_reference(recipe.loss.get("name")):
        spec = locate_user_loss(recipe.loss, src)  # a dry run runs none of the user's code
    else:
        spec = resolve_loss(recipe.loss, src)
        check_data_compat(spec, recipe.data, src)
    m = recipe.model
    if m.peft == "qlora":
        check_qlora_available()
    mtype, certain = model_type_of(m.name_or_path, m.revision, guess_offline=dry_run)
    if m.peft in ("lora", "qlora") and (certain or m.lora.target_modules):
        lora_targets(mtype, m.lora, m.name_or_path)
    if m.peft == "qlora" and certain:
        problem = qlora_cpu_problem(m, dry_run)
        if problem:
            raise UserError(f"{src}: model.peft: qlora on the CPU: {problem}; use peft: lora or a GPU")
    t = recipe.train
    grad_accum, err = derive_grad_accum(t.global_batch_size, t.per_device_batch_size, processes, t.grad_accum)
    if err:
        raise UserError(f"{src}: {err}")
    if "tensorboard" in t.trackers and importlib.util.find_spec("tensorboard") is None and not dry_run:
        raise UserError(f"{src}: train.trackers: tensorboard is not installed (pip install tensorboard)")
    if "wandb" in t.trackers and importlib.util.find_spec("wandb") is None:
        raise UserError(f"{src}: train.trackers: wandb is not installed (pip install wandb)")
    if not dry_run:  # before anything is loaded: never write into a user's directory
        check_output_dir(recipe.output_dir, "run", "run directory (output_dir)")
    resume_from = resolve_resume(recipe.output_dir, resume)
    if resume_from is not None:
        if TrainerState.read(resume_from).recipe_sha256_train != train_hash(recipe):
            raise UserError(f"train.resume: {resume_from}: was written by a run with different data/model/"
                            "loss/optimiser settings; start a new output_dir")
    elif resume is None and list_checkpoints(recipe.output_dir) and not dry_run:
        raise UserError(f"{recipe.output_dir}: already holds checkpoints; pass --resume (or train.resume=auto) "
                        "to continue, or choose another --out")
    return Checked(recipe, spec, mtype, certain, processes, grad_accum, resume_from)
