"""One optimizer step over a global batch: the loss, its weighting, the checks, the update.

Why its own module: this is where the objective is defined across micro-batches and
processes, the part a researcher comparing losses must be able to read in one place. The
trainer hands it this process's micro-batches of one global batch; it returns what to log.

Normalisation: a loss is a weighted sum of terms, each a sum over its own unit with the
micro-batch's count of that unit (``docs/losses.md``, "The loss contract"). After the first
micro-batch's forward names the terms, each term's unit is counted in every micro-batch of
this process and the counts are summed over processes (one all-reduce); every micro-batch
then backpropagates ``sum_k weight_k * total_k / global_count_k``. Summed over micro-batches
and processes that is each term's mean over the global batch: the same objective, and to
float rounding the same gradient, for 8 x 1, 4 x 2 or 2 processes x 4 x 1. DDP averages
gradients over processes, hence the factor ``world`` on the backward pass.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from negtune.errors import UserError
from negtune.losses.units import count_units


class NonFiniteLoss(Exception):
    """The loss or gradient norm was NaN/inf; the run stops without saving that state."""


@dataclass
class StepResult:
    loss: float  # the step's objective: sum of weight x each term's mean over the global batch
    components: dict[str, float] = field(default_factory=dict)  # terms' global means + other logged floats
    grad_norm: Optional[float] = None  # before clipping; None when clipping is off
    tokens: float = 0.0  # real (non-pad) tokens in the global batch
    slots: float = 0.0  # token slots incl. padding in the global batch


def _call_loss(loss_fn: Callable[..., Any], model: Any, batch: dict, ctx: Any, where: str) -> Any:
    """A loss that raises (a researcher's own code, often) ends the run with one line naming
    the loss and the step; the checkpoints saved so far stay as they are."""
    try:
        return loss_fn(model, batch, ctx)
    except UserError:
        raise
    except Exception as err:  # noqa: BLE001 - any failure inside the loss function
        text = (str(err).strip().splitlines() or [""])[0][:200]
        raise UserError(f"loss {getattr(loss_fn, 'name', loss_fn)} raised {type(err).__name__}: {text} at {where}; "
                        "checkpoints saved before it are kept") from None


def train_step(acc: Any, model: Any, optimizer: Any, scheduler: Any, loss_fn: Callable[..., Any],
               micro_batches: list[dict], ctx: Any, max_grad_norm: Optional[float], where: str) -> StepResult:
    """Forward and backward every micro-batch, all-reduce, check, clip and take the step.

    ``acc`` is the ``accelerate.Accelerator``; ``where`` names the step in error messages.
    """
    import torch

    world = acc.num_processes

    def reduce(values: list[float]) -> list[float]:
        t = torch.tensor(values, dtype=torch.float64)
        return (acc.reduce(t, reduction="sum") if world > 1 else t).tolist()

    names: list[str] = []  # term names, fixed by the first micro-batch
    global_count: dict[str, float] = {}
    totals: dict[str, float] = {}  # sum of each term's detached totals over this process
    weights: dict[str, float] = {}
    comp_sum: dict[str, float] = {}
    rows = [float(len(b["input_ids"])) for b in micro_batches]
    for a, batch in enumerate(micro_batches):
        last = a == len(micro_batches) - 1
        with contextlib.nullcontext() if last else acc.no_sync(model):
            out = _call_loss(loss_fn, model, batch, ctx, where)
            if a == 0:
                names = sorted(out.terms)
                units = [out.terms[k].unit for k in names]
                counted = reduce([sum(count_units(b, u) for b in micro_batches) for u in units] + [sum(rows)])
                global_count = dict(zip(names, counted[:-1]))
                global_rows = counted[-1]
                weights = {k: float(out.terms[k].weight) for k in names}
            elif sorted(out.terms) != names:
                raise UserError(f"loss {getattr(loss_fn, 'name', loss_fn)}: returned terms {sorted(out.terms)} for "
                                f"micro-batch {a + 1} but {names} for the first; every micro-batch must return the "
                                "same terms (a term with count 0 when a micro-batch has none of its units)")
            objective = [out.terms[k].total * (weights[k] / global_count[k]) for k in names
                         if weights[k] != 0 and global_count[k] > 0]
            if objective:
                acc.backward(sum(objective[1:], objective[0]) * world)
        for k in names:
            totals[k] = totals.get(k, 0.0) + float(out.terms[k].total.detach())
        for k, v in out.components.items():
            comp_sum[k] = comp_sum.get(k, 0.0) + float(v) * rows[a] / global_rows
    masks = [b["attention_mask"] for b in micro_batches]
    comp_keys = sorted(comp_sum)
    red = reduce([sum(float(m.sum()) for m in masks), sum(float(m.numel()) for m in masks)]
                 + [totals[k] for k in names] + [comp_sum[k] for k in comp_keys])
    means = {k: (red[2 + i] / global_count[k] if global_count[k] > 0 else 0.0) for i, k in enumerate(names)}
    components = {k: red[2 + len(names) + i] for i, k in enumerate(comp_keys)}
    components.update({k: v for k, v in means.items() if k != "loss"})  # the shorthands' single term
    result = StepResult(loss=sum(weights[k] * means[k] for k in names if weights[k] != 0), components=components,
                        tokens=red[0], slots=red[1])
    if not math.isfinite(result.loss):
        raise NonFiniteLoss(f"loss is {result.loss} at {where}")
    if max_grad_norm:
        result.grad_norm = float(acc.clip_grad_norm_(model.parameters(), max_grad_norm))
        if not math.isfinite(result.grad_norm):
            raise NonFiniteLoss(f"gradient norm is {result.grad_norm} at {where}")
    elif not all(bool(torch.isfinite(p.grad).all()) for p in model.parameters() if p.grad is not None):
        raise NonFiniteLoss(f"a gradient is NaN/inf at {where}")  # clipping is off: check before the update
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return result
