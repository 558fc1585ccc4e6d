"""Confidence intervals for the accuracies and paired metrics of one model.

Why: the per-task numbers are point estimates on a few hundred items (the demo test set
has 98), so a 95% interval on one accuracy is several points wide and two rows of a table
can differ by chance. Every number the results file, the summaries and the report carry
gets an interval; comparisons of two models live in ``negtune.evaluation.comparisons``.

Data model. One task's outcomes are float arrays aligned over its items (the union of the
items present under the original and/or the negated prompt, matched by pair key), with
NaN where an item is absent, so the point estimates below equal ``compute_metrics``'
exactly (each accuracy over all items of its variant, the pair metrics over pairs):

* ``original[i]`` / ``negated[i]``: 1.0 if the pick under that prompt was correct, else 0.0;
* ``flipped[i]``: 1.0 if the picked option *text* differs between the two prompts.

    original_acc = nanmean(original)       negated_acc = nanmean(negated)
    mean         = (original_acc + negated_acc) / 2
    both_correct = nanmean(original * negated)   (NaN unless paired)
    flip_rate    = nanmean(flipped)

Methods (documented in the results file's ``intervals`` entry):

* a single accuracy: the Wilson score interval (closed form, no resampling);
* ``mean``, ``both_correct``, ``flip_rate`` and the macro numbers: a percentile bootstrap
  over *items*, 2000 resamples, both prompts of an item drawn together (so the pairing is
  kept), from ``np.random.Generator(PCG64(task_seed(0, task)))``: deterministic, the same
  draws for every model evaluated on a task, independent of the other tasks;
* macro numbers (each task counts once): a stratified bootstrap, items resampled within
  each task, resample r of every task averaged into macro resample r.

No global RNG state (``numpy.random`` or ``random``) is read or changed.
"""
from __future__ import annotations

import hashlib
import json
import math
import statistics
import warnings
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import numpy as np

# Two-sided 95% normal quantile, statistics.NormalDist().inv_cdf(0.975).
Z_95 = 1.959963984540054
LEVEL = 0.95

# 2000 resamples: the Monte-Carlo error of an estimated 2.5% / 97.5% quantile is about
# sqrt(q(1-q)/B) / f(x_q) ~= 0.06 s at B = 2000 for a roughly normal bootstrap distribution
# with standard deviation s, i.e. ~3% of the interval's half-width (1.96 s): small next to
# the sampling error the interval describes; the count Efron & Tibshirani (1993, ch. 19)
# recommend for percentile intervals.
RESAMPLES = 2000
SEED = 0

METRICS = ("original_acc", "negated_acc", "mean", "both_correct", "flip_rate")
ORIGINAL, NEGATED, FLIPPED = "original", "negated", "flipped"

Arrays = Mapping[str, np.ndarray]  # {"original", "negated", "flipped"}: float, NaN = absent


@dataclass(frozen=True)
class Interval:
    """A closed interval ``[low, high]`` at full float precision (rounding is the renderer's job)."""

    low: float
    high: float

    @property
    def width(self) -> float:
        return self.high - self.low

    def contains(self, x: float) -> bool:
        return self.low <= x <= self.high

    def as_tuple(self) -> tuple[float, float]:
        return (self.low, self.high)


def wilson(k: int, n: int, z: float = Z_95) -> Interval:
    """Wilson score interval for a binomial proportion ``k / n`` (n > 0).

    Why Wilson and not Wald ``p +- z sqrt(p(1-p)/n)``: Wald collapses to zero width at
    k = 0 or k = n and undercovers near the edges and at small n; Wilson keeps close to
    nominal coverage everywhere (Newcombe 1998; Brown, Cai & DasGupta 2001). Its bounds are
    the roots p of ``(k/n - p)^2 = z^2 p (1 - p) / n``::

        center    = (p_hat + z^2 / (2n)) / (1 + z^2 / n)
        halfwidth = z / (1 + z^2 / n) * sqrt(p_hat (1 - p_hat) / n + z^2 / (4 n^2))
    """
    if n <= 0 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n and n > 0, got k={k}, n={n}")
    p = k / n
    z2 = z * z
    denom = 1.0 + z2 / n
    center = (p + z2 / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n))
    return Interval(0.0 if k == 0 else max(0.0, center - half), 1.0 if k == n else min(1.0, center + half))


def percentile_interval(samples: np.ndarray, level: float = LEVEL) -> Optional[Interval]:
    """Percentile-bootstrap interval: the (1-level)/2 and 1-(1-level)/2 quantiles of ``samples``.

    Why percentile: it respects transformations, stays inside [0, 1] for proportions, and is
    what readers expect from "bootstrap 95% CI"; BCa's correction is small at these sizes.
    Quantiles use numpy's ``method="linear"`` (Hyndman & Fan type 7), stated so that a numpy
    default change cannot move published bounds. NaN resamples (a statistic undefined in
    that resample, e.g. no paired item drawn) are left out; None when none is left.
    """
    arr = np.asarray(samples, dtype=np.float64)
    arr = arr[~np.isnan(arr)]
    if arr.size == 0:
        return None
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(arr, [alpha, 1.0 - alpha], method="linear")
    return Interval(float(low), float(high))


def task_seed(seed: int, task: str) -> int:
    """Seed of one task's bootstrap stream: the first 8 bytes (big-endian) of
    ``sha256(json.dumps([seed, task]))``.

    Why hashed per task: a task's draws then depend only on (seed, task name, item count),
    so adding or reordering other tasks never changes them, and every model evaluated on a
    task gets the same resamples (which makes per-task comparisons paired).
    """
    digest = hashlib.sha256(json.dumps([int(seed), task]).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big")


def bootstrap_indices(n: int, resamples: int, seed: int) -> np.ndarray:
    """Item indices, int64 ``[resamples, n]``: row r draws n items uniformly with replacement,
    from ``np.random.Generator(np.random.PCG64(seed)).integers(0, n)``.

    Resampling *items* (not single answers) keeps every per-item dependency intact in each
    resample: the original/negated pairing, and two models answering the same question.
    """
    return np.random.Generator(np.random.PCG64(seed)).integers(0, n, size=(resamples, n), dtype=np.int64)


def _nanmean(x: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():  # an all-NaN resample is NaN, by design (see percentile_interval)
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(x, axis=-1)


def task_metrics(arrays: Arrays) -> dict[str, np.ndarray]:
    """The METRICS defined by ``arrays`` (see the module docstring), vectorised over leading
    axes: ``[..., n]`` arrays give ``[...]`` values (a 1-D input gives 0-d values)."""
    out: dict[str, np.ndarray] = {}
    if ORIGINAL in arrays:
        out["original_acc"] = _nanmean(arrays[ORIGINAL])
    if NEGATED in arrays:
        out["negated_acc"] = _nanmean(arrays[NEGATED])
    if ORIGINAL in arrays and NEGATED in arrays:
        out["mean"] = (out["original_acc"] + out["negated_acc"]) / 2
        out["both_correct"] = _nanmean(arrays[ORIGINAL] * arrays[NEGATED])
        out["flip_rate"] = _nanmean(arrays[FLIPPED])
    return out


def resampled(arrays: Arrays, resamples: int, seed: int) -> dict[str, np.ndarray]:
    """Bootstrap distributions ``{metric: [resamples]}`` of one task's METRICS: every array
    is indexed with the same resampled items (a joint, paired bootstrap)."""
    idx = bootstrap_indices(len(next(iter(arrays.values()))), resamples, seed)
    return task_metrics({key: a[idx] for key, a in arrays.items()})


def _percentiles(samples: Mapping[str, np.ndarray], level: float) -> dict[str, Interval]:
    out = {name: percentile_interval(s, level) for name, s in samples.items()}
    return {name: iv for name, iv in out.items() if iv is not None}


def macro_samples(per_task: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Per resample, the unweighted mean of each metric over the tasks where it is defined
    (as ``negtune.evaluation.metrics.summarize`` averages the point estimates)."""
    out: dict[str, np.ndarray] = {}
    for name in METRICS:
        columns = [s[name] for s in per_task.values() if name in s]
        if columns:
            out[name] = np.mean(np.stack(columns), axis=0)
    return out


def intervals(per_task: Mapping[str, Arrays], *, resamples: int = RESAMPLES, seed: int = SEED,
              level: float = LEVEL) -> tuple[dict[str, dict[str, Interval]], dict[str, Interval]]:
    """Per-task and macro intervals of the METRICS from one set of draws per task.

    Each task is resampled from its own stream ``task_seed(seed, task)`` (paired: both prompts
    of an item drawn together). The macro intervals are stratified: resample r of every task
    is averaged into macro resample r. Why stratified: the macro average is a fixed-weight
    combination of per-task estimates, so its sampling error comes from the items within each
    task; resampling the handful of tasks themselves would answer another question
    (generalisation to new tasks). A metric undefined for a task is absent from its intervals.
    """
    drawn = {task: resampled(arrays, resamples, task_seed(seed, task)) for task, arrays in per_task.items()}
    return ({task: _percentiles(s, level) for task, s in drawn.items()},
            _percentiles(macro_samples(drawn), level))


def task_intervals(task: str, arrays: Arrays, **kw: float) -> dict[str, Interval]:
    """One task's intervals (see ``intervals``)."""
    return intervals({task: arrays}, **kw)[0][task]


def macro_intervals(per_task: Mapping[str, Arrays], **kw: float) -> dict[str, Interval]:
    """The macro intervals (see ``intervals``)."""
    return intervals(per_task, **kw)[1]


def mean_std(values: Sequence[float]) -> tuple[float, Optional[float]]:
    """Mean and sample standard deviation (ddof=1) of per-seed results; std None for one value.

    Why ddof=1: runs over seeds are a sample of the training randomness, and
    ``sqrt(sum (x - mean)^2 / (k - 1))`` is the convention of "mean +- std over k seeds".
    """
    vals = [float(v) for v in values]
    if not vals:
        raise ValueError("mean_std needs at least one value")
    return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) >= 2 else None)
