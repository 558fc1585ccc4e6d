"""Uncertainty for the paired metrics: Wilson intervals, (stratified) paired bootstrap,
paired model comparisons with an exact McNemar test, and mean/std over seeds.

Why this module exists: the per-task numbers in ``negtune.evaluation.metrics`` are point estimates
on a few hundred items per task, so differences of a few points between models or
prompts are often noise. Every number a report prints should come with a 95% interval,
and a claim "model B beats model A" should come from a *paired* comparison on the same
items, which is far more sensitive than comparing two independent intervals.

Data model. Everything works on boolean arrays aligned per paired item (a "pair" is an
item present under both the original and the negated prompt, matched by
``Instance.pair_key``; see ``negtune.evaluation.metrics``):

* ``original[i]`` -- the model's pick under the original prompt was correct,
* ``negated[i]``  -- the pick under the negated prompt was correct,
* ``flipped[i]``  -- the picked option *text* differs between the two prompts.

Metric names follow ``negtune.evaluation.metrics.summarize``::

    original_acc = mean(original)
    negated_acc  = mean(negated)
    mean         = (original_acc + negated_acc) / 2
    both_correct = mean(original & negated)
    flip_rate    = mean(flipped)

Macro numbers are unweighted means over tasks of the per-task numbers, so each task
counts once whatever its size. A task evaluated under one variant only has just that
variant's accuracy (``mean``, ``both_correct`` and ``flip_rate`` are undefined there),
and macro averages run over the tasks where the metric is defined, as in ``summarize``.

Caveat: items present under only one variant cannot be expressed in the paired arrays;
when a task has such items, the caller must drop them (or pass that variant alone), and
the accuracy point estimate may then differ slightly from ``negtune.evaluation.metrics``, which
uses every item of a variant for ``<variant>.acc``.

Determinism: every random draw comes from a local ``np.random.Generator(PCG64(seed))``;
no global RNG state (``numpy.random`` or ``random``) is read or changed. PCG64 and
``SeedSequence`` are platform independent, so results are identical across machines for
a given numpy version (numpy does not formally promise ``Generator.integers`` streams
stay identical across numpy releases, NEP 19).
"""
from __future__ import annotations

import hashlib
import json
import math
import statistics
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

__all__ = [
    "DEFAULT_LEVEL",
    "DEFAULT_RESAMPLES",
    "DEFAULT_SEED",
    "METRICS",
    "Comparison",
    "Interval",
    "accuracy",
    "bootstrap_indices",
    "bootstrap_samples",
    "both_correct",
    "compare_macro",
    "compare_metric",
    "compare_paired",
    "flip_rate",
    "iter_bootstrap_indices",
    "macro_intervals",
    "macro_metrics",
    "macro_samples",
    "mcnemar_exact",
    "mcnemar_exact_logp",
    "mean_std",
    "pair_mean",
    "paired_intervals",
    "paired_metrics",
    "paired_samples",
    "percentile_interval",
    "stratified_samples",
    "task_metrics",
    "task_seed",
    "wilson",
]

# Two-sided 95% normal quantile, statistics.NormalDist().inv_cdf(0.975).
Z_95 = 1.959963984540054
DEFAULT_LEVEL = 0.95

# 2000 resamples: the Monte-Carlo standard error of an estimated 2.5% (or 97.5%)
# quantile is sqrt(q(1-q)/B) / f(x_q). For a roughly normal bootstrap distribution with
# standard deviation s, f(x_q) = phi(1.96)/s = 0.0584/s, so at B = 2000 the bound's MC
# error is sqrt(.025*.975/2000)/0.0584 * s ~= 0.06 s, i.e. ~3% of the interval's
# half-width (1.96 s): small next to the sampling error the interval describes, and the
# count Efron & Tibshirani (1993, ch. 19) recommend for percentile intervals. Vectorised,
# 2000 x a few thousand items costs well under a second per task.
DEFAULT_RESAMPLES = 2000
DEFAULT_SEED = 0

ORIGINAL, NEGATED, FLIPPED = "original", "negated", "flipped"
METRICS = ("original_acc", "negated_acc", "mean", "both_correct", "flip_rate")

# Bootstrap indices are drawn in row blocks of about this many int64 entries (32 MiB),
# so 2000 resamples of a 100k-item set never materialise a 1.6 GB index matrix. The
# draws are identical whatever the block size (numpy's PCG64 stream is consumed
# sequentially), see iter_bootstrap_indices.
_CHUNK_ELEMENTS = 1 << 22

# McNemar: exact big-integer tail sums up to this many discordant pairs (~15 ms worst
# case), log-space above it.
_MCNEMAR_EXACT_MAX_N = 10_000
_SMALLEST_POSITIVE = math.ulp(0.0)  # 5e-324, the smallest positive (subnormal) float


# --------------------------------------------------------------------------- intervals


@dataclass(frozen=True)
class Interval:
    """A closed interval ``[low, high]`` (a confidence interval), ``low <= high``.

    ``to_json`` keeps full float precision (rounding is a presentation choice that
    belongs to the report renderer, and rounded bounds would no longer reproduce).
    """

    low: float
    high: float

    def __post_init__(self) -> None:
        low, high = float(self.low), float(self.high)
        if not (math.isfinite(low) and math.isfinite(high)):
            raise ValueError(f"interval bounds must be finite, got [{low}, {high}]")
        if low > high:
            raise ValueError(f"interval low {low} > high {high}")
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)

    @property
    def width(self) -> float:
        return self.high - self.low

    def contains(self, x: float) -> bool:
        return self.low <= x <= self.high

    def to_json(self) -> list[float]:
        """``[low, high]`` as a JSON list of plain floats."""
        return [self.low, self.high]

    @classmethod
    def from_json(cls, data: Sequence[float]) -> "Interval":
        """Inverse of ``to_json``: a two-element list ``[low, high]``."""
        if isinstance(data, (str, bytes)) or len(data) != 2:
            raise ValueError(f"an interval is a [low, high] list, got {data!r}")
        return cls(float(data[0]), float(data[1]))


def wilson(k: int, n: int, z: float = Z_95) -> Interval:
    """Wilson score interval for a binomial proportion ``k / n``.

    Why Wilson and not the textbook Wald ``p +- z sqrt(p(1-p)/n)``: Wald collapses to a
    zero-width interval at k = 0 or k = n and undercovers badly near the edges and at
    small n; Wilson keeps close to nominal coverage everywhere (Newcombe 1998, Brown, Cai
    & DasGupta 2001) and needs no resampling. It inverts the score test, i.e. its bounds
    are the two roots p of ``(k/n - p)^2 = z^2 p (1 - p) / n``::

        center    = (p_hat + z^2 / (2n)) / (1 + z^2 / n)
        halfwidth = z / (1 + z^2 / n) * sqrt(p_hat (1 - p_hat) / n + z^2 / (4 n^2))

    ``z`` is the two-sided normal quantile (1.96 for 95%; any level:
    ``statistics.NormalDist().inv_cdf(1 - (1 - level) / 2)``). The bound at an edge is
    exactly 0 (k = 0) or 1 (k = n).
    """
    if isinstance(k, bool) or isinstance(n, bool) or int(k) != k or int(n) != n:
        raise ValueError(f"k and n must be integers, got k={k!r}, n={n!r}")
    k, n = int(k), int(n)
    if n <= 0:
        raise ValueError(f"Wilson interval needs n > 0 trials, got n={n}")
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if not (math.isfinite(z) and z > 0):
        raise ValueError(f"z must be a positive number, got {z}")
    p = k / n
    z2 = z * z
    denom = 1.0 + z2 / n
    center = (p + z2 / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n))
    low = 0.0 if k == 0 else max(0.0, center - half)
    high = 1.0 if k == n else min(1.0, center + half)
    return Interval(low, high)


def percentile_interval(samples: np.ndarray, level: float = DEFAULT_LEVEL) -> Interval:
    """Percentile-bootstrap interval: the ``(1-level)/2`` and ``1-(1-level)/2`` quantiles
    of the bootstrap distribution ``samples``.

    Why the percentile method: it is transformation-respecting, stays inside [0, 1] for
    proportions, and is what readers expect from "bootstrap 95% CI"; BCa would need a
    jackknife per task for a correction that is small at the sample sizes here.
    Quantiles use numpy's default ``method="linear"`` (Hyndman & Fan type 7: linear
    interpolation between order statistics at position ``q (B - 1)``), stated explicitly
    so a numpy default change cannot move published bounds.
    """
    _check_level(level)
    arr = np.asarray(samples, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"need a non-empty 1-D array of bootstrap samples, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("bootstrap samples contain NaN or infinity")
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(arr, [alpha, 1.0 - alpha], method="linear")
    return Interval(float(low), float(high))


# --------------------------------------------------------------------------- resampling


def task_seed(seed: int, task: str) -> int:
    """Seed of one task's bootstrap stream in a stratified (per-task) bootstrap.

    Why per task and hashed: each task draws from its own generator, seeded from
    ``sha256(json.dumps([seed, task]))`` (first 8 bytes, big-endian), so a task's draws
    depend only on (seed, task name, its item count) -- adding, removing or reordering
    other tasks never changes them, and the same task gets the same resamples in every
    report, for every model (which makes per-task comparisons paired).
    """
    _check_seed(seed)
    if not isinstance(task, str):
        raise TypeError(f"task name must be a str, got {type(task).__name__}")
    digest = hashlib.sha256(json.dumps([int(seed), task]).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big")


def iter_bootstrap_indices(n: int, resamples: int, seed: int, *,
                           chunk_rows: int | None = None) -> Iterator[np.ndarray]:
    """Yield the rows of ``bootstrap_indices(n, resamples, seed)`` in blocks of
    ``chunk_rows`` rows (default: about 4M entries per block), to bound memory.

    All blocks come from one generator consumed in order, so the concatenated blocks are
    the same for any ``chunk_rows`` (tested).
    """
    _check_n(n)
    _check_resamples(resamples)
    _check_seed(seed)
    rows = max(1, _CHUNK_ELEMENTS // n) if chunk_rows is None else int(chunk_rows)
    if rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    rng = np.random.Generator(np.random.PCG64(seed))
    done = 0
    while done < resamples:
        take = min(rows, resamples - done)
        yield rng.integers(0, n, size=(take, n), dtype=np.int64)
        done += take


def bootstrap_indices(n: int, resamples: int, seed: int) -> np.ndarray:
    """Item indices for a nonparametric bootstrap: int64 array ``[resamples, n]``, row r
    is a sample of ``n`` items drawn uniformly with replacement from ``range(n)``.

    Drawn with ``np.random.Generator(np.random.PCG64(seed)).integers(0, n, dtype=int64)``
    row block by row block (see ``iter_bootstrap_indices``), so it is deterministic for a
    seed and identical across machines. Resampling *items* (not individual answers) is
    what keeps every per-item dependency -- the original/negated pairing, two models
    answering the same question -- intact in each resample.
    """
    return np.concatenate(list(iter_bootstrap_indices(n, resamples, seed)), axis=0)


StatFn = Callable[..., np.ndarray]


def bootstrap_samples(stat_fn: StatFn, arrays: Sequence[np.ndarray], *,
                      resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> np.ndarray:
    """Bootstrap distribution (float64 ``[resamples]``) of ``stat_fn(*arrays)``.

    ``arrays`` are aligned per item (same length n) and are resampled *jointly*: every
    resample applies the same item indices to all of them. ``stat_fn`` must be
    vectorised over leading axes: given arrays of shape ``[..., n]`` it returns shape
    ``[...]`` (e.g. ``lambda c: c.mean(-1)``); the ready-made ``accuracy``,
    ``pair_mean``, ``both_correct`` and ``flip_rate`` are.
    """
    arrs = _aligned(arrays)
    return _bootstrap_many(len(arrs[0]), {"stat": (stat_fn, arrs)}, resamples, seed)["stat"]


def _bootstrap_many(n: int, stats: Mapping[Any, tuple[StatFn, Sequence[np.ndarray]]],
                    resamples: int, seed: int) -> dict[Any, np.ndarray]:
    """One pass over the index blocks of (n, resamples, seed), evaluating every
    statistic on the same resampled items."""
    out = {name: np.empty(resamples, dtype=np.float64) for name in stats}
    start = 0
    for idx in iter_bootstrap_indices(n, resamples, seed):
        stop = start + idx.shape[0]
        for name, (fn, arrs) in stats.items():
            out[name][start:stop] = fn(*(a[idx] for a in arrs))
        start = stop
    return out


# --------------------------------------------------------------------------- statistics
# Vectorised over leading axes: arrays [..., n] -> [...]. Used both for point estimates
# (1-D input -> 0-d result) and for bootstrap blocks ([rows, n] -> [rows]).


def accuracy(correct: np.ndarray) -> np.ndarray:
    """Share correct: ``mean(correct)``."""
    return correct.mean(axis=-1)


def pair_mean(original: np.ndarray, negated: np.ndarray) -> np.ndarray:
    """``(original_acc + negated_acc) / 2``, computed from integer counts as
    ``(sum(original) + sum(negated)) / (2n)`` so it is exact whenever the counts sum to
    a constant (e.g. perfectly anti-correlated answers give exactly 0.5)."""
    return (original.sum(axis=-1) + negated.sum(axis=-1)) / (2.0 * original.shape[-1])


def both_correct(original: np.ndarray, negated: np.ndarray) -> np.ndarray:
    """Share of pairs right under both prompts: ``mean(original & negated)``."""
    return (original & negated).mean(axis=-1)


def flip_rate(flipped: np.ndarray) -> np.ndarray:
    """Share of pairs whose picked option text changes: ``mean(flipped)``."""
    return flipped.mean(axis=-1)


def _task_stats(arrays: Mapping[str, np.ndarray]) -> dict[str, tuple[StatFn, tuple[np.ndarray, ...]]]:
    """The metrics defined for one task's (validated) arrays, in METRICS order."""
    stats: dict[str, tuple[StatFn, tuple[np.ndarray, ...]]] = {}
    if ORIGINAL in arrays:
        stats["original_acc"] = (accuracy, (arrays[ORIGINAL],))
    if NEGATED in arrays:
        stats["negated_acc"] = (accuracy, (arrays[NEGATED],))
    if ORIGINAL in arrays and NEGATED in arrays:
        pair = (arrays[ORIGINAL], arrays[NEGATED])
        stats["mean"] = (pair_mean, pair)
        stats["both_correct"] = (both_correct, pair)
        stats["flip_rate"] = (flip_rate, (arrays[FLIPPED],))
    return stats


def _validate_task(arrays: Mapping[str, Any], where: str = "") -> dict[str, np.ndarray]:
    """Check one task's arrays: keys among original/negated/flipped, 1-D 0/1 data of one
    common length; ``flipped`` exactly when both variants are given."""
    prefix = f"{where}: " if where else ""
    unknown = set(arrays) - {ORIGINAL, NEGATED, FLIPPED}
    if unknown:
        raise ValueError(f"{prefix}unknown keys {sorted(unknown)}; expected "
                         f"{ORIGINAL!r}, {NEGATED!r} and (with both) {FLIPPED!r}")
    variants = [v for v in (ORIGINAL, NEGATED) if v in arrays]
    if not variants:
        raise ValueError(f"{prefix}needs at least one of {ORIGINAL!r}, {NEGATED!r}")
    paired = len(variants) == 2
    if paired and FLIPPED not in arrays:
        raise ValueError(f"{prefix}both variants given but no {FLIPPED!r} array (flip_rate)")
    if not paired and FLIPPED in arrays:
        raise ValueError(f"{prefix}{FLIPPED!r} needs both {ORIGINAL!r} and {NEGATED!r}")
    out = {key: _as_bool(arrays[key], f"{prefix}{key}") for key in (ORIGINAL, NEGATED, FLIPPED)
           if key in arrays}
    lengths = {key: len(a) for key, a in out.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"{prefix}arrays must be aligned per paired item, got lengths {lengths}")
    return out


def task_metrics(arrays: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Point estimates of the metrics defined for one task's arrays (keys ``original``,
    ``negated``, ``flipped``; see the module docstring)."""
    checked = _validate_task(arrays)
    return {name: float(fn(*arrs)) for name, (fn, arrs) in _task_stats(checked).items()}


def paired_metrics(orig_correct: np.ndarray, neg_correct: np.ndarray,
                   flipped: np.ndarray) -> dict[str, float]:
    """Point estimates for one task's paired items: all five METRICS."""
    return task_metrics({ORIGINAL: orig_correct, NEGATED: neg_correct, FLIPPED: flipped})


def paired_samples(orig_correct: np.ndarray, neg_correct: np.ndarray, flipped: np.ndarray, *,
                   resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> dict[str, np.ndarray]:
    """Bootstrap distributions (``[resamples]`` each) of the five METRICS for one task,
    resampling *pairs*: the same item indices are applied to the original, negated and
    flipped arrays, so e.g. the anti-correlation between original and negated
    correctness (a model ignoring the negation) is kept in every resample."""
    checked = _validate_task({ORIGINAL: orig_correct, NEGATED: neg_correct, FLIPPED: flipped})
    return _bootstrap_many(len(checked[ORIGINAL]), _task_stats(checked), resamples, seed)


def paired_intervals(orig_correct: np.ndarray, neg_correct: np.ndarray, flipped: np.ndarray, *,
                     resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED,
                     level: float = DEFAULT_LEVEL) -> dict[str, Interval]:
    """Paired-bootstrap percentile intervals for one task, keyed by METRICS
    (``original_acc``, ``negated_acc``, ``mean``, ``both_correct``, ``flip_rate``).

    Arrays are aligned per paired item. Why a joint bootstrap rather than combining two
    Wilson intervals: ``mean``, ``both_correct`` and ``flip_rate`` depend on how the two
    answers to the same item co-vary, which only resampling whole pairs preserves. The
    accuracies get bootstrap intervals too, from the same resamples, so all five are
    mutually consistent (``wilson`` is the closed-form alternative for a lone accuracy).
    """
    samples = paired_samples(orig_correct, neg_correct, flipped, resamples=resamples, seed=seed)
    return {name: percentile_interval(s, level) for name, s in samples.items()}


# --------------------------------------------------------------------------- macro


def _validate_tasks(per_task: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, np.ndarray]]:
    if not per_task:
        raise ValueError("no tasks")
    return {task: _validate_task(arrays, where=f"task {task!r}") for task, arrays in per_task.items()}


def stratified_samples(per_task: Mapping[str, Mapping[str, np.ndarray]], *,
                       resamples: int = DEFAULT_RESAMPLES,
                       seed: int = DEFAULT_SEED) -> dict[str, dict[str, np.ndarray]]:
    """Per-task bootstrap distributions for a stratified bootstrap: ``{task: {metric:
    samples[resamples]}}``.

    ``per_task[task]`` holds that task's arrays: ``original`` and/or ``negated`` (bool,
    aligned per paired item) and ``flipped`` when both are present. Items are resampled
    within each task (strata = tasks; the task set is fixed by design, not sampled),
    pairs jointly, from the task's own stream ``task_seed(seed, task)``; resample r of
    every task is then combined into macro resample r by ``macro_samples``.
    """
    checked = _validate_tasks(per_task)
    return {task: _bootstrap_many(len(next(iter(arrs.values()))), _task_stats(arrs),
                                  resamples, task_seed(seed, task))
            for task, arrs in checked.items()}


def macro_samples(task_samples: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Macro bootstrap distribution per metric: for each resample, the unweighted mean of
    the metric over the tasks where it is defined (as ``negtune.evaluation.metrics.summarize``)::

        macro_metric[r] = (1 / |T_metric|) * sum_{t in T_metric} metric_t[r]
    """
    out: dict[str, np.ndarray] = {}
    for name in METRICS:
        columns = [s[name] for s in task_samples.values() if name in s]
        if columns:
            out[name] = np.mean(np.stack(columns, axis=0), axis=0)
    return out


def macro_metrics(per_task: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, float]:
    """Point estimates of the macro metrics (unweighted mean over the tasks where each
    metric is defined); metrics defined for no task are absent."""
    points = {task: task_metrics(arrays) for task, arrays in per_task.items()}
    if not points:
        raise ValueError("no tasks")
    out: dict[str, float] = {}
    for name in METRICS:
        vals = [p[name] for p in points.values() if name in p]
        if vals:
            out[name] = math.fsum(vals) / len(vals)
    return out


def macro_intervals(per_task: Mapping[str, Mapping[str, np.ndarray]], *,
                    resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED,
                    level: float = DEFAULT_LEVEL) -> dict[str, Interval]:
    """Stratified-bootstrap percentile intervals for the macro (each-task-counts-once)
    metrics, keyed by METRICS; a metric defined for no task is absent.

    Why stratified: the macro average is a fixed-weight combination of per-task
    estimates, so its sampling error comes from the items within each task; resampling
    tasks themselves would answer a different question (generalisation to new tasks)
    and is meaningless with a handful of tasks. See ``stratified_samples`` and
    ``macro_samples`` for the draws and the averaging.
    """
    _check_level(level)
    samples = macro_samples(stratified_samples(per_task, resamples=resamples, seed=seed))
    return {name: percentile_interval(s, level) for name, s in samples.items()}


# --------------------------------------------------------------------------- comparisons


@dataclass(frozen=True)
class Comparison:
    """Paired comparison of model B against model A on the same items.

    ``diff = b - a`` (positive: B higher); ``interval`` is the paired-bootstrap interval
    of ``diff``. For a single binary outcome (``compare_paired``) the discordant counts
    ``b01`` (A wrong, B right) and ``b10`` (A right, B wrong) and the exact McNemar
    ``p_value`` are filled in; they are None for derived metrics and macro comparisons.
    ``n_items`` is the number of paired items (summed over tasks for a macro comparison).
    """

    a: float
    b: float
    diff: float
    interval: Interval
    n_items: int
    b01: int | None = None
    b10: int | None = None
    p_value: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "diff": self.diff, "interval": self.interval.to_json(),
                "n_items": self.n_items, "b01": self.b01, "b10": self.b10, "p_value": self.p_value}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Comparison":
        return cls(a=float(data["a"]), b=float(data["b"]), diff=float(data["diff"]),
                   interval=Interval.from_json(data["interval"]), n_items=int(data["n_items"]),
                   b01=data.get("b01"), b10=data.get("b10"), p_value=data.get("p_value"))


def compare_metric(stat_fn: StatFn, arrays_a: Sequence[np.ndarray], arrays_b: Sequence[np.ndarray], *,
                   resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED,
                   level: float = DEFAULT_LEVEL) -> Comparison:
    """Paired-bootstrap interval for ``stat_fn(*arrays_b) - stat_fn(*arrays_a)``.

    All arrays of both models are aligned on the same items; each resample draws one
    set of item indices and applies it to both models, so the item-difficulty variance
    the two models share cancels out of the difference. Example -- the difference in
    ``both_correct``: ``compare_metric(both_correct, (orig_a, neg_a), (orig_b, neg_b))``;
    in ``flip_rate``: ``compare_metric(flip_rate, (flipped_a,), (flipped_b,))``.
    ``stat_fn`` must be vectorised over leading axes (see ``bootstrap_samples``).
    """
    _check_level(level)
    if len(arrays_a) != len(arrays_b):
        raise ValueError(f"model A has {len(arrays_a)} arrays, model B {len(arrays_b)}")
    arrs = _aligned([*arrays_a, *arrays_b])
    k = len(arrays_a)
    a_arrs, b_arrs = tuple(arrs[:k]), tuple(arrs[k:])
    point_a, point_b = float(stat_fn(*a_arrs)), float(stat_fn(*b_arrs))

    def diff_fn(*resampled: np.ndarray) -> np.ndarray:
        return stat_fn(*resampled[k:]) - stat_fn(*resampled[:k])

    samples = _bootstrap_many(len(arrs[0]), {"diff": (diff_fn, arrs)}, resamples, seed)["diff"]
    return Comparison(a=point_a, b=point_b, diff=point_b - point_a,
                      interval=percentile_interval(samples, level), n_items=len(arrs[0]))


def compare_paired(a: np.ndarray, b: np.ndarray, *, resamples: int = DEFAULT_RESAMPLES,
                   seed: int = DEFAULT_SEED, level: float = DEFAULT_LEVEL) -> Comparison:
    """Compare two models' accuracy on the same items: ``a[i]`` / ``b[i]`` say whether
    model A / B got item i right (aligned bool arrays).

    Returns ``diff = mean(b) - mean(a)`` with its paired-bootstrap interval, the
    discordant counts ``b01 = #(A wrong & B right)`` and ``b10 = #(A right & B wrong)``,
    and ``p_value = mcnemar_exact(b01, b10)``. Why both: the interval sizes the effect,
    the exact McNemar test (which only the discordant items inform) gives a valid p-value
    even with few discordant items. For ``both_correct`` pass ``orig_a & neg_a`` and
    ``orig_b & neg_b``; for other derived metrics use ``compare_metric``.
    """
    aa, bb = _aligned([a, b])
    result = compare_metric(accuracy, (aa,), (bb,), resamples=resamples, seed=seed, level=level)
    b01 = int(np.count_nonzero(~aa & bb))
    b10 = int(np.count_nonzero(aa & ~bb))
    # diff from the counts, (b01 - b10) / n: exactly 0.0 for identical models.
    return Comparison(a=result.a, b=result.b, diff=(b01 - b10) / len(aa), interval=result.interval,
                      n_items=result.n_items, b01=b01, b10=b10, p_value=mcnemar_exact(b01, b10))


def compare_macro(per_task_a: Mapping[str, Mapping[str, np.ndarray]],
                  per_task_b: Mapping[str, Mapping[str, np.ndarray]], *,
                  resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED,
                  level: float = DEFAULT_LEVEL) -> dict[str, Comparison]:
    """Paired, stratified comparison of two models' macro metrics (B minus A), keyed by
    METRICS.

    Both models must cover the same tasks with the same keys and item alignment. Each
    task is resampled from ``task_seed(seed, task)`` -- the very draws
    ``macro_intervals`` uses -- and the same indices are applied to both models; per
    resample the macro difference is ``macro_b[r] - macro_a[r]``.
    """
    _check_level(level)
    checked_a, checked_b = _validate_tasks(per_task_a), _validate_tasks(per_task_b)
    if set(checked_a) != set(checked_b):
        raise ValueError(f"models cover different tasks: only A {sorted(set(checked_a) - set(checked_b))}, "
                         f"only B {sorted(set(checked_b) - set(checked_a))}")
    samples_a: dict[str, dict[str, np.ndarray]] = {}
    samples_b: dict[str, dict[str, np.ndarray]] = {}
    n_items = 0
    for task in checked_a:
        arrs_a, arrs_b = checked_a[task], checked_b[task]
        if set(arrs_a) != set(arrs_b):
            raise ValueError(f"task {task!r}: model A has {sorted(arrs_a)}, model B {sorted(arrs_b)}")
        n = len(next(iter(arrs_a.values())))
        if len(next(iter(arrs_b.values()))) != n:
            raise ValueError(f"task {task!r}: models have different item counts")
        stats: dict[Any, tuple[StatFn, Sequence[np.ndarray]]] = {}
        for model, arrs in (("a", arrs_a), ("b", arrs_b)):
            for name, spec in _task_stats(arrs).items():
                stats[(model, name)] = spec
        drawn = _bootstrap_many(n, stats, resamples, task_seed(seed, task))
        samples_a[task] = {name: s for (model, name), s in drawn.items() if model == "a"}
        samples_b[task] = {name: s for (model, name), s in drawn.items() if model == "b"}
        n_items += n
    macro_a, macro_b = macro_samples(samples_a), macro_samples(samples_b)
    point_a, point_b = macro_metrics(checked_a), macro_metrics(checked_b)
    return {name: Comparison(a=point_a[name], b=point_b[name], diff=point_b[name] - point_a[name],
                             interval=percentile_interval(macro_b[name] - macro_a[name], level),
                             n_items=n_items)
            for name in macro_a}


# --------------------------------------------------------------------------- McNemar


def mcnemar_exact_logp(b: int, c: int) -> float:
    """Natural log of the exact two-sided McNemar p-value (see ``mcnemar_exact``); finite
    even when the p-value itself is below the smallest float (e.g. b=0, c=5000)."""
    b, c = _check_counts(b, c)
    n, m = b + c, min(b, c)
    if n == 0 or 2 * m >= n - 1:
        # b == c, or |b - c| == 1: 2 P[X <= min] >= 1 by symmetry.
        return 0.0
    if n <= _MCNEMAR_EXACT_MAX_N:
        # Exact: tail = sum_{i<=m} C(n, i) as a big integer; logs of big ints are exact
        # up to float rounding.
        tail = _binom_tail_int(n, m)
        return min(0.0, math.log(2 * tail) - n * math.log(2.0))
    # Large n, m < (n-1)/2: sum the tail relative to its largest term C(n, m), walking
    # down with t_{i-1} / t_i = i / (n - i + 1) < 1 until terms stop contributing; log C(n, m)
    # from lgamma (absolute error ~1e-10 at n = 1e5, i.e. ~1e-10 relative error in p).
    ratio_sum, term = 1.0, 1.0
    for i in range(m, 0, -1):
        term *= i / (n - i + 1)
        ratio_sum += term
        if term < ratio_sum * 1e-17:
            break
    log_comb = math.lgamma(n + 1) - math.lgamma(m + 1) - math.lgamma(n - m + 1)
    return min(0.0, math.log(2.0) + log_comb + math.log(ratio_sum) - n * math.log(2.0))


def mcnemar_exact(b: int, c: int) -> float:
    """Exact two-sided McNemar test p-value from the discordant counts ``b`` and ``c``.

    Under H0 (both models equally accurate) each of the ``n = b + c`` discordant items
    is equally likely to favour either model, so ``min(b, c)`` is a Binomial(n, 1/2)
    lower tail::

        p = min(1, 2 * P[X <= min(b, c)]),  X ~ Binomial(b + c, 1/2)
          = min(1, 2 * sum_{i=0}^{min(b,c)} C(n, i) / 2^n)

    ``b + c == 0`` gives 1.0. Why exact rather than the chi-square version: with the few
    discordant items typical of a single task the asymptotic test is unreliable. Computed
    with exact big-integer sums for n <= 10,000 (``b=1, c=9`` gives exactly 0.021484375)
    and in log space above, so it neither overflows nor loses accuracy up to n ~ 1e6.
    A p-value below the smallest positive float (~5e-324) is returned as that float, an
    upper bound that keeps "p > 0" true; ``mcnemar_exact_logp`` gives its exact log.
    """
    b, c = _check_counts(b, c)
    n, m = b + c, min(b, c)
    if n == 0 or 2 * m >= n - 1:
        return 1.0
    if n <= _MCNEMAR_EXACT_MAX_N:
        p = (2 * _binom_tail_int(n, m)) / (1 << n)  # int / int: correctly rounded
    else:
        p = math.exp(mcnemar_exact_logp(b, c))
    return min(1.0, max(p, _SMALLEST_POSITIVE))


def _binom_tail_int(n: int, m: int) -> int:
    """sum_{i=0}^{m} C(n, i), exactly."""
    term = total = 1
    for i in range(m):
        term = term * (n - i) // (i + 1)  # exact: C(n, i+1) = C(n, i) (n - i) / (i + 1)
        total += term
    return total


# --------------------------------------------------------------------------- seeds


def mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (ddof=1) of per-seed results.

    Why ddof=1: runs over seeds are a sample of the training randomness, and the
    unbiased-variance form ``sqrt(sum (x - mean)^2 / (k - 1))`` is the convention in
    "mean +- std over k seeds" tables. The std is None for a single value (undefined,
    not 0). Empty input raises ValueError.
    """
    vals = [float(v) for v in values]
    if not vals:
        raise ValueError("mean_std needs at least one value")
    mean = statistics.fmean(vals)
    return mean, (statistics.stdev(vals) if len(vals) >= 2 else None)


# --------------------------------------------------------------------------- checks


def _as_bool(x: Any, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name}: no items")
    if arr.dtype == np.bool_:
        return arr
    if arr.dtype.kind in "iuf" and np.all((arr == 0) | (arr == 1)):
        return arr.astype(np.bool_)
    raise ValueError(f"{name}: expected booleans (or 0/1), got dtype {arr.dtype}")


def _aligned(arrays: Sequence[Any]) -> list[np.ndarray]:
    if len(arrays) == 0:
        raise ValueError("no arrays given")
    arrs = [_as_bool(a, f"array {i}") for i, a in enumerate(arrays)]
    lengths = {len(a) for a in arrs}
    if len(lengths) != 1:
        raise ValueError(f"arrays must be aligned per item, got lengths {[len(a) for a in arrs]}")
    return arrs


def _check_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    return int(value)


def _check_n(n: int) -> None:
    if _check_int(n, "n") < 1:
        raise ValueError(f"need at least one item to resample, got n={n}")


def _check_resamples(resamples: int) -> None:
    if _check_int(resamples, "resamples") < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")


def _check_seed(seed: int) -> None:
    if _check_int(seed, "seed") < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")


def _check_level(level: float) -> None:
    if not 0.0 < float(level) < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")


def _check_counts(b: int, c: int) -> tuple[int, int]:
    b, c = _check_int(b, "b"), _check_int(c, "c")
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be >= 0, got b={b}, c={c}")
    return b, c
