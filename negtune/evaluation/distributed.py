"""Evaluation across processes: ``accelerate launch --num_processes N -m negtune.cli eval ...``.

Why this shape: rank classification has no cross-item dependency, so processes need no
model wrapping (no DDP), only a process group to gather results. Two ways to split work:

* **items** (one model or one checkpoint): every process encodes all items, the same
  token-balanced assignment (``negtune.evaluation.scoring.shard_items``: largest item first,
  to the least-loaded process) gives each process its share, each scores its share, and the
  scores are all-gathered; rank 0 writes the results file. Scores equal a one-process run's
  to float rounding (different batch compositions), accuracies are identical.
* **checkpoints** (``negtune eval RUN_DIR``): ``split_checkpoints`` gives each process whole
  checkpoints, round robin, for as many as divide evenly; each process loads only its own
  checkpoints and writes their results files (bit-identical to a one-process run, no
  communication per item). The remainder (fewer checkpoints than processes, e.g. the base
  model alone) is split by items, so no process idles. Why not checkpoints only: with 3
  checkpoints on 2 processes one process would do 2 and the other wait.

Process group: launched with ``WORLD_SIZE`` > 1 (accelerate/torchrun), ``accelerate``'s
``PartialState`` sets it up; on a machine without GPUs it is asked for CPU (gloo), as the
trainer does. A ``UserError`` on one process is shared with all (``all_ok``), so no process
waits forever for a failed one.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence, TypeVar

from negtune.errors import UserError

T = TypeVar("T")


@dataclass
class Processes:
    rank: int = 0
    world: int = 1
    device: Any = None  # this process's device when distributed (None: leave the model where it is)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def shard(self) -> Optional[tuple[int, int]]:
        return (self.rank, self.world) if self.world > 1 else None

    def gather(self, obj: Any) -> list[Any]:
        """Every process's ``obj``, in rank order, on every process."""
        if self.world == 1:
            return [obj]
        import torch.distributed as dist

        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()

    def all_ok(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` here; if it raised a UserError on any process, raise it on every process."""
        try:
            value, error = fn(), None
        except UserError as err:
            value, error = None, str(err)
        errors = [e for e in self.gather(error) if e is not None]
        if errors:
            raise UserError(errors[0])
        return value  # type: ignore[return-value]


def _cpu_only() -> bool:
    import torch

    if torch.cuda.is_available():
        return False
    return not any(getattr(getattr(torch, name, None), "is_available", lambda: False)()
                   for name in ("xpu", "mps", "npu", "mlu"))


_CURRENT: Optional[Processes] = None


def processes() -> Processes:
    """This process's place in the launch (one process unless ``WORLD_SIZE`` > 1)."""
    global _CURRENT
    if _CURRENT is None:
        if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
            _CURRENT = Processes()
        else:
            from accelerate import PartialState

            state = PartialState(cpu=_cpu_only())
            _CURRENT = Processes(state.process_index, state.num_processes, state.device)
    return _CURRENT


def merge_scores(parts: Sequence[Sequence[Sequence[Any]]]) -> list[list[Any]]:
    """Per-process score lists (None where another process scored the item) -> one full list."""
    merged = [list(p) for p in parts[0]]
    for part in parts[1:]:
        for i, opts in enumerate(part):
            if opts and opts[0] is not None:
                merged[i] = list(opts)
    missing = [i for i, opts in enumerate(merged) if any(s is None for s in opts)]
    if missing:
        raise RuntimeError(f"distributed scoring: {len(missing)} items were scored by no process")
    return merged


def split_checkpoints(names: Sequence[str], world: int) -> tuple[dict[int, list[str]], list[str]]:
    """``({rank: whole checkpoints}, checkpoints split by items)``: round robin over the first
    ``world * (len // world)`` names, the rest shared."""
    whole = (len(names) // world) * world
    own = {r: [n for i, n in enumerate(names[:whole]) if i % world == r] for r in range(world)}
    return own, list(names[whole:])
