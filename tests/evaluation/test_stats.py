"""Tests for negtune.evaluation.stats.

Reference values are computed here independently of the module (closed forms written
differently, exact fractions, plain Python loops over the bootstrap indices) or taken
from a published table, so a wrong formula in the module makes a test fail.
"""
from __future__ import annotations

import hashlib
import json
import math
import random
from fractions import Fraction

import numpy as np
import pytest

from negtune.evaluation.stats import (
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    METRICS,
    Comparison,
    Interval,
    accuracy,
    bootstrap_indices,
    bootstrap_samples,
    both_correct,
    compare_macro,
    compare_metric,
    compare_paired,
    flip_rate,
    iter_bootstrap_indices,
    macro_intervals,
    macro_metrics,
    macro_samples,
    mcnemar_exact,
    mcnemar_exact_logp,
    mean_std,
    paired_intervals,
    paired_metrics,
    paired_samples,
    percentile_interval,
    stratified_samples,
    task_seed,
    wilson,
)

Z = 1.959963984540054


def _bools(seq: str) -> np.ndarray:
    return np.array([ch == "1" for ch in seq], dtype=bool)


def _random_task(n: int, seed: int, p_orig: float = 0.7, p_neg: float = 0.4) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"original": rng.random(n) < p_orig, "negated": rng.random(n) < p_neg,
            "flipped": rng.random(n) < 0.5}


# ----------------------------------------------------------------------------- Interval


def test_interval_json_roundtrip_keeps_full_precision():
    iv = Interval(0.1 + 0.2, 2 / 3)
    data = json.loads(json.dumps(iv.to_json()))
    assert data == [0.30000000000000004, 0.6666666666666666]
    assert Interval.from_json(data) == iv


def test_interval_rejects_bad_input():
    with pytest.raises(ValueError):
        Interval(0.6, 0.5)
    with pytest.raises(ValueError):
        Interval(float("nan"), 1.0)
    with pytest.raises(ValueError):
        Interval.from_json([0.1, 0.2, 0.3])
    assert Interval(0.2, 0.2).width == 0.0
    assert Interval(0.1, 0.3).contains(0.3) and not Interval(0.1, 0.3).contains(0.31)


# ----------------------------------------------------------------------------- Wilson


def _wilson_by_quadratic(k: int, n: int, z: float) -> tuple[float, float]:
    """Wilson bounds as the roots of (p_hat - p)^2 = z^2 p (1 - p) / n, i.e.
    (1 + z^2/n) p^2 - (2 p_hat + z^2/n) p + p_hat^2 = 0."""
    ph = k / n
    a = 1 + z * z / n
    b = -(2 * ph + z * z / n)
    c = ph * ph
    disc = math.sqrt(b * b - 4 * a * c)
    return (-b - disc) / (2 * a), (-b + disc) / (2 * a)


@pytest.mark.parametrize("k,n", [(8, 10), (3, 17), (50, 100), (1, 2)])
def test_wilson_matches_quadratic_roots(k, n):
    lo, hi = _wilson_by_quadratic(k, n, Z)
    iv = wilson(k, n)
    assert iv.low == pytest.approx(lo, abs=1e-12)
    assert iv.high == pytest.approx(hi, abs=1e-12)


def test_wilson_8_of_10_hand_value():
    # sqrt-free check of the 8/10 case: centre (0.8 + z^2/20) / (1 + z^2/10).
    iv = wilson(8, 10)
    assert (iv.low + iv.high) / 2 == pytest.approx((0.8 + Z * Z / 20) / (1 + Z * Z / 10), abs=1e-12)
    assert iv.low == pytest.approx(0.4901624715, abs=1e-6)
    assert iv.high == pytest.approx(0.9433178485, abs=1e-6)


@pytest.mark.parametrize("k,n,low,high", [
    # Newcombe (1998), "Two-sided confidence intervals for the single proportion:
    # comparison of seven methods", Stat Med 17:857-872, worked examples, method 3
    # (score interval without continuity correction), printed to 4 decimals.
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0000, 0.1611),
    (1, 29, 0.0061, 0.1718),
])
def test_wilson_published_values(k, n, low, high):
    iv = wilson(k, n)
    assert round(iv.low, 4) == low
    assert round(iv.high, 4) == high


def test_wilson_edges():
    n = 25
    iv0 = wilson(0, n)
    assert iv0.low == 0.0
    assert iv0.high == pytest.approx(Z * Z / (n + Z * Z), abs=1e-14)  # k=0: upper = z^2/(n+z^2)
    ivn = wilson(n, n)
    assert ivn.high == 1.0
    assert ivn.low == pytest.approx(n / (n + Z * Z), abs=1e-14)  # k=n: lower = n/(n+z^2)
    # symmetry: interval for k is the mirror of the one for n-k
    a, b = wilson(7, n), wilson(n - 7, n)
    assert a.low == pytest.approx(1 - b.high, abs=1e-14) and a.high == pytest.approx(1 - b.low, abs=1e-14)


def test_wilson_rejects_bad_input():
    with pytest.raises(ValueError):
        wilson(0, 0)
    with pytest.raises(ValueError):
        wilson(5, 4)
    with pytest.raises(ValueError):
        wilson(-1, 4)


# ----------------------------------------------------------------------------- McNemar


def _mcnemar_fraction(b: int, c: int) -> Fraction:
    n = b + c
    if n == 0:
        return Fraction(1)
    term = tail = 1  # C(n, 0); C(n, i+1) = C(n, i) * (n - i) / (i + 1)
    for i in range(min(b, c)):
        term = term * (n - i) // (i + 1)
        tail += term
    return min(Fraction(1), Fraction(2 * tail, 2 ** n))


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
    assert mcnemar_exact_logp(3, 3) == 0.0


def test_mcnemar_symmetric_and_exact_on_a_grid():
    for b in range(0, 25):
        for c in range(0, 25):
            p = mcnemar_exact(b, c)
            assert p == mcnemar_exact(c, b)
            assert p == float(_mcnemar_fraction(b, c))


def test_mcnemar_large_counts_vs_normal_approximation():
    # |b - c| = 200 over n = 10,000 (exact path) and over n = 20,000 (log path): the
    # continuity-corrected normal approximation z = (|b-c| - 1)/sqrt(b+c) is accurate here.
    for b, c in [(4900, 5100), (9859, 10141)]:
        zc = (abs(b - c) - 1) / math.sqrt(b + c)
        approx = math.erfc(zc / math.sqrt(2))
        assert mcnemar_exact(b, c) == pytest.approx(approx, rel=0.01)


def test_mcnemar_log_space_path_matches_exact_fractions():
    # n > 10,000 switches to log space; compare with exact big-integer fractions.
    for b, c in [(5900, 6100), (4000, 7000), (6000, 6003)]:
        assert mcnemar_exact(b, c) == pytest.approx(float(_mcnemar_fraction(b, c)), rel=1e-9)


def test_mcnemar_tiny_p_stays_positive():
    assert mcnemar_exact(0, 1000) == 2.0 ** -999  # exact, representable
    assert mcnemar_exact(0, 20_000) > 0.0  # 2^-19999 underflows: smallest float returned
    assert mcnemar_exact_logp(0, 20_000) == pytest.approx(-19_999 * math.log(2), rel=1e-12)
    b, c = 3, 20_000
    n = b + c
    exact_log = math.log(2 * sum(math.comb(n, i) for i in range(b + 1))) - n * math.log(2)
    assert mcnemar_exact_logp(b, c) == pytest.approx(exact_log, rel=1e-12)
    assert mcnemar_exact(b, c) > 0.0


def test_mcnemar_rejects_negative_counts():
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 3)


# ----------------------------------------------------------------------------- resampling


def test_bootstrap_indices_stream_is_pinned_and_deterministic():
    idx = bootstrap_indices(13, 50, seed=7)
    assert idx.shape == (50, 13) and idx.dtype == np.int64
    assert idx.min() >= 0 and idx.max() < 13
    # The stream definition: one PCG64 generator, integers(0, n) row-major.
    ref = np.random.Generator(np.random.PCG64(7)).integers(0, 13, size=(50, 13), dtype=np.int64)
    np.testing.assert_array_equal(idx, ref)
    np.testing.assert_array_equal(idx, bootstrap_indices(13, 50, seed=7))
    assert not np.array_equal(idx, bootstrap_indices(13, 50, seed=8))


@pytest.mark.parametrize("chunk_rows", [1, 7, 50, 1000])
def test_bootstrap_blocks_do_not_change_draws(chunk_rows):
    blocks = list(iter_bootstrap_indices(11, 50, seed=3, chunk_rows=chunk_rows))
    np.testing.assert_array_equal(np.concatenate(blocks), bootstrap_indices(11, 50, seed=3))


def test_no_global_rng_state_touched():
    np_state, py_state = np.random.get_state(), random.getstate()
    task = _random_task(40, seed=1)
    paired_intervals(task["original"], task["negated"], task["flipped"], resamples=100, seed=5)
    macro_intervals({"t": task}, resamples=100, seed=5)
    after = np.random.get_state()
    assert after[0] == np_state[0] and np.array_equal(after[1], np_state[1]) and after[2:] == np_state[2:]
    assert random.getstate() == py_state


def test_percentile_interval_linear_quantiles():
    # numpy "linear": position q * (B - 1) between order statistics.
    samples = np.arange(10, dtype=float)[::-1]  # order must not matter
    iv = percentile_interval(samples, level=0.95)
    assert iv.low == pytest.approx(0.025 * 9) and iv.high == pytest.approx(0.975 * 9)
    iv90 = percentile_interval(np.arange(101, dtype=float), level=0.90)
    assert iv90.low == pytest.approx(5.0) and iv90.high == pytest.approx(95.0)
    assert percentile_interval(np.full(30, 0.25)) == Interval(0.25, 0.25)
    with pytest.raises(ValueError):
        percentile_interval(np.array([]))
    with pytest.raises(ValueError):
        percentile_interval(np.arange(5.0), level=1.0)


def test_bootstrap_seeds_and_point_estimate():
    c = np.random.default_rng(0).random(200) < 0.6
    s1 = bootstrap_samples(accuracy, [c], resamples=500, seed=1)
    s2 = bootstrap_samples(accuracy, [c], resamples=500, seed=1)
    s3 = bootstrap_samples(accuracy, [c], resamples=500, seed=2)
    np.testing.assert_array_equal(s1, s2)
    assert not np.array_equal(s1, s3)
    assert percentile_interval(s1).contains(c.mean())


def test_bootstrap_constant_array_is_degenerate():
    for value in (True, False):
        s = bootstrap_samples(accuracy, [np.full(50, value)], resamples=200, seed=0)
        assert percentile_interval(s) == Interval(float(value), float(value))


def test_bootstrap_width_matches_binomial_theory():
    # 400 items at p = 0.5: the sampling sd is sqrt(.25/400) = 0.025, so a 95% interval
    # is about 2 * 1.96 * 0.025 = 0.098 wide.
    c = np.array([True, False] * 200)
    iv = percentile_interval(bootstrap_samples(accuracy, [c], resamples=DEFAULT_RESAMPLES, seed=DEFAULT_SEED))
    expected = 2 * 1.96 * math.sqrt(0.25 / 400)
    assert iv.width == pytest.approx(expected, rel=0.15)
    assert iv.contains(0.5)


# ----------------------------------------------------------------------------- paired


def test_paired_samples_match_a_loop_over_the_indices():
    o = _bools("1101001110")
    g = _bools("0110100101")
    f = _bools("1011010010")
    samples = paired_samples(o, g, f, resamples=60, seed=11)
    idx = bootstrap_indices(len(o), 60, seed=11)
    for r, row in enumerate(idx):
        oo = [bool(o[i]) for i in row]
        gg = [bool(g[i]) for i in row]
        ff = [bool(f[i]) for i in row]
        n = len(row)
        assert samples["original_acc"][r] == pytest.approx(sum(oo) / n)
        assert samples["negated_acc"][r] == pytest.approx(sum(gg) / n)
        assert samples["mean"][r] == pytest.approx((sum(oo) / n + sum(gg) / n) / 2)
        assert samples["both_correct"][r] == pytest.approx(sum(x and y for x, y in zip(oo, gg)) / n)
        assert samples["flip_rate"][r] == pytest.approx(sum(ff) / n)


def test_paired_metrics_point_estimates():
    o, g, f = _bools("1101"), _bools("0111"), _bools("1010")
    assert paired_metrics(o, g, f) == {"original_acc": 0.75, "negated_acc": 0.75, "mean": 0.75,
                                       "both_correct": 0.5, "flip_rate": 0.5}


def test_paired_resampling_is_joint():
    # Perfectly anti-correlated answers: every item is right under exactly one prompt, so
    # (orig acc + neg acc)/2 is 0.5 in every joint resample.
    n = 100
    o = np.array([i % 3 == 0 for i in range(n)])
    g = ~o
    f = np.ones(n, dtype=bool)
    ivs = paired_intervals(o, g, f, resamples=1000, seed=4)
    assert ivs["mean"] == Interval(0.5, 0.5)
    assert ivs["both_correct"] == Interval(0.0, 0.0)
    assert ivs["flip_rate"] == Interval(1.0, 1.0)
    assert ivs["original_acc"].width > 0.1
    # Unpaired resampling (each variant drawn on its own) would not be degenerate.
    so = bootstrap_samples(accuracy, [o], resamples=1000, seed=4)
    sg = bootstrap_samples(accuracy, [g], resamples=1000, seed=5)
    assert percentile_interval((so + sg) / 2).width > 0.05


def test_paired_intervals_deterministic_and_contain_point():
    task = _random_task(300, seed=2)
    args = (task["original"], task["negated"], task["flipped"])
    a = paired_intervals(*args, resamples=800, seed=9)
    assert a == paired_intervals(*args, resamples=800, seed=9)
    assert a != paired_intervals(*args, resamples=800, seed=10)
    assert list(a) == list(METRICS)
    point = paired_metrics(*args)
    for name in METRICS:
        assert a[name].contains(point[name]), name


def test_paired_rejects_misaligned_or_non_boolean():
    with pytest.raises(ValueError):
        paired_intervals(np.ones(5, bool), np.ones(4, bool), np.ones(5, bool))
    with pytest.raises(ValueError):
        paired_intervals(np.array([0.5, 1.0]), np.ones(2, bool), np.ones(2, bool))
    # 0/1 integers are accepted as booleans
    ivs = paired_intervals([1, 0, 1], [0, 1, 1], [1, 1, 0], resamples=20, seed=0)
    assert set(ivs) == set(METRICS)


# ----------------------------------------------------------------------------- macro


def test_task_seed_is_stable_and_task_specific():
    expected = int.from_bytes(hashlib.sha256(b'[0, "copa"]').digest()[:8], "big")
    assert task_seed(0, "copa") == expected
    assert task_seed(0, "copa") != task_seed(1, "copa")
    assert task_seed(0, "copa") != task_seed(0, "piqa")


def test_macro_single_task_equals_paired_with_task_seed():
    task = _random_task(120, seed=3)
    macro = macro_intervals({"copa": task}, resamples=500, seed=2)
    direct = paired_intervals(task["original"], task["negated"], task["flipped"],
                              resamples=500, seed=task_seed(2, "copa"))
    assert macro == direct


def test_macro_adding_a_task_keeps_other_tasks_draws():
    a, b = _random_task(80, seed=4), _random_task(150, seed=5)
    alone = stratified_samples({"A": a}, resamples=300, seed=1)
    both = stratified_samples({"B": b, "A": a}, resamples=300, seed=1)
    for name in METRICS:
        np.testing.assert_array_equal(alone["A"][name], both["A"][name])
    # task order does not matter either
    assert macro_intervals({"A": a, "B": b}, resamples=300, seed=1) == \
        macro_intervals({"B": b, "A": a}, resamples=300, seed=1)


def test_macro_is_stratified_average_by_hand():
    tasks = {"A": _random_task(30, seed=6), "B": _random_task(45, seed=7, p_orig=0.9)}
    R, seed = 200, 3
    samples = macro_samples(stratified_samples(tasks, resamples=R, seed=seed))
    # Reference: each task resampled within itself from its own stream, then averaged.
    per_task_mean = {}
    for name, t in tasks.items():
        idx = bootstrap_indices(len(t["original"]), R, task_seed(seed, name))
        per_task_mean[name] = np.array([(t["original"][row].mean() + t["negated"][row].mean()) / 2
                                        for row in idx])
    np.testing.assert_allclose(samples["mean"], (per_task_mean["A"] + per_task_mean["B"]) / 2,
                               rtol=0, atol=1e-15)
    ivs = macro_intervals(tasks, resamples=R, seed=seed)
    ref = percentile_interval((per_task_mean["A"] + per_task_mean["B"]) / 2)
    assert ivs["mean"].low == pytest.approx(ref.low, abs=1e-12)
    assert ivs["mean"].high == pytest.approx(ref.high, abs=1e-12)


def test_macro_with_single_variant_task():
    paired = {"original": _bools("1100"), "negated": _bools("1010"), "flipped": _bools("0110")}
    orig_only = {"original": _bools("11111111")}
    tasks = {"P": paired, "O": orig_only}
    point = macro_metrics(tasks)
    assert point == {"original_acc": (0.5 + 1.0) / 2, "negated_acc": 0.5, "mean": 0.5,
                     "both_correct": 0.25, "flip_rate": 0.5}
    per = stratified_samples(tasks, resamples=100, seed=0)
    assert set(per["O"]) == {"original_acc"}
    macro = macro_samples(per)
    np.testing.assert_array_equal(macro["mean"], per["P"]["mean"])  # mean from P only
    np.testing.assert_allclose(macro["original_acc"], (per["P"]["original_acc"] + 1.0) / 2)
    ivs = macro_intervals(tasks, resamples=100, seed=0)
    assert set(ivs) == set(METRICS)
    only_neg = macro_intervals({"N": {"negated": _bools("0101")}}, resamples=50, seed=0)
    assert set(only_neg) == {"negated_acc"}


def test_macro_rejects_bad_task_arrays():
    with pytest.raises(ValueError, match="flipped"):
        macro_intervals({"A": {"original": _bools("10"), "negated": _bools("01")}})
    with pytest.raises(ValueError, match="aligned"):
        macro_intervals({"A": {"original": _bools("10"), "negated": _bools("011"),
                               "flipped": _bools("01")}})
    with pytest.raises(ValueError, match="unknown"):
        macro_intervals({"A": {"orig": _bools("10")}})
    with pytest.raises(ValueError):
        macro_intervals({})


# ----------------------------------------------------------------------------- comparisons


def test_compare_paired_identical_models():
    a = np.random.default_rng(8).random(150) < 0.6
    cmp = compare_paired(a, a.copy(), resamples=500, seed=0)
    assert cmp.diff == 0.0
    assert cmp.interval == Interval(0.0, 0.0)
    assert (cmp.b01, cmp.b10) == (0, 0)
    assert cmp.p_value == 1.0
    assert cmp.a == cmp.b == pytest.approx(a.mean())


def test_compare_paired_hand_case():
    # 40 items: 9 where only B is right, 1 where only A is right, 20 both right, 10 neither.
    a = np.array([False] * 9 + [True] + [True] * 20 + [False] * 10)
    b = np.array([True] * 9 + [False] + [True] * 20 + [False] * 10)
    cmp = compare_paired(a, b, resamples=2000, seed=0)
    assert (cmp.b01, cmp.b10) == (9, 1)
    assert cmp.p_value == 0.021484375
    assert cmp.a == 21 / 40 and cmp.b == 29 / 40
    assert cmp.diff == pytest.approx(8 / 40)
    assert cmp.interval.contains(cmp.diff)
    assert cmp.interval.low > 0
    assert cmp.n_items == 40
    assert Comparison.from_json(json.loads(json.dumps(cmp.to_json()))) == cmp


def test_compare_metric_uses_same_indices_for_both_models():
    t = _random_task(60, seed=9)
    other = _random_task(60, seed=10)
    same = compare_metric(both_correct, (t["original"], t["negated"]),
                          (t["original"].copy(), t["negated"].copy()), resamples=300, seed=1)
    assert same.interval == Interval(0.0, 0.0) and same.diff == 0.0
    flips = compare_metric(flip_rate, (t["flipped"],), (other["flipped"],), resamples=300, seed=1)
    assert flips.diff == pytest.approx(other["flipped"].mean() - t["flipped"].mean())
    # Reference: the per-resample difference computed from the shared indices.
    idx = bootstrap_indices(60, 300, seed=1)
    diffs = np.array([other["flipped"][row].mean() - t["flipped"][row].mean() for row in idx])
    assert flips.interval == percentile_interval(diffs)
    assert flips.b01 is None and flips.p_value is None


def test_compare_paired_is_tighter_than_independent_intervals():
    # B = A with 6 items changed out of 300: the paired interval of the difference is far
    # narrower than the sum of the two marginal half-widths.
    a = np.random.default_rng(12).random(300) < 0.5
    b = a.copy()
    b[:6] = ~b[:6]
    cmp = compare_paired(a, b, resamples=1000, seed=0)
    wa, wb = wilson(int(a.sum()), 300), wilson(int(b.sum()), 300)
    assert cmp.interval.width < 0.3 * (wa.width + wb.width) / 2


def test_compare_macro():
    tasks_a = {"A": _random_task(50, seed=13), "B": {"original": _random_task(40, seed=14)["original"]}}
    same = compare_macro(tasks_a, {k: {kk: vv.copy() for kk, vv in v.items()} for k, v in tasks_a.items()},
                         resamples=300, seed=2)
    assert set(same) == set(METRICS)
    for cmp in same.values():
        assert cmp.diff == 0.0 and cmp.interval == Interval(0.0, 0.0)
    tasks_b = {"A": _random_task(50, seed=15), "B": {"original": _random_task(40, seed=16)["original"]}}
    cmp = compare_macro(tasks_a, tasks_b, resamples=300, seed=2)
    ref_a = macro_samples(stratified_samples(tasks_a, resamples=300, seed=2))
    ref_b = macro_samples(stratified_samples(tasks_b, resamples=300, seed=2))
    for name in METRICS:
        assert cmp[name].interval == percentile_interval(ref_b[name] - ref_a[name])
        assert cmp[name].diff == pytest.approx(macro_metrics(tasks_b)[name] - macro_metrics(tasks_a)[name])
    assert cmp["mean"].n_items == 90
    with pytest.raises(ValueError, match="different tasks"):
        compare_macro(tasks_a, {"A": tasks_b["A"]})


# ----------------------------------------------------------------------------- mean_std


def test_mean_std():
    mean, std = mean_std([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5
    assert std == pytest.approx(math.sqrt((2.25 + 0.25 + 0.25 + 2.25) / 3), abs=1e-15)
    assert mean_std([0.7]) == (0.7, None)
    assert mean_std([0.3, 0.3]) == (0.3, 0.0)
    with pytest.raises(ValueError):
        mean_std([])
