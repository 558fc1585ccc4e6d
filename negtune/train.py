#!/usr/bin/env python
"""Fine-tune a causal LM on prompt instances (the paper's negated-prompt FT, or a mitigation loss).

Three ways to run it, same code::

    accelerate launch --config_file launch/1gpu.yaml negtune/train.py recipes/opt125m.yaml [key=value ...]
    python negtune/train.py recipes/opt125m.yaml [key=value ...]        # one process
    negtune train recipes/opt125m.yaml [key=value ...]

Flags: ``--dry-run`` (validate, resolve the data, print the plan; loads no weights, no
network), ``--resume [PATH]`` (default: newest complete checkpoint in output_dir),
``--out DIR`` (overrides ``output_dir``).

Read top to bottom: config → data (RUN_DIR/data) → model → loop → checkpoints → evaluation.
Shaped like torchtune's ``recipes/lora_finetune_distributed.py`` (``setup`` → ``train`` →
``save_checkpoint``, the loss step in one method), kept small like nanoGPT: no callbacks, no
plugin system. The loss is whatever ``negtune.losses.resolve_loss(recipe.loss)`` returns; the
trainer only asks it what data it ``needs``.

Exit codes: 0 done; 2 bad input (one line, before any model is loaded); 3 the loss or the
gradient norm became NaN/inf (one line; the last good checkpoint is kept, the poisoned
state is not saved).

Optimisation details that make runs comparable:
* global batch = per_device_batch_size x processes x grad_accum; with
  ``train.global_batch_size`` set, grad_accum is derived, so the steps do not depend on the
  process count (``negtune.data.sampler``);
* the loss of a step is the sum of token losses over the global batch divided by the
  global batch's target-token count (losses that report ``n_tokens``; others are weighted
  per micro-batch equally), so 1 and N processes agree;
* the last incomplete global batch of each epoch is dropped (the permutation changes per
  epoch, so a different tail is dropped each time).
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `import negtune` work without installing,
    # and keep negtune/ itself off sys.path (its io.py, config.py, data/ would shadow other modules).
    _HERE = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if str(Path(p or ".").resolve()) != _HERE]
    _ROOT = str(Path(_HERE).parent)
    if _ROOT not in sys.path:
        sys.path.insert(0, _ROOT)

import argparse
import contextlib
import copy
import dataclasses
import json
import math
import os
import time
from typing import Any, Optional

from negtune.config import Recipe, load_recipe, recipe_hash, recipe_to_dict, save_resolved
from negtune.errors import UserError, exit_on_user_error

EXIT_NONFINITE = 3


class NonFiniteLoss(Exception):
    """The loss or gradient norm was NaN/inf; the run stops without saving that state."""


# ============================================================================ config


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="negtune train", description="Fine-tune a causal LM from a recipe.")
    p.add_argument("recipe", help="recipe YAML (see recipes/)")
    p.add_argument("overrides", nargs="*", help="key.path=value overrides, e.g. train.lr=5e-4")
    p.add_argument("--dry-run", action="store_true", help="validate, resolve data, print the plan; load nothing")
    p.add_argument("--resume", nargs="?", const="auto", default=None, metavar="PATH",
                   help="continue from PATH or (no value) the newest checkpoint in output_dir")
    p.add_argument("--out", default=None, metavar="DIR", help="output directory (overrides output_dir)")
    return p.parse_intermixed_args(argv)


def world_size_from_env() -> int:
    """Process count as set by accelerate/torchrun, known before any process group exists."""
    return int(os.environ.get("WORLD_SIZE", "1"))


@dataclasses.dataclass
class Checked:
    """Everything settled before loading a model: the result of ``check_recipe``."""

    recipe: Recipe
    loss_spec: Any
    model_type: str
    model_type_certain: bool
    processes: int
    grad_accum: int
    resume_from: Optional[Path]


def check_recipe(recipe: Recipe, resume: Optional[str], processes: int, dry_run: bool = False) -> Checked:
    """All checks that can fail on user input, in the order a user would fix them. No weights."""
    import importlib.util

    from negtune.checkpoint import list_checkpoints, read_state, resolve_resume
    from negtune.data.sampler import derive_grad_accum
    from negtune.losses import check_data_compat, resolve_loss
    from negtune.models import check_qlora_available, lora_targets, model_type_of

    src = recipe.source
    spec = resolve_loss(recipe.loss, src)
    check_data_compat(spec, recipe.data, src)
    m = recipe.model
    if m.peft == "qlora":
        check_qlora_available()
    mtype, certain = model_type_of(m.name_or_path, m.revision, guess_offline=dry_run)
    if m.peft in ("lora", "qlora") and (certain or m.lora.target_modules):
        lora_targets(mtype, m.lora, m.name_or_path)
    t = recipe.train
    grad_accum, err = derive_grad_accum(t.global_batch_size, t.per_device_batch_size, processes, t.grad_accum)
    if err:
        raise UserError(f"{src}: {err}")
    if "tensorboard" in t.trackers and importlib.util.find_spec("tensorboard") is None and not dry_run:
        raise UserError(f"{src}: train.trackers: tensorboard is not installed (pip install tensorboard)")
    if "wandb" in t.trackers and importlib.util.find_spec("wandb") is None:
        raise UserError(f"{src}: train.trackers: wandb is not installed (pip install wandb)")
    resume_from = resolve_resume(recipe.output_dir, resume)
    if resume_from is not None:
        state = read_state(resume_from)
        if state.get("recipe_sha256_train") not in (None, _train_hash(recipe)):
            raise UserError(f"train.resume: {resume_from}: was written by a run with different data/model/"
                            "loss/optimiser settings; start a new output_dir")
    elif resume is None and list_checkpoints(recipe.output_dir) and not dry_run:
        raise UserError(f"{recipe.output_dir}: already holds checkpoints; pass --resume (or train.resume=auto) "
                        "to continue, or choose another --out")
    return Checked(recipe, spec, mtype, certain, processes, grad_accum, resume_from)


def _train_hash(recipe: Recipe) -> str:
    """Hash of the settings a resumed run must share with the original (not epochs/logging)."""
    import hashlib

    d = recipe_to_dict(recipe)
    keep = {"seed": d["seed"], "data": d["data"], "model": d["model"], "loss": d["loss"],
            "train": {k: d["train"][k] for k in ("lr", "scheduler", "warmup_steps", "optimizer", "weight_decay",
                                                  "max_grad_norm", "group_by_length", "per_device_batch_size")}}
    return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()


# ============================================================================ dry run


def dry_run(c: Checked) -> int:
    """Print the plan: what would be trained, how, and for how many steps. No weights, no network."""
    from negtune.data.build import build_instances
    from negtune.data.tasks import get_task

    r = c.recipe
    t, m, d = r.train, r.model, r.data
    lines = [f"recipe        {r.source} (sha256 {recipe_hash(r)[:12]})", f"output_dir    {r.output_dir}"]
    arch = c.model_type + ("" if c.model_type_certain else " (guessed from the name; config not available offline)")
    lines.append(f"model         {m.name_or_path}  architecture={arch}  dtype={m.dtype}  "
                 f"gradient_checkpointing={m.gradient_checkpointing}  max_length={m.max_length}")
    if m.peft == "none":
        lines.append("peft          none (full fine-tuning)")
    else:
        from negtune.models import LORA_TARGETS

        targets = m.lora.target_modules or LORA_TARGETS.get(c.model_type, ["<set model.lora.target_modules>"])
        extra = " 4-bit nf4 (bitsandbytes), double quant, compute dtype " + m.dtype if m.peft == "qlora" else ""
        lines.append(f"peft          {m.peft}: r={m.lora.r} alpha={m.lora.alpha} dropout={m.lora.dropout} "
                     f"targets={','.join(targets)}{extra}")
    lines.append(f"loss          {c.loss_spec.name} {c.loss_spec.args or ''} needs={sorted(c.loss_spec.needs) or '-'}")
    # data: local tasks are built (and counted); hub tasks are only announced
    local = [task for task in d.tasks if task in d.files]
    hub = [task for task in d.tasks if task not in d.files]
    n_rows = 0
    if local:
        sub = dataclasses.replace(d, tasks=local, files={k: v for k, v in d.files.items() if k in local})
        instances = build_instances(sub, r.seed)
        by: dict[str, int] = {}
        for inst in instances:
            by[f"{inst.task}/{inst.variant}"] = by.get(f"{inst.task}/{inst.variant}", 0) + 1
        n_rows += _rows_for(instances, c.loss_spec.needs)
        lines.append(f"data (local)  {len(instances)} instances: " + ", ".join(f"{k}={v}" for k, v in sorted(by.items())))
    estimated = False
    for task in hub:
        spec = get_task(task)
        if spec.hub is None:
            raise UserError(f"{r.source}: data.files.{task}: task {task} has no hub source; give a local file")
        hub_id = spec.hub.path + (f" ({spec.hub.name})" if spec.hub.name else "")
        per = (d.max_instances or 0) * (len(d.variants) if "paired" not in c.loss_spec.needs else 1)
        n_rows += per
        estimated = True
        lines.append(f"data (hub)    {task}: will be fetched from {hub_id} split {spec.hub.split_for(d.split)}"
                     f"; at most {per if d.max_instances else '?'} rows (data.max_instances cap)")
    g = t.per_device_batch_size * c.processes * c.grad_accum
    steps_per_epoch = n_rows // g
    total = steps_per_epoch * t.epochs
    if t.max_steps:
        total = min(total, t.max_steps) if total else t.max_steps
    est = " (upper bound: hub task sizes are capped, not counted)" if estimated else ""
    lines.append(f"batch         per_device={t.per_device_batch_size} x processes={c.processes} x "
                 f"grad_accum={c.grad_accum} = global {g}" + (" (global_batch_size fixed)" if t.global_batch_size else ""))
    lines.append(f"optimiser     {t.optimizer} lr={t.lr:g} scheduler={t.scheduler} warmup={t.warmup_steps} "
                 f"weight_decay={t.weight_decay} max_grad_norm={t.max_grad_norm}")
    lines.append(f"steps         {n_rows} rows / {g} = {steps_per_epoch} per epoch x {t.epochs} epochs = {total}"
                 + (f" (max_steps {t.max_steps})" if t.max_steps else "") + est)
    saves = f"every {t.save_every_steps} steps and " if t.save_every_steps else ""
    lines.append(f"checkpoints   {saves}at each epoch end into {r.output_dir}/checkpoints (keep last {t.keep_last})")
    ev = (f"at epoch end on {', '.join(r.eval.tasks) or '-'}{' + csv sets' if r.eval.csv else ''} "
          f"({', '.join(r.eval.variants)}, split {r.eval.split})" if t.eval_at_epoch_end else "off (negtune eval RUN_DIR)")
    lines.append(f"eval          {ev}")
    lines.append(f"resume        {c.resume_from or ('auto: none found, fresh start' if r.train.resume == 'auto' else 'no')}")
    lines.append(f"logging       every {t.log_every_steps} steps; trackers={','.join(t.trackers) or '-'} "
                 f"({r.output_dir}/logs)")
    print("\n".join(lines))
    return 0


def _rows_for(instances: list, needs: frozenset) -> int:
    if "paired" in needs:
        return sum(1 for i in instances if i.variant == "negated")
    return len(instances)


# ============================================================================ trainer


class Trainer:
    """setup() → train(); the loss step is ``loss_step``. One instance per process."""

    def __init__(self, checked: Checked):
        self.c = checked
        self.recipe = checked.recipe
        self.run_dir = Path(self.recipe.output_dir)

    # ------------------------------------------------------------------ setup
    def setup(self) -> None:
        import torch
        from accelerate import Accelerator
        from accelerate.utils import ProjectConfiguration

        r, t = self.recipe, self.recipe.train
        trackers = list(t.trackers)
        # accelerate 1.15 sets ACCELERATE_USE_CPU only for its single-process launcher; a
        # multi-process launch (`--multi_gpu` or launch/cpu_2proc.yaml) on a machine without
        # GPUs would otherwise fall back to N independent single-process runs. Ask for CPU
        # DDP (gloo) explicitly then.
        cpu = self.c.processes > 1 and not torch.cuda.is_available() and not _other_accelerator()
        self.acc = Accelerator(
            cpu=cpu,
            log_with=trackers or None,
            project_config=ProjectConfiguration(project_dir=str(self.run_dir), logging_dir=str(self.run_dir / "logs")),
        )
        if self.acc.num_processes != self.c.processes:  # WORLD_SIZE disagreed with accelerate
            raise UserError(f"{r.source}: processes: expected {self.c.processes}, accelerate reports "
                            f"{self.acc.num_processes}")
        self.rank, self.world = self.acc.process_index, self.acc.num_processes
        dist = str(self.acc.distributed_type).rsplit(".", 1)[-1]
        if self.c.resume_from is not None and dist in ("FSDP", "DEEPSPEED"):
            raise UserError(f"train.resume: resuming is supported for single-process and DDP runs, not {dist} "
                            "(optimizer state is saved from rank 0 only); start a new run or use DDP")
        self.is_main = self.acc.is_main_process
        for flag, name in (("ACCELERATE_USE_FSDP", "FSDP"), ("ACCELERATE_USE_DEEPSPEED", "DEEPSPEED")):
            if os.environ.get(flag, "false").lower() == "true" and dist != name:
                self.print(f"warning: the launch config asks for {name}, but accelerate runs it as {dist} here "
                           "(FSDP/DeepSpeed need GPUs); training proceeds as plain data parallel")
        torch.manual_seed(r.seed)  # model-side init (LoRA A matrices) is the same on every process
        self._setup_data()
        self._setup_model()
        self._setup_optimizer()
        self.step, self.epoch, self.step_in_epoch = 0, 0, 0
        if self.c.resume_from is not None:
            self._resume(self.c.resume_from)
        if trackers:
            config = {k: (v if isinstance(v, (int, float, str, bool)) else json.dumps(v))
                      for k, v in _flatten(recipe_to_dict(r)).items()}
            self.acc.init_trackers("train", config=config)

    def _main_first(self, fn):
        """Run ``fn`` on the main process; others wait and get its result or its UserError."""
        from accelerate.utils import broadcast_object_list

        box: list[Any] = [None]
        if self.is_main:
            try:
                box[0] = ("ok", fn())
            except UserError as err:
                box[0] = ("error", str(err))
        if self.world > 1:
            broadcast_object_list(box, from_process=0)
        status, value = box[0]
        if status == "error":
            raise UserError(value)
        return value

    def _setup_data(self) -> None:
        from negtune.data.build import build_dataset, load_instances, write_dataset
        from negtune.data.collate import Collator, TrainExamples
        from negtune.data.sampler import BatchPlan, GlobalBatchSampler
        from negtune.models import load_tokenizer

        r = self.recipe
        data_dir = self.run_dir / "data"

        def build() -> int:
            if self.c.resume_from is not None and (data_dir / "instances.jsonl").is_file():
                return 0  # a resumed run trains on exactly the data it started with
            built = build_dataset(r.data, r.seed)
            write_dataset(built.instances, data_dir, r, sources=built.sources)
            save_resolved(r, self.run_dir)
            return len(built.instances)

        self._main_first(build)
        instances = load_instances(data_dir)
        self.tokenizer = load_tokenizer(r.model.name_or_path, r.model.revision)
        needs = self.c.loss_spec.needs
        max_length = r.model.max_length or getattr(self.tokenizer, "model_max_length", None)
        # Same prompt/answer cut as the evaluator uses for this recipe (eval.tokenization).
        mode = r.eval.tokenization
        self.examples = TrainExamples(instances, needs, tokenizer=self.tokenizer, max_length=max_length,
                                      tokenization=mode)
        self.collator = Collator(self.tokenizer, needs, max_length=max_length, tokenization=mode)
        self.plan = BatchPlan(r.train.per_device_batch_size, self.world, self.c.grad_accum)
        self.sampler = GlobalBatchSampler(self.examples.lengths, self.plan, r.seed, r.train.group_by_length)
        self.steps_per_epoch = len(self.sampler)
        if self.steps_per_epoch == 0:
            raise UserError(f"{r.source}: train: {len(self.examples)} training rows are fewer than one global "
                            f"batch of {self.plan.global_batch}")
        total = self.steps_per_epoch * r.train.epochs
        self.total_steps = min(total, r.train.max_steps) if r.train.max_steps else total
        self.n_instances = len(instances)

    def _setup_model(self) -> None:
        import torch

        from negtune.models import load_for_training

        m = self.recipe.model
        self.is_peft = m.peft in ("lora", "qlora")
        needs_ref = "reference_model" in self.c.loss_spec.needs
        model = load_for_training(m, self.c.model_type)
        self.base_model_id = _base_model_id(m.name_or_path)  # once: resolving may hash a GGUF file
        self.ref_model = None
        if needs_ref and not self.is_peft:
            # frozen copy of the initial weights, on this process's device (not wrapped by DDP)
            self.ref_model = copy.deepcopy(model).eval().to(self.acc.device)
            for p in self.ref_model.parameters():
                p.requires_grad_(False)
        model.train()
        self.n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        self.n_params = sum(p.numel() for p in model.parameters())
        self.model = model  # prepared together with the optimizer below
        self._torch = torch

    def _setup_optimizer(self) -> None:
        import torch

        t = self.recipe.train
        params = [p for p in self.model.parameters() if p.requires_grad]
        if t.optimizer == "adamw":
            try:  # the fused kernel (CPU and CUDA, torch >= 2.4) is several times faster on large models
                opt = torch.optim.AdamW(params, lr=t.lr, weight_decay=t.weight_decay, fused=True)
            except (RuntimeError, ValueError, TypeError):
                opt = torch.optim.AdamW(params, lr=t.lr, weight_decay=t.weight_decay)
        else:
            opt = torch.optim.SGD(params, lr=t.lr, weight_decay=t.weight_decay)
        total, warm = self.total_steps, t.warmup_steps

        def factor(step: int) -> float:
            if warm and step < warm:
                return (step + 1) / warm
            if t.scheduler == "constant":
                return 1.0
            progress = min(1.0, (step - warm) / max(1, total - warm))
            return 1.0 - progress if t.scheduler == "linear" else 0.5 * (1 + math.cos(math.pi * progress))

        # The scheduler is stepped by us once per optimizer step (not passed to prepare(),
        # which would step it once per process).
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        self.model, self.optimizer = self.acc.prepare(self.model, opt)

    def _resume(self, path: Path) -> None:
        from negtune.checkpoint import load_model_weights, load_training_state, set_rng_state

        st = load_training_state(path)
        ts = st["trainer_state"]
        load_model_weights(self.acc.unwrap_model(self.model), path, ts["kind"])
        self.optimizer.load_state_dict(st["optimizer"])
        self.scheduler.load_state_dict(st["scheduler"])
        rng = st["rng"]
        set_rng_state(rng[self.rank] if self.rank < len(rng) else rng[0])
        self.step = int(ts["step"])
        self.epoch = int(ts["data_position"]["epoch"])
        self.step_in_epoch = int(ts["data_position"]["step_in_epoch"])
        self.print(f"resumed from {path} at step {self.step} (epoch {self.epoch + 1}, next batch {self.step_in_epoch + 1})")

    # ------------------------------------------------------------------ helpers
    def print(self, msg: str) -> None:
        if self.is_main:
            from tqdm import tqdm

            tqdm.write(msg)

    def _reference_logits(self):
        torch = self._torch
        if "reference_model" not in self.c.loss_spec.needs:
            return None
        if self.ref_model is not None:
            ref = self.ref_model

            def fn(input_ids, attention_mask):
                with torch.no_grad():
                    return ref(input_ids=input_ids, attention_mask=attention_mask).logits.float()
            return fn
        base = self.acc.unwrap_model(self.model)

        def fn(input_ids, attention_mask):  # LoRA: the same model with its adapter switched off
            was_training = base.training
            base.eval()
            try:
                with torch.no_grad(), base.disable_adapter():
                    return base(input_ids=input_ids, attention_mask=attention_mask).logits.float()
            finally:
                base.train(was_training)
        return fn

    def _reduce(self, values: list[float]) -> list[float]:
        torch = self._torch
        t = torch.tensor(values, dtype=torch.float64)
        if self.world > 1:
            t = self.acc.reduce(t, reduction="sum")
        return t.tolist()

    # ------------------------------------------------------------------ the loss step
    def to_device(self, batch: dict) -> dict:
        """Move a collated batch to this process's device (a no-op on the CPU)."""
        return {k: v.to(self.acc.device) for k, v in batch.items()}

    def loss_step(self, batch: dict, n_tok: float, global_tokens: float, n_micro: int, ctx: Any) -> tuple[Any, float]:
        """Forward + backward of one micro-batch; returns (LossOutput, its weight in the step).

        A loss reporting ``n_tokens`` (a per-token mean) is weighted by this micro-batch's
        share of the global batch's target tokens, so the step optimises the sum of token
        losses / target tokens in the global batch; other losses weigh micro-batches equally.
        DDP averages gradients over processes, hence the factor ``world``.
        """
        out = self.c.loss_spec(self.model, batch, ctx)
        if out.n_tokens is not None and global_tokens > 0:
            weight = n_tok / global_tokens
        else:
            weight = 1.0 / (n_micro * self.world)
        self.acc.backward(out.loss * (weight * self.world))
        return out, weight

    # ------------------------------------------------------------------ train
    def train(self) -> int:
        from tqdm import tqdm

        from negtune.data.sampler import padding_waste
        from negtune.losses import LossContext

        r, t = self.recipe, self.recipe.train
        self.print(
            f"training {r.model.name_or_path} ({'peft ' + r.model.peft if self.is_peft else 'full'}; "
            f"{self.n_trainable:,}/{self.n_params:,} trainable) on {len(self.examples)} rows "
            f"({self.n_instances} instances); global batch {self.plan.per_device} x {self.world} proc x "
            f"{self.plan.grad_accum} accum = {self.plan.global_batch} ({str(self.acc.distributed_type).rsplit('.', 1)[-1]}); "
            f"{self.steps_per_epoch} steps/epoch, "
            f"{self.total_steps} steps; loss {self.c.loss_spec.name}; lr {t.lr:g} {t.scheduler}")
        self.bar = bar = tqdm(total=self.total_steps, initial=self.step, disable=not self.is_main, desc="train",
                              dynamic_ncols=True)
        ref_fn = self._reference_logits()
        kill_after = int(os.environ.get("NEGTUNE_TEST_SIGKILL_AFTER_STEP", "0"))  # tests only: simulate a crash
        window = _new_window()
        last_saved = None
        epoch, first_epoch = self.epoch, self.epoch
        done = self.step >= self.total_steps
        while not done and epoch < t.epochs:
            batches = self.sampler.steps(epoch)
            start = self.step_in_epoch if epoch == first_epoch else 0
            for i in range(start, len(batches)):
                micro_idx = self.sampler.micro_batches(batches[i], self.rank)
                micro = [self.to_device(self.collator([self.examples[j] for j in mb])) for mb in micro_idx]
                n_tok = [float(b["n_target_tokens"]) for b in micro]
                pad, slots = padding_waste([[self.examples.lengths[j] for j in mb] for mb in micro_idx])
                real = sum(float(b["attention_mask"].sum()) for b in micro)
                (global_tokens,) = self._reduce([sum(n_tok)])
                ctx = LossContext(reference_logits=ref_fn, step=self.step)
                loss_sum, comp_sum = 0.0, {}
                for a, batch in enumerate(micro):
                    last = a == len(micro) - 1
                    with contextlib.nullcontext() if last else self.acc.no_sync(self.model):
                        out, w = self.loss_step(batch, n_tok[a], global_tokens, len(micro), ctx)
                    loss_sum += float(out.loss.detach()) * w
                    for k, v in out.components.items():
                        comp_sum[k] = comp_sum.get(k, 0.0) + float(v) * w
                keys = sorted(comp_sum)
                red = self._reduce([loss_sum, real, pad, slots] + [comp_sum[k] for k in keys])
                step_loss, comps = red[0], {k: red[4 + n] for n, k in enumerate(keys)}
                if not math.isfinite(step_loss):
                    raise NonFiniteLoss(f"loss is {step_loss} at step {self.step + 1} (epoch {epoch + 1}, "
                                        f"batch {i + 1})")
                gnorm = None
                if t.max_grad_norm:
                    gnorm = float(self.acc.clip_grad_norm_(self.model.parameters(), t.max_grad_norm))
                    if not math.isfinite(gnorm):
                        raise NonFiniteLoss(f"gradient norm is {gnorm} at step {self.step + 1} "
                                            f"(epoch {epoch + 1}, batch {i + 1})")
                self.optimizer.step()
                self.scheduler.step()
                self.optimizer.zero_grad(set_to_none=True)
                self.step += 1
                bar.update(1)
                for k, v in (("loss", step_loss), ("tokens", red[1]), ("pad", red[2]), ("slots", red[3]), ("n", 1)):
                    window[k] += v
                end_of_epoch = i + 1 == len(batches)
                done = self.step >= self.total_steps
                if self.step % t.log_every_steps == 0 or done or end_of_epoch:
                    self._log(window, comps, gnorm, epoch, bar)
                    window = _new_window()
                if end_of_epoch:
                    last_saved = self.save(epoch + 1, 0)
                elif (t.save_every_steps and self.step % t.save_every_steps == 0) or done:
                    last_saved = self.save(epoch, i + 1)
                if kill_after and self.step == kill_after:
                    os.kill(os.getpid(), 9)
                if end_of_epoch and t.eval_at_epoch_end:
                    self.evaluate(last_saved)
                if done:
                    break
            epoch += 1
        bar.close()
        self.acc.wait_for_everyone()
        self.acc.end_training()
        self.print(f"done: {self.step} steps; checkpoints in {self.run_dir / 'checkpoints'}"
                   + (f" (last {last_saved.name})" if last_saved else ""))
        return 0

    def _log(self, w: dict, comps: dict, gnorm: Optional[float], epoch: int, bar: Any) -> None:
        dt = max(time.perf_counter() - w["t0"], 1e-9)
        n = max(w["n"], 1)
        lr = self.scheduler.get_last_lr()[0]
        waste = w["pad"] / w["slots"] if w["slots"] else 0.0
        metrics = {"train/loss": w["loss"] / n, "train/lr": lr, "train/tokens_per_s": w["tokens"] / dt,
                   "train/padding_waste": waste, "train/epoch": epoch + 1}
        if gnorm is not None:
            metrics["train/grad_norm"] = gnorm
        for k, v in comps.items():
            metrics[f"train/{k}"] = v
        if self.is_main:
            bar.set_postfix(loss=f"{w['loss'] / n:.4f}", lr=f"{lr:.2e}", tok_s=f"{w['tokens'] / dt:.0f}",
                            pad=f"{waste:.1%}")
            self.print(f"step {self.step}/{self.total_steps} epoch {epoch + 1} loss {w['loss'] / n:.4f} "
                       f"lr {lr:.3g} tokens/s {w['tokens'] / dt:.0f} padding {waste:.1%}"
                       + (f" grad_norm {gnorm:.3f}" if gnorm is not None else ""))
        self.acc.log(metrics, step=self.step)

    # ------------------------------------------------------------------ checkpoints
    def save(self, epoch: int, step_in_epoch: int) -> Path:
        from accelerate.utils import gather_object

        from negtune.checkpoint import checkpoint_name, prune, rng_state, save_checkpoint

        r = self.recipe
        path = self.run_dir / "checkpoints" / checkpoint_name(self.step)
        rngs = gather_object([rng_state()]) if self.world > 1 else [rng_state()]
        state_dict = self.acc.get_state_dict(self.model)  # collective under FSDP/DeepSpeed
        if self.is_main:
            unwrapped = self.acc.unwrap_model(self.model)
            if self.is_peft:
                from peft import get_peft_model_state_dict

                state_dict = get_peft_model_state_dict(unwrapped)
            trainer_state = {
                "step": self.step,
                "epoch": round(epoch + step_in_epoch / self.steps_per_epoch, 6),
                "kind": "adapter" if self.is_peft else "full",
                "base_model": self.base_model_id,
                "data_position": {"epoch": epoch, "step_in_epoch": step_in_epoch},
                "total_steps": self.total_steps,
                "steps_per_epoch": self.steps_per_epoch,
                "global_batch": self.plan.global_batch,
                "processes": self.world,
                "recipe_sha256": recipe_hash(r),
                "recipe_sha256_train": _train_hash(r),
                "loss": self.c.loss_spec.name,
            }
            save_checkpoint(path, model=unwrapped, state_dict=state_dict if not self.is_peft else None,
                            tokenizer=self.tokenizer, optimizer_state=self.optimizer.state_dict(),
                            scheduler_state=self.scheduler.state_dict(), rng_states=rngs,
                            trainer_state=trainer_state)
            removed = prune(self.run_dir, r.train.keep_last)
            self.print(f"saved {path}" + (f" (removed {', '.join(p.name for p in removed)})" if removed else ""))
        self.acc.wait_for_everyone()
        return path

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, ckpt: Path) -> None:
        """Epoch-end evaluation via the evaluator's in-process API, on the main process.

        Writes ``RUN_DIR/eval/<checkpoint>.json`` with the same fields ``negtune eval RUN_DIR``
        writes, so that command skips it later.
        """
        r = self.recipe
        if self.is_main:
            from negtune import jobs
            from negtune.checkpoint import read_state

            if not hasattr(self, "_eval_sets"):
                self._eval_sets = jobs.build_eval_sets(r)
            state = read_state(ckpt)
            info = {"run": str(self.run_dir), "step": state["step"], "epoch": state["epoch"],
                    "model": state["base_model"] if self.is_peft else str(ckpt / "model"),
                    "adapter": str(ckpt / "model") if self.is_peft else None}
            model = self.acc.unwrap_model(self.model)
            was_training = model.training
            model.eval()
            try:
                result = jobs.evaluate_recipe_eval(model, self.tokenizer, r, self.run_dir / "eval", name=ckpt.name,
                                                   checkpoint=ckpt.name, instances=self._eval_sets, info=info)
                jobs.write_run_summary(self.run_dir)
            finally:
                model.train(was_training)
            summary = result.get("summary", {}) if isinstance(result, dict) else {}
            self.print(f"eval {ckpt.name}: " + " ".join(f"{k} {v:.4f}" for k, v in summary.items()
                                                         if isinstance(v, float)))
            self.acc.log({f"eval/{k}": v for k, v in summary.items() if isinstance(v, (int, float))}, step=self.step)
        self.acc.wait_for_everyone()


def _other_accelerator() -> bool:
    import torch

    return any(getattr(getattr(torch, name, None), "is_available", lambda: False)()
               for name in ("xpu", "mps", "npu", "mlu"))


def _new_window() -> dict:
    return {"loss": 0.0, "tokens": 0.0, "pad": 0.0, "slots": 0.0, "n": 0, "t0": time.perf_counter()}


def _base_model_id(name_or_path: str) -> str:
    from negtune.models import resolve_model_path

    resolved = resolve_model_path(name_or_path)
    return str(Path(resolved).resolve()) if Path(resolved).is_dir() else resolved


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


# ============================================================================ entry point


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    overrides = list(args.overrides)
    if args.out:
        overrides.append(f"output_dir={args.out}")
    if args.resume:
        overrides.append(f"train.resume={args.resume}")
    recipe = load_recipe(args.recipe, overrides)
    checked = check_recipe(recipe, recipe.train.resume, world_size_from_env(), dry_run=args.dry_run)
    if args.dry_run:
        return dry_run(checked) if int(os.environ.get("RANK", "0")) == 0 else 0
    trainer = Trainer(checked)
    trainer.setup()
    try:
        return trainer.train()
    except NonFiniteLoss as err:
        if getattr(trainer, "bar", None) is not None:
            trainer.bar.close()  # the message gets its own line
        print(f"negtune: error: non-finite training: {err}; stopped without saving this state "
              f"(last good checkpoint kept in {trainer.run_dir / 'checkpoints'})", file=sys.stderr)
        return EXIT_NONFINITE


if __name__ == "__main__":
    sys.exit(exit_on_user_error(lambda: main(sys.argv[1:])))
