"""Deterministic, length-grouped global batches, split into per-process micro-batches.

Why our own sampler: the optimisation must not depend on how many processes run it. A
global batch (``per_device x processes x grad_accum`` rows) is chosen the same way whatever
the process count; only how its rows are dealt out changes. With the trainer's loss
normalisation (each loss term summed over the global batch, divided by the global batch's
count of its unit: ``negtune.training.step``) a 1-process and a 2-process run with the same
global batch take the same steps.

Per epoch: a permutation seeded by ``(seed, epoch)``; cut into mega-batches of
``mega_factor`` global batches; each mega-batch sorted by length (longest first) so that a
global batch holds rows of similar length; global batches are then shuffled (same seed) so
the long ones do not all come first. Inside a global batch, rows are already sorted; the
batch is cut into ``processes x grad_accum`` consecutive micro-batches of ``per_device``
rows, and micro-batch ``a * processes + p`` goes to process ``p`` at accumulation step ``a``:
each process gets a disjoint slice, neighbours in length share a micro-batch, and padding
stays small. The last incomplete global batch of an epoch is dropped (a different one each
epoch, since the permutation changes).
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Sequence


@dataclass(frozen=True)
class BatchPlan:
    per_device: int
    processes: int
    grad_accum: int

    @property
    def global_batch(self) -> int:
        return self.per_device * self.processes * self.grad_accum


def derive_grad_accum(global_batch_size: int | None, per_device: int, processes: int,
                      grad_accum: int) -> tuple[int, str | None]:
    """``grad_accum`` so that per_device x processes x grad_accum == global_batch_size.

    Returns ``(grad_accum, error)``; ``error`` is a message when it does not divide.
    """
    if global_batch_size is None:
        return grad_accum, None
    per_step = per_device * processes
    if global_batch_size % per_step:
        return grad_accum, (
            f"train.global_batch_size: {global_batch_size} is not divisible by per_device_batch_size "
            f"{per_device} x {processes} process(es) = {per_step}"
        )
    return global_batch_size // per_step, None


class GlobalBatchSampler:
    """``steps(epoch)`` → list of global batches (lists of dataset indices)."""

    def __init__(self, lengths: Sequence[int], plan: BatchPlan, seed: int,
                 group_by_length: bool = True, mega_factor: int = 50):
        self.lengths = list(lengths)
        self.plan = plan
        self.seed = seed
        self.group_by_length = group_by_length
        self.mega_factor = mega_factor

    def __len__(self) -> int:
        return len(self.lengths) // self.plan.global_batch

    def steps(self, epoch: int) -> list[list[int]]:
        g = self.plan.global_batch
        rng = random.Random(f"{self.seed}:{epoch}")
        order = list(range(len(self.lengths)))
        rng.shuffle(order)
        order = order[: (len(order) // g) * g]  # drop the incomplete tail
        if not self.group_by_length:
            return [order[i: i + g] for i in range(0, len(order), g)]
        mega = g * self.mega_factor
        batches: list[list[int]] = []
        for start in range(0, len(order), mega):
            # Sorted by length, so each global batch (and each micro-batch cut from it in
            # order) holds neighbours in length; shuffling whole batches keeps that.
            chunk = sorted(order[start: start + mega], key=lambda i: (-self.lengths[i], i))
            batches.extend(chunk[i: i + g] for i in range(0, len(chunk), g))
        rng.shuffle(batches)
        return batches

    def micro_batches(self, global_batch: list[int], rank: int) -> list[list[int]]:
        """This process's ``grad_accum`` micro-batches of one global batch."""
        p, n, k = self.plan.per_device, self.plan.processes, self.plan.grad_accum
        chunks = [global_batch[i * p: (i + 1) * p] for i in range(n * k)]
        return [chunks[a * n + rank] for a in range(k)]


def padding_waste(lengths: Sequence[Sequence[int]]) -> tuple[int, int]:
    """``(pad tokens, total tokens)`` for micro-batches given as lists of row lengths."""
    pad = total = 0
    for rows in lengths:
        if rows:
            longest = max(rows)
            total += longest * len(rows)
            pad += sum(longest - r for r in rows)
    return pad, total
