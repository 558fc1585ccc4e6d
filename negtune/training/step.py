"""One optimizer step over a global batch: the loss, its weighting, the checks, the update.

Why its own module: this is where the objective is defined across micro-batches and
processes, the part a researcher comparing losses must be able to read in one place. The
trainer hands it this process's micro-batches of one global batch; it returns what to log.

Weighting: a loss reporting ``n_tokens`` (a per-token mean) is weighted by its micro-batch's
share of the global batch's target tokens, so the step optimises the sum of token losses
divided by the global batch's target tokens, whatever the split into micro-batches and
processes; other losses weigh micro-batches equally. DDP averages gradients over
processes, hence the factor ``world`` on the backward pass.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from negtune.errors import UserError


class NonFiniteLoss(Exception):
    """The loss or gradient norm was NaN/inf; the run stops without saving that state."""


@dataclass
class StepResult:
    loss: float  # the step's loss (weighted over micro-batches, summed over processes)
    components: dict[str, float] = field(default_factory=dict)
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

    n_tok = [float(b["n_target_tokens"]) for b in micro_batches]
    (global_tokens,) = reduce([sum(n_tok)])
    loss_sum, comp_sum = 0.0, {}
    for a, batch in enumerate(micro_batches):
        last = a == len(micro_batches) - 1
        with contextlib.nullcontext() if last else acc.no_sync(model):
            out = _call_loss(loss_fn, model, batch, ctx, where)
            if out.n_tokens is not None and global_tokens > 0:
                weight = n_tok[a] / global_tokens
            else:
                weight = 1.0 / (len(micro_batches) * world)
            acc.backward(out.loss * (weight * world))
        loss_sum += float(out.loss.detach()) * weight
        for k, v in out.components.items():
            comp_sum[k] = comp_sum.get(k, 0.0) + float(v) * weight
    masks = [b["attention_mask"] for b in micro_batches]
    keys = sorted(comp_sum)
    red = reduce([loss_sum, sum(float(m.sum()) for m in masks), sum(float(m.numel()) for m in masks)]
                 + [comp_sum[k] for k in keys])
    result = StepResult(loss=red[0], components={k: red[3 + n] for n, k in enumerate(keys)},
                        tokens=red[1], slots=red[2])
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
