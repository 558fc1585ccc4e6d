"""``--dry-run``: what a recipe would train, how, and for how many steps.

Why: before a multi-hour run on rented GPUs, a researcher should see the model, the LoRA
targets, the loss, the data counts, the batch arithmetic, the step count and where
checkpoints go, offline and in a second. Local data is built and counted; hub data sets are
only announced (their size is bounded by ``data.max_instances``). No weights are loaded.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from negtune.config import recipe_hash
from negtune.data.build import build_instances
from negtune.data.tasks import get_task
from negtune.errors import UserError
from negtune.hub import hub_mirror
from negtune.models import LORA_TARGETS
from negtune.training.checks import Checked


def print_plan(c: Checked) -> int:
    """Print the plan: what would be trained, how, and for how many steps. No weights, no network."""
    r = c.recipe
    t, m, d = r.train, r.model, r.data
    lines = [f"recipe        {r.source} (sha256 {recipe_hash(r)[:12]})", f"output_dir    {r.output_dir}"]
    arch = c.model_type + ("" if c.model_type_certain else " (guessed from the name; config not available offline)")
    lines.append(f"model         {m.name_or_path}  architecture={arch}  dtype={m.dtype}  "
                 f"gradient_checkpointing={m.gradient_checkpointing}  max_length={m.max_length}")
    if m.peft == "none":
        lines.append("peft          none (full fine-tuning)")
    else:
        targets = m.lora.target_modules or LORA_TARGETS.get(c.model_type, ["<set model.lora.target_modules>"])
        extra = " 4-bit nf4 (bitsandbytes), double quant, compute dtype " + m.dtype if m.peft == "qlora" else ""
        lines.append(f"peft          {m.peft}: r={m.lora.r} alpha={m.lora.alpha} dropout={m.lora.dropout} "
                     f"targets={','.join(targets)}{extra}")
    needs = (sorted(c.loss_spec.needs) or "-") if c.loss_spec.imported else "? (user code is not imported in a dry run)"
    lines.append(f"loss          {c.loss_spec.name} {c.loss_spec.args or ''} needs={needs}")
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
    mirror = hub_mirror(d.hub_mirror)
    for task in hub:
        spec = get_task(task)
        if spec.hub is None:
            raise UserError(f"{r.source}: data.files.{task}: task {task} has no hub source; give a local file")
        hub_id = spec.hub.path + (f" ({spec.hub.name})" if spec.hub.name else "")
        per = (d.max_instances or 0) * (len(d.variants) if "paired" not in c.loss_spec.needs else 1)
        n_rows += per
        estimated = True
        where = f"the clone {Path(mirror.path) / spec.hub.path}" + (f" ({spec.hub.name})" if spec.hub.name else "") if mirror else hub_id
        lines.append(f"data (hub)    {task}: will be {'read' if mirror else 'fetched'} from {where} split "
                     f"{spec.hub.split_for(d.split)}; at most {per if d.max_instances else '?'} rows "
                     f"(data.max_instances cap)")
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
    source = f"the paper's CSVs in {r.eval.paper_csv_dir}" if r.eval.paper_csv_dir else f"split {r.eval.split}"
    ev = (f"at epoch end on {', '.join(r.eval.tasks) or '-'}{' + csv sets' if r.eval.csv else ''} "
          f"({', '.join(r.eval.variants)}, {source})" if t.eval_at_epoch_end else "off (negtune eval RUN_DIR)")
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
