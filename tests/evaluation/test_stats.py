"""Tests for negtune.evaluation.stats (intervals) and negtune.evaluation.comparisons.

Reference values are computed here independently of the modules (closed forms written
differently, exact fractions, plain Python loops over the bootstrap indices) or taken from a
published table, so a wrong formula in the modules makes a test fail.
"""
from __future__ import annotations

import hashlib
import math
import random
from fractions import Fraction

import numpy as np
import pytest

from negtune.evaluation.comparisons import compare_binary, compare_macro, compare_metric, mcnemar_exact
from negtune.evaluation.stats import (METRICS, RESAMPLES, SEED, Interval, bootstrap_indices, macro_intervals,
                                      macro_samples, mean_std, percentile_interval, resampled, task_intervals,
                                      task_metrics, task_seed, wilson)

Z = 1.959963984540054


def _f(seq: str) -> np.ndarray:
    """'10x1' -> [1., 0., nan, 1.] (x: the item is absent under this variant)."""
    return np.array([np.nan if ch == "x" else float(ch) for ch in seq])


def _random_task(n: int, seed: int, p_orig: float = 0.7, p_neg: float = 0.4) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"original": (rng.random(n) < p_orig).astype(float), "negated": (rng.random(n) < p_neg).astype(float),
            "flipped": (rng.random(n) < 0.5).astype(float)}


# ----------------------------------------------------------------------------- Wilson


def _wilson_by_quadratic(k: int, n: int, z: float) -> tuple[float, float]:
    """Roots of (1 + z^2/n) p^2 - (2 p_hat + z^2/n) p + p_hat^2 = 0."""
    ph = k / n
    a, b, c = 1 + z * z / n, -(2 * ph + z * z / n), ph * ph
    disc = math.sqrt(b * b - 4 * a * c)
    return (-b - disc) / (2 * a), (-b + disc) / (2 * a)


@pytest.mark.parametrize("k,n", [(8, 10), (3, 17), (50, 100), (1, 2)])
def test_wilson_matches_quadratic_roots(k, n):
    lo, hi = _wilson_by_quadratic(k, n, Z)
    iv = wilson(k, n)
    assert iv.low == pytest.approx(lo, abs=1e-12) and iv.high == pytest.approx(hi, abs=1e-12)


def test_wilson_8_of_10_hand_value():
    iv = wilson(8, 10)
    assert (iv.low + iv.high) / 2 == pytest.approx((0.8 + Z * Z / 20) / (1 + Z * Z / 10), abs=1e-12)
    assert iv.low == pytest.approx(0.4901624715, abs=1e-6)
    assert iv.high == pytest.approx(0.9433178485, abs=1e-6)


@pytest.mark.parametrize("k,n,low,high", [
    # Newcombe (1998), Stat Med 17:857-872, worked examples, method 3 (score interval
    # without continuity correction), printed to 4 decimals.
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0000, 0.1611),
    (1, 29, 0.0061, 0.1718),
])
def test_wilson_published_values(k, n, low, high):
    iv = wilson(k, n)
    assert round(iv.low, 4) == low and round(iv.high, 4) == high


def test_wilson_edges_and_symmetry():
    n = 25
    assert wilson(0, n).low == 0.0 and wilson(0, n).high == pytest.approx(Z * Z / (n + Z * Z), abs=1e-14)
    assert wilson(n, n).high == 1.0 and wilson(n, n).low == pytest.approx(n / (n + Z * Z), abs=1e-14)
    a, b = wilson(7, n), wilson(n - 7, n)
    assert a.low == pytest.approx(1 - b.high, abs=1e-14) and a.high == pytest.approx(1 - b.low, abs=1e-14)
    with pytest.raises(ValueError):
        wilson(0, 0)


# ----------------------------------------------------------------------------- McNemar


def _mcnemar_fraction(b: int, c: int) -> Fraction:
    n = b + c
    if n == 0:
        return Fraction(1)
    return min(Fraction(1), Fraction(2 * sum(math.comb(n, i) for i in range(min(b, c) + 1)), 2 ** n))


def test_mcnemar_hand_values():
    assert mcnemar_exact(1, 9) == 0.021484375  # 2 * (1 + 10) / 1024, exactly
    assert mcnemar_exact(9, 1) == 0.021484375
    assert mcnemar_exact(0, 5) == 0.0625  # 2 / 32
    assert mcnemar_exact(2, 8) == 0.109375  # 2 * (1 + 10 + 45) / 1024


def test_mcnemar_no_evidence_is_one():
    assert mcnemar_exact(0, 0) == 1.0
    for b in (1, 7, 500):
        assert mcnemar_exact(b, b) == 1.0
        assert mcnemar_exact(b, b + 1) == 1.0  # 2 * P[X <= b] = 1 exactly for n = 2b+1


def test_mcnemar_symmetric_and_exact_on_a_grid():
    for b in range(25):
        for c in range(25):
            assert mcnemar_exact(b, c) == mcnemar_exact(c, b) == float(_mcnemar_fraction(b, c))


def test_mcnemar_large_counts():
    # exact against big-integer fractions, and close to the continuity-corrected normal
    # approximation z = (|b-c| - 1)/sqrt(b+c) where that is accurate
    for b, c in [(4900, 5100), (5900, 6100), (4000, 7000)]:
        assert mcnemar_exact(b, c) == pytest.approx(float(_mcnemar_fraction(b, c)), rel=1e-12)
    zc = (200 - 1) / math.sqrt(10_000)
    assert mcnemar_exact(4900, 5100) == pytest.approx(math.erfc(zc / math.sqrt(2)), rel=0.01)
    assert mcnemar_exact(0, 1000) == 2.0 ** -999  # exact, representable
    assert mcnemar_exact(0, 20_000) > 0.0  # 2^-19999 underflows: the smallest float is returned


# ----------------------------------------------------------------------------- resampling


def test_bootstrap_indices_stream_is_pinned_and_deterministic():
    idx = bootstrap_indices(13, 50, seed=7)
    assert idx.shape == (50, 13) and idx.dtype == np.int64 and idx.min() >= 0 and idx.max() < 13
    ref = np.random.Generator(np.random.PCG64(7)).integers(0, 13, size=(50, 13), dtype=np.int64)
    np.testing.assert_array_equal(idx, ref)
    assert not np.array_equal(idx, bootstrap_indices(13, 50, seed=8))


def test_task_seed_is_stable_and_task_specific():
    assert task_seed(0, "copa") == int.from_bytes(hashlib.sha256(b'[0, "copa"]').digest()[:8], "big")
    assert task_seed(0, "copa") != task_seed(1, "copa") != task_seed(0, "piqa")


def test_no_global_rng_state_touched():
    np_state, py_state = np.random.get_state(), random.getstate()
    task = _random_task(40, seed=1)
    task_intervals("t", task, resamples=100)
    macro_intervals({"t": task}, resamples=100)
    after = np.random.get_state()
    assert after[0] == np_state[0] and np.array_equal(after[1], np_state[1]) and after[2:] == np_state[2:]
    assert random.getstate() == py_state


def test_percentile_interval_linear_quantiles():
    samples = np.arange(10, dtype=float)[::-1]  # order must not matter; position q (B - 1)
    iv = percentile_interval(samples, level=0.95)
    assert iv.low == pytest.approx(0.025 * 9) and iv.high == pytest.approx(0.975 * 9)
    iv90 = percentile_interval(np.arange(101, dtype=float), level=0.90)
    assert iv90.low == pytest.approx(5.0) and iv90.high == pytest.approx(95.0)
    assert percentile_interval(np.full(30, 0.25)) == Interval(0.25, 0.25)
    # NaN resamples (statistic undefined there) are left out
    assert percentile_interval(np.array([np.nan, 0.0, 1.0, np.nan]), level=0.5) == Interval(0.25, 0.75)
    assert percentile_interval(np.array([np.nan])) is None


def test_bootstrap_width_matches_binomial_theory():
    # 400 items at p = 0.5: sampling sd sqrt(.25/400) = 0.025, a 95% interval ~0.098 wide
    c = np.array([1.0, 0.0] * 200)
    iv = task_intervals("t", {"original": c}, resamples=RESAMPLES, seed=SEED)["original_acc"]
    assert iv.width == pytest.approx(2 * 1.96 * 0.025, rel=0.15) and iv.contains(0.5)


# ----------------------------------------------------------------------------- one task


def test_task_metrics_point_estimates_with_absent_items():
    # items 1-4 paired, item 5 only under the original prompt, item 6 only under the negated one
    t = {"original": _f("11011x"), "negated": _f("0111x0"), "flipped": _f("1010xx")}
    m = {k: float(v) for k, v in task_metrics(t).items()}
    assert m == {"original_acc": 4 / 5, "negated_acc": 3 / 5, "mean": 0.7, "both_correct": 2 / 4, "flip_rate": 2 / 4}


def test_bootstrap_samples_match_a_loop_over_the_indices():
    o, g, f = _f("1101001110"), _f("0110100101"), _f("1011010010")
    samples = resampled({"original": o, "negated": g, "flipped": f}, 60, seed=11)
    for r, row in enumerate(bootstrap_indices(10, 60, seed=11)):
        oo, gg, ff = [o[i] for i in row], [g[i] for i in row], [f[i] for i in row]
        assert samples["original_acc"][r] == pytest.approx(sum(oo) / 10)
        assert samples["negated_acc"][r] == pytest.approx(sum(gg) / 10)
        assert samples["mean"][r] == pytest.approx((sum(oo) + sum(gg)) / 20)
        assert samples["both_correct"][r] == pytest.approx(sum(x * y for x, y in zip(oo, gg)) / 10)
        assert samples["flip_rate"][r] == pytest.approx(sum(ff) / 10)


def test_paired_resampling_is_joint():
    # Perfectly anti-correlated answers: every item is right under exactly one prompt, so the
    # mean is 0.5 in every joint resample, while each accuracy alone varies.
    o = np.array([float(i % 3 == 0) for i in range(100)])
    ivs = task_intervals("t", {"original": o, "negated": 1 - o, "flipped": np.ones(100)}, resamples=1000)
    assert ivs["mean"] == Interval(0.5, 0.5)
    assert ivs["both_correct"] == Interval(0.0, 0.0) and ivs["flip_rate"] == Interval(1.0, 1.0)
    assert ivs["original_acc"].width > 0.1


def test_task_intervals_use_the_task_stream_and_contain_the_point():
    task = _random_task(300, seed=2)
    a = task_intervals("copa", task, resamples=800, seed=9)
    assert a == task_intervals("copa", task, resamples=800, seed=9)
    assert a != task_intervals("piqa", task, resamples=800, seed=9)
    ref = resampled(task, 800, task_seed(9, "copa"))
    assert a["flip_rate"] == percentile_interval(ref["flip_rate"])
    assert list(a) == list(METRICS)
    point = task_metrics(task)
    assert all(a[name].contains(float(point[name])) for name in METRICS)


# ----------------------------------------------------------------------------- macro


def test_macro_is_stratified_average_by_hand():
    tasks = {"A": _random_task(30, seed=6), "B": _random_task(45, seed=7, p_orig=0.9)}
    R, seed = 200, 3
    per_task_mean = {}
    for name, t in tasks.items():  # each task resampled within itself from its own stream
        idx = bootstrap_indices(len(t["original"]), R, task_seed(seed, name))
        per_task_mean[name] = np.array([(t["original"][row].mean() + t["negated"][row].mean()) / 2 for row in idx])
    ref = percentile_interval((per_task_mean["A"] + per_task_mean["B"]) / 2)
    ivs = macro_intervals(tasks, resamples=R, seed=seed)
    assert ivs["mean"].low == pytest.approx(ref.low, abs=1e-12)
    assert ivs["mean"].high == pytest.approx(ref.high, abs=1e-12)
    assert macro_intervals({"B": tasks["B"], "A": tasks["A"]}, resamples=R, seed=seed) == ivs  # order-free


def test_macro_with_single_variant_task():
    per = {"P": {"original": _f("1100"), "negated": _f("1010"), "flipped": _f("0110")},
           "O": {"original": _f("11111111")}}
    drawn = {t: resampled(a, 100, task_seed(0, t)) for t, a in per.items()}
    macro = macro_samples(drawn)
    np.testing.assert_array_equal(macro["mean"], drawn["P"]["mean"])  # mean from P only
    np.testing.assert_allclose(macro["original_acc"], (drawn["P"]["original_acc"] + 1.0) / 2)
    assert set(macro_intervals(per, resamples=100)) == set(METRICS)
    assert set(macro_intervals({"N": {"negated": _f("0101")}}, resamples=50)) == {"negated_acc"}


# ----------------------------------------------------------------------------- comparisons


def test_compare_binary_identical_models():
    a = np.random.default_rng(8).random(150) < 0.6
    cmp = compare_binary(a, a.copy(), resamples=500)
    assert cmp.diff == 0.0 and cmp.interval == Interval(0.0, 0.0)
    assert (cmp.b01, cmp.b10, cmp.p_value) == (0, 0, 1.0)


def test_compare_binary_hand_case():
    # 40 items: 9 only B right, 1 only A right, 20 both right, 10 neither.
    a = np.array([False] * 9 + [True] + [True] * 20 + [False] * 10)
    b = np.array([True] * 9 + [False] + [True] * 20 + [False] * 10)
    cmp = compare_binary(a, b, resamples=2000, seed=0)
    assert (cmp.b01, cmp.b10, cmp.p_value) == (9, 1, 0.021484375)
    assert cmp.a == 21 / 40 and cmp.b == 29 / 40 and cmp.diff == pytest.approx(8 / 40) and cmp.n_items == 40
    # the interval is the percentile interval of the per-resample differences on shared indices
    diffs = np.array([b[row].mean() - a[row].mean() for row in bootstrap_indices(40, 2000, 0)])
    assert cmp.interval == percentile_interval(diffs)
    assert cmp.interval.low > 0


def test_compare_metric_uses_same_indices_for_both_models():
    t, other = _random_task(60, seed=9), _random_task(60, seed=10)
    same = compare_metric(lambda o, g: (o * g).mean(-1), (t["original"], t["negated"]),
                          (t["original"].copy(), t["negated"].copy()), resamples=300, seed=1)
    assert same.interval == Interval(0.0, 0.0) and same.diff == 0.0
    flips = compare_metric(lambda f: f.mean(-1), (t["flipped"],), (other["flipped"],), resamples=300, seed=1)
    diffs = np.array([other["flipped"][row].mean() - t["flipped"][row].mean() for row in bootstrap_indices(60, 300, 1)])
    assert flips.interval == percentile_interval(diffs) and flips.p_value is None


def test_compare_binary_is_tighter_than_independent_intervals():
    a = np.random.default_rng(12).random(300) < 0.5
    b = a.copy()
    b[:6] = ~b[:6]
    cmp = compare_binary(a, b, resamples=1000)
    wa, wb = wilson(int(a.sum()), 300), wilson(int(b.sum()), 300)
    assert cmp.interval.width < 0.3 * (wa.width + wb.width) / 2


def test_compare_macro():
    tasks_a = {"A": _random_task(50, seed=13), "B": {"original": _random_task(40, seed=14)["original"]}}
    same = compare_macro(tasks_a, {k: {kk: vv.copy() for kk, vv in v.items()} for k, v in tasks_a.items()},
                         resamples=300, seed=2)
    assert set(same) == set(METRICS)
    assert all(c.diff == 0.0 and c.interval == Interval(0.0, 0.0) for c in same.values())
    tasks_b = {"A": _random_task(50, seed=15), "B": {"original": _random_task(40, seed=16)["original"]}}
    cmp = compare_macro(tasks_a, tasks_b, resamples=300, seed=2)
    ref_a = macro_samples({t: resampled(a, 300, task_seed(2, t)) for t, a in tasks_a.items()})
    ref_b = macro_samples({t: resampled(a, 300, task_seed(2, t)) for t, a in tasks_b.items()})
    for name in METRICS:
        assert cmp[name].interval == percentile_interval(ref_b[name] - ref_a[name])
    assert cmp["mean"].n_items == 90


# ----------------------------------------------------------------------------- seeds


def test_mean_std():
    mean, std = mean_std([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5 and std == pytest.approx(math.sqrt((2.25 + 0.25 + 0.25 + 2.25) / 3), abs=1e-15)
    assert mean_std([0.7]) == (0.7, None) and mean_std([0.3, 0.3]) == (0.3, 0.0)
