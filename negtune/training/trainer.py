"""The trainer: ``setup()`` -> ``train()``, saving checkpoints and evaluating as it goes.

Shaped like torchtune's ``recipes/lora_finetune_distributed.py`` (setup, train, save; the
step in one function: ``negtune.training.step.train_step``) and kept small like nanoGPT: no
callbacks, no plugin system. The loss is whatever ``negtune.losses.resolve_loss`` returned;
the trainer only asks it what data it ``needs``. One instance per process. Beside the loop:
``negtune.training.reference`` (the frozen base model for losses that need it) and
``negtune.training.epoch_eval`` (the evaluation after each epoch).

Optimisation details that make runs comparable:

* global batch = per_device_batch_size x processes x grad_accum; with
  ``train.global_batch_size`` set, grad_accum is derived, so the steps do not depend on the
  process count (``negtune.data.sampler``);
* the step's objective is the same for any split into micro-batches and processes
  (``negtune.training.step``), so 1 and N processes agree;
* the last incomplete global batch of each epoch is dropped (the permutation changes per
  epoch, so a different tail is dropped each time).
"""
from __future__ import annotations

import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

from negtune.config import recipe_hash, recipe_to_dict, save_resolved
from negtune.data.instances import Instance
from negtune.errors import UserError
from negtune.io import claim_dir
from negtune.locking import DirLock
from negtune.training.checks import Checked, train_hash
from negtune.training.epoch_eval import evaluate_checkpoint
from negtune.training.reference import frozen_copy, reference_logits
from negtune.training.state import DataPosition, TrainerState
from negtune.training.step import NonFiniteLoss, StepResult, train_step


class Trainer:
    """``setup()`` then ``train()``. ``instances`` replaces building the recipe's data (benchmarks,
    notebooks); ``save=False`` skips checkpoints (benchmarks time the steps only)."""

    def __init__(self, checked: Checked, instances: Optional[Sequence[Instance]] = None, save: bool = True):
        self.c = checked
        self.recipe = checked.recipe
        self.run_dir = Path(self.recipe.output_dir)
        self.given_instances = list(instances) if instances is not None else None
        self.saving = save
        self.bar: Any = None
        self.created_run_dir = False
        self.lock: Optional[DirLock] = None

    # ------------------------------------------------------------------ setup
    def setup(self) -> None:
        import torch
        from accelerate import Accelerator
        from accelerate.utils import ProjectConfiguration

        r, t = self.recipe, self.recipe.train
        # accelerate 1.15 sets ACCELERATE_USE_CPU only for its single-process launcher; a
        # multi-process launch on a machine without GPUs would otherwise fall back to N
        # independent single-process runs. Ask for CPU DDP (gloo) explicitly then.
        cpu = self.c.processes > 1 and not torch.cuda.is_available() and not _other_accelerator()
        self.acc = Accelerator(cpu=cpu, log_with=list(t.trackers) or None, project_config=ProjectConfiguration(
            project_dir=str(self.run_dir), logging_dir=str(self.run_dir / "logs")))
        if self.acc.num_processes != self.c.processes:  # WORLD_SIZE disagreed with accelerate
            raise UserError(f"{r.source}: processes: expected {self.c.processes}, accelerate reports "
                            f"{self.acc.num_processes}")
        self.rank, self.world, self.is_main = self.acc.process_index, self.acc.num_processes, self.acc.is_main_process
        self.dist = str(self.acc.distributed_type).rsplit(".", 1)[-1]
        if self.c.resume_from is not None and self.dist in ("FSDP", "DEEPSPEED"):
            raise UserError(f"train.resume: resuming is supported for single-process and DDP runs, not {self.dist} "
                            "(optimizer state is saved from rank 0 only); start a new run or use DDP")
        for flag, name in (("ACCELERATE_USE_FSDP", "FSDP"), ("ACCELERATE_USE_DEEPSPEED", "DEEPSPEED")):
            if os.environ.get(flag, "false").lower() == "true" and self.dist != name:
                self.print(f"warning: the launch config asks for {name}, but accelerate runs it as {self.dist} here "
                           "(FSDP/DeepSpeed need GPUs); training proceeds as plain data parallel")
        torch.manual_seed(r.seed)  # model-side init (LoRA A matrices) is the same on every process
        writes = self.saving or self.given_instances is None
        if writes:
            self._main_first(self._claim_run_dir)
        try:
            self._setup_data()
            self._setup_model()
            self._setup_batches()
            self._setup_optimizer()
            self.step, self.position = 0, DataPosition(0, 0)
            if self.c.resume_from is not None:
                self._resume(self.c.resume_from)
        except UserError:
            if writes and self.is_main and self.created_run_dir:
                shutil.rmtree(self.run_dir, ignore_errors=True)  # a bad input leaves nothing behind
            raise
        if t.trackers:
            config = {k: (v if isinstance(v, (int, float, str, bool)) else json.dumps(v))
                      for k, v in _flatten(recipe_to_dict(r)).items()}
            self.acc.init_trackers("train", config=config)

    def _claim_run_dir(self) -> None:
        """Make the run directory ours and lock it for this run's life; clear killed saves."""
        self.created_run_dir = not self.run_dir.exists()
        claim_dir(self.run_dir, "run", "run directory (output_dir)")
        self.lock = DirLock(self.run_dir, "training").acquire()
        for stale in [*self.run_dir.glob(".*.tmp"), *self.run_dir.glob("checkpoints/.*.tmp"),
                      *self.run_dir.glob("checkpoints/.*.old")]:
            shutil.rmtree(stale, ignore_errors=True)  # left by a save that was killed: never trusted

    def _main_first(self, fn: Callable[[], Any]) -> Any:
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
        from negtune.data.build import build_dataset, load_instances, summary_lines, write_dataset
        from negtune.models import load_tokenizer

        r = self.recipe
        data_dir = self.run_dir / "data"

        def build() -> None:
            if self.c.resume_from is not None and (data_dir / "instances.jsonl").is_file():
                return  # a resumed run trains on exactly the data it started with
            built = build_dataset(r.data, r.seed, r.eval)  # checks overlap with the eval sets
            write_dataset(built.instances, data_dir, r, sources=built.sources, report=built.report,
                          warnings=built.warnings)
            for line in summary_lines(built):
                self.print(f"data {line}")
            save_resolved(r, self.run_dir)

        if self.given_instances is None:
            self._main_first(build)
        self.instances = self.given_instances if self.given_instances is not None else load_instances(data_dir)
        self.tokenizer = load_tokenizer(r.model.name_or_path, r.model.revision)

    def _setup_batches(self) -> None:
        """Tokenized rows, collator and sampler: what the loop draws its micro-batches from."""
        from negtune.data.collate import Collator, TrainExamples
        from negtune.data.sampler import BatchPlan, GlobalBatchSampler
        from negtune.tokenization import effective_max_length

        r = self.recipe
        needs = self.c.loss_spec.needs
        # The evaluator's cut: min(model.max_length, the model's limit), eval.tokenization's split.
        max_length = effective_max_length(self.model, self.tokenizer, r.model.max_length)
        mode = r.eval.tokenization
        self.examples = TrainExamples(self.instances, needs, tokenizer=self.tokenizer, max_length=max_length,
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

    def _setup_model(self) -> None:
        from negtune.models import load_for_training, resolve_model_path

        m = self.recipe.model
        self.is_peft = m.peft in ("lora", "qlora")
        model = load_for_training(m, self.c.model_type)
        resolved = resolve_model_path(m.name_or_path)  # once: resolving may hash a GGUF file
        self.base_model_id = str(Path(resolved).resolve()) if Path(resolved).is_dir() else resolved
        self.ref_model = None
        if "reference_model" in self.c.loss_spec.needs and not self.is_peft:
            self.ref_model = frozen_copy(model, self.acc.device)  # LoRA/QLoRA: the adapter is switched off instead
        model.train()
        self.n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        self.n_params = sum(p.numel() for p in model.parameters())
        self.model = model  # prepared together with the optimizer below

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

        # Stepped by train_step once per optimizer step (not passed to prepare(), which would
        # step it once per process).
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        self.model, self.optimizer = self.acc.prepare(self.model, opt)

    def _resume(self, path: Path) -> None:
        from negtune.training.checkpoint import load_model_weights, load_training_state, set_rng_state

        st = load_training_state(path)
        state: TrainerState = st["trainer_state"]
        load_model_weights(self.acc.unwrap_model(self.model), path, state.kind)
        self.optimizer.load_state_dict(st["optimizer"])
        self.scheduler.load_state_dict(st["scheduler"])
        rng = st["rng"]
        set_rng_state(rng[self.rank] if self.rank < len(rng) else rng[0])
        self.step, self.position = state.step, state.data_position
        self.print(f"resumed from {path} at step {self.step} (epoch {self.position.epoch + 1}, "
                   f"next batch {self.position.step_in_epoch + 1})")

    # ------------------------------------------------------------------ train
    def train(self) -> int:
        from tqdm import tqdm

        from negtune.losses import LossContext

        t = self.recipe.train
        self._announce()
        self.bar = tqdm(total=self.total_steps, initial=self.step, disable=not self.is_main, desc="train",
                        dynamic_ncols=True)
        reference = None  # the frozen base model's logits, for losses that declare "reference_model"
        if "reference_model" in self.c.loss_spec.needs:
            reference = reference_logits(self.ref_model, self.acc.unwrap_model(self.model))
        window: list[StepResult] = []
        t0, last_saved = time.perf_counter(), None
        for epoch, i, global_batch in self._batches():
            micro = [self._collate(mb) for mb in self.sampler.micro_batches(global_batch, self.rank)]
            result = train_step(self.acc, self.model, self.optimizer, self.scheduler, self.c.loss_spec, micro,
                                LossContext(reference_logits=reference, step=self.step), t.max_grad_norm,
                                where=f"step {self.step + 1} (epoch {epoch + 1}, batch {i + 1})")
            self.step += 1
            self.bar.update(1)
            window.append(result)
            end_of_epoch, done = i + 1 == self.steps_per_epoch, self.step >= self.total_steps
            if self.step % t.log_every_steps == 0 or done or end_of_epoch:
                self._log(window, time.perf_counter() - t0, epoch)
                window, t0 = [], time.perf_counter()
            if end_of_epoch or done or (t.save_every_steps and self.step % t.save_every_steps == 0):
                last_saved = self.save(DataPosition(epoch + 1, 0) if end_of_epoch else DataPosition(epoch, i + 1))
            if end_of_epoch and t.eval_at_epoch_end and last_saved is not None:
                self.evaluate(last_saved)
            if done:
                break
        self.bar.close()
        self.acc.wait_for_everyone()
        self.acc.end_training()
        self.print(f"done: {self.step} steps; checkpoints in {self.run_dir / 'checkpoints'}"
                   + (f" (last {last_saved.name})" if last_saved else ""))
        return 0

    def _batches(self) -> Iterator[tuple[int, int, list[int]]]:
        """(epoch, index in epoch, global batch) from the current data position on."""
        for epoch in range(self.position.epoch, self.recipe.train.epochs):
            batches = self.sampler.steps(epoch)
            start = self.position.step_in_epoch if epoch == self.position.epoch else 0
            for i in range(start, len(batches)):
                if self.step >= self.total_steps:  # e.g. resumed from the final checkpoint
                    return
                yield epoch, i, batches[i]

    def _collate(self, rows: list[int]) -> dict:
        """One micro-batch, on this process's device."""
        batch = self.collator([self.examples[j] for j in rows])
        return {k: v.to(self.acc.device) for k, v in batch.items()}

    # ------------------------------------------------------------------ logging
    def close(self) -> None:
        """Close the progress bar (so an error gets its own line) and release the run's lock."""
        if self.bar is not None:
            self.bar.close()
        if self.lock is not None:
            self.lock.release()

    def print(self, msg: str) -> None:
        if self.is_main:
            from tqdm import tqdm

            tqdm.write(msg)

    def _announce(self) -> None:
        r, t = self.recipe, self.recipe.train
        self.print(
            f"training {r.model.name_or_path} ({'peft ' + r.model.peft if self.is_peft else 'full'}; "
            f"{self.n_trainable:,}/{self.n_params:,} trainable) on {len(self.examples)} rows "
            f"({len(self.instances)} instances); global batch {self.plan.per_device} x {self.world} proc x "
            f"{self.plan.grad_accum} accum = {self.plan.global_batch} ({self.dist}); "
            f"{self.steps_per_epoch} steps/epoch, {self.total_steps} steps; loss {self.c.loss_spec.name}; "
            f"lr {t.lr:g} {t.scheduler}")

    def _log(self, window: list[StepResult], seconds: float, epoch: int) -> None:
        last = window[-1]
        loss = sum(w.loss for w in window) / len(window)
        tokens, slots = sum(w.tokens for w in window), sum(w.slots for w in window)
        waste = (slots - tokens) / slots if slots else 0.0
        tok_s = tokens / max(seconds, 1e-9)
        lr = self.scheduler.get_last_lr()[0]
        metrics = {"train/loss": loss, "train/lr": lr, "train/tokens_per_s": tok_s,
                   "train/padding_waste": waste, "train/epoch": epoch + 1,
                   **{f"train/{k}": v for k, v in last.components.items()}}
        if last.grad_norm is not None:
            metrics["train/grad_norm"] = last.grad_norm
        if self.is_main:
            self.bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", tok_s=f"{tok_s:.0f}", pad=f"{waste:.1%}")
            self.print(f"step {self.step}/{self.total_steps} epoch {epoch + 1} loss {loss:.4f} lr {lr:.3g} "
                       f"tokens/s {tok_s:.0f} padding {waste:.1%}"
                       + (f" grad_norm {last.grad_norm:.3f}" if last.grad_norm is not None else ""))
        self.acc.log(metrics, step=self.step)

    # ------------------------------------------------------------------ checkpoints
    def save(self, position: DataPosition) -> Optional[Path]:
        """Write ``checkpoints/step-N`` (model or adapter, optimizer, scheduler, RNG, state).

        Every process checks the trainable weights first (they are the same on every process),
        so a non-finite model is never saved as a good checkpoint."""
        import torch
        from accelerate.utils import gather_object

        from negtune.training.checkpoint import checkpoint_name, prune, rng_state, save_checkpoint

        if not self.saving:
            return None
        if not all(bool(torch.isfinite(p).all()) for p in self.model.parameters() if p.requires_grad):
            raise NonFiniteLoss(f"the trainable weights are NaN/inf after step {self.step}; not saving them")
        r = self.recipe
        path = self.run_dir / "checkpoints" / checkpoint_name(self.step)
        rngs = gather_object([rng_state()]) if self.world > 1 else [rng_state()]
        state_dict = self.acc.get_state_dict(self.model)  # collective under FSDP/DeepSpeed
        if self.is_main:
            unwrapped = self.acc.unwrap_model(self.model)
            if self.is_peft:
                from peft import get_peft_model_state_dict

                state_dict = get_peft_model_state_dict(unwrapped)
            state = TrainerState(
                step=self.step, epoch=round(position.epoch + position.step_in_epoch / self.steps_per_epoch, 6),
                kind="adapter" if self.is_peft else "full", base_model=self.base_model_id, data_position=position,
                total_steps=self.total_steps, steps_per_epoch=self.steps_per_epoch,
                global_batch=self.plan.global_batch, processes=self.world, recipe_sha256=recipe_hash(r),
                recipe_sha256_train=train_hash(r), loss=self.c.loss_spec.name)
            save_checkpoint(path, model=unwrapped, state_dict=state_dict if not self.is_peft else None,
                            tokenizer=self.tokenizer, optimizer_state=self.optimizer.state_dict(),
                            scheduler_state=self.scheduler.state_dict(), rng_states=rngs, trainer_state=state)
            removed = prune(self.run_dir, r.train.keep_last)
            self.print(f"saved {path}" + (f" (removed {', '.join(p.name for p in removed)})" if removed else ""))
        self.acc.wait_for_everyone()
        return path

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, ckpt: Path) -> None:
        """Epoch-end evaluation on the main process (``negtune.training.epoch_eval``): writes
        ``RUN_DIR/eval/<checkpoint>.json`` as ``negtune eval RUN_DIR`` would, so it skips it later."""
        if self.is_main:
            from negtune.evaluation.sets import build_eval_sets

            if not hasattr(self, "_eval_sets"):
                self._eval_sets = build_eval_sets(self.recipe)  # once per run
            summary = evaluate_checkpoint(self.acc.unwrap_model(self.model), self.tokenizer, self.recipe,
                                          self.run_dir, ckpt, self.is_peft, self._eval_sets)
            self.print(f"eval {ckpt.name}: " + " ".join(f"{k} {v:.4f}" for k, v in summary.items()))
            self.acc.log({f"eval/{k}": v for k, v in summary.items()}, step=self.step)
        self.acc.wait_for_everyone()


def _other_accelerator() -> bool:
    import torch

    return any(getattr(getattr(torch, name, None), "is_available", lambda: False)()
               for name in ("xpu", "mps", "npu", "mlu"))


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out
