"""Paired comparisons of two models on the same items: B − A with a paired-bootstrap
interval, and the exact McNemar test for binary outcomes.

Why paired: two models answering the same questions share the items' difficulty; drawing
the same items for both in every resample cancels that shared variance out of the
difference, which is far more sensitive than comparing two independent intervals. The
draws are those of ``negtune.evaluation.stats`` (``task_seed(seed, task)`` per task), so
a comparison and the intervals in the results file resample the same items.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Mapping, Optional, Sequence

import numpy as np

from negtune.evaluation.stats import (LEVEL, METRICS, RESAMPLES, SEED, Arrays, Interval, bootstrap_indices,
                                      macro_samples, percentile_interval, task_metrics, task_seed)

_SMALLEST_POSITIVE = math.ulp(0.0)  # a p-value below ~5e-324 is reported as this upper bound


@dataclass(frozen=True)
class Comparison:
    """B against A on the same items: ``diff = b - a`` (positive: B higher) and its paired
    interval. For a binary outcome, the discordant counts ``b01`` (A wrong, B right) and
    ``b10`` (A right, B wrong) and the exact McNemar ``p_value``; None otherwise."""

    a: float
    b: float
    diff: float
    interval: Optional[Interval]
    n_items: int
    b01: Optional[int] = None
    b10: Optional[int] = None
    p_value: Optional[float] = None


StatFn = Callable[..., np.ndarray]  # vectorised: arrays [..., n] -> values [...]


def compare_metric(stat_fn: StatFn, arrays_a: Sequence[np.ndarray], arrays_b: Sequence[np.ndarray], *,
                   resamples: int = RESAMPLES, seed: int = SEED, level: float = LEVEL) -> Comparison:
    """Paired-bootstrap interval of ``stat_fn(*arrays_b) - stat_fn(*arrays_a)``: every array
    of both models is aligned on the same items, and each resample applies one set of item
    indices to all of them."""
    n = len(arrays_a[0])
    idx = bootstrap_indices(n, resamples, seed)
    point_a, point_b = float(stat_fn(*arrays_a)), float(stat_fn(*arrays_b))
    diffs = stat_fn(*(x[idx] for x in arrays_b)) - stat_fn(*(x[idx] for x in arrays_a))
    return Comparison(a=point_a, b=point_b, diff=point_b - point_a,
                      interval=percentile_interval(diffs, level), n_items=n)


def _share(x: np.ndarray) -> np.ndarray:
    return x.mean(axis=-1)


def compare_binary(a: np.ndarray, b: np.ndarray, *, resamples: int = RESAMPLES, seed: int = SEED,
                   level: float = LEVEL) -> Comparison:
    """Compare two models' rate of a binary outcome on the same items (``a[i]`` / ``b[i]``:
    model A / B got item i right, or flipped it, ...).

    Why both an interval and a test: the interval sizes the effect; the exact McNemar test,
    informed only by the discordant items, gives a valid p-value even when they are few.
    """
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    result = compare_metric(_share, (a.astype(np.float64),), (b.astype(np.float64),),
                            resamples=resamples, seed=seed, level=level)
    b01, b10 = int(np.count_nonzero(~a & b)), int(np.count_nonzero(a & ~b))
    # diff from the counts: exactly 0.0 for identical answers.
    return Comparison(a=result.a, b=result.b, diff=(b01 - b10) / len(a), interval=result.interval,
                      n_items=len(a), b01=b01, b10=b10, p_value=mcnemar_exact(b01, b10))


def compare_macro(per_task_a: Mapping[str, Arrays], per_task_b: Mapping[str, Arrays], *,
                  resamples: int = RESAMPLES, seed: int = SEED, level: float = LEVEL) -> dict[str, Comparison]:
    """Paired, stratified comparison of the macro METRICS (B − A). Both models cover the same
    tasks with aligned items; each task is resampled from ``task_seed(seed, task)`` (the
    draws of ``stats.macro_intervals``) and the same indices are applied to both models."""
    samples_a, samples_b = {}, {}
    for task, arrays_a in per_task_a.items():
        idx = bootstrap_indices(len(next(iter(arrays_a.values()))), resamples, task_seed(seed, task))
        samples_a[task] = task_metrics({k: x[idx] for k, x in arrays_a.items()})
        samples_b[task] = task_metrics({k: x[idx] for k, x in per_task_b[task].items()})
    macro_a, macro_b = macro_samples(samples_a), macro_samples(samples_b)
    point_a = macro_samples({t: task_metrics(arrs) for t, arrs in per_task_a.items()})
    point_b = macro_samples({t: task_metrics(arrs) for t, arrs in per_task_b.items()})
    n_items = sum(len(next(iter(arrs.values()))) for arrs in per_task_a.values())
    return {name: Comparison(a=float(point_a[name]), b=float(point_b[name]),
                             diff=float(point_b[name] - point_a[name]),
                             interval=percentile_interval(macro_b[name] - macro_a[name], level), n_items=n_items)
            for name in METRICS if name in macro_a and name in macro_b}


def mcnemar_exact(b: int, c: int) -> float:
    """Exact two-sided McNemar p-value from the discordant counts ``b`` and ``c``.

    Under H0 (both models equally accurate) each of the ``n = b + c`` discordant items
    favours either model with probability 1/2, so::

        p = min(1, 2 * P[X <= min(b, c)]),  X ~ Binomial(n, 1/2)
          = min(1, 2 * sum_{i=0}^{min(b,c)} C(n, i) / 2^n)

    ``b + c == 0`` gives 1.0; ``b=1, c=9`` gives exactly 0.021484375. Why exact rather than
    the chi-square version: a single task typically has few discordant items, where the
    asymptotic test is unreliable. Computed with exact big integers (a correctly rounded
    int / int division), so it neither overflows nor loses precision.
    """
    n, m = b + c, min(b, c)
    if n == 0 or 2 * m >= n - 1:  # b == c or |b - c| == 1: 2 P[X <= min] >= 1 by symmetry
        return 1.0
    term = tail = 1  # C(n, 0); C(n, i+1) = C(n, i) (n - i) / (i + 1), exact
    for i in range(m):
        term = term * (n - i) // (i + 1)
        tail += term
    return min(1.0, max((2 * tail) / (1 << n), _SMALLEST_POSITIVE))
