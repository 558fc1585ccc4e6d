"""Paired metrics on a hand-made case with known answers."""
from __future__ import annotations

import pytest

from negtune.data.instances import Instance
from negtune.data.paper_csv import set_name as csv_set_name
from helpers import metrics_json
from negtune.evaluation.scoring import OptionScore


# Wilson 95% for 2/3: (p + z^2/2n -+ z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n), z = 1.959964
_Z = 1.959963984540054
WILSON_2_OF_3 = tuple((2 / 3 + _Z ** 2 / 6 + sign * _Z * ((2 / 9) / 3 + _Z ** 2 / 36) ** 0.5) / (1 + _Z ** 2 / 3)
                      for sign in (-1, 1))


def S(*pairs):
    return [OptionScore(ll, n) for ll, n in pairs]


def test_paired_metrics_known_answers():
    A, B = (" A", " B")
    insts = [
        # item 1: orig picks A (gold A) ; neg has SWAPPED order, picks " A" again -> wrong, no flip
        Instance("qa", "1", "original", "p", (A, B), 0, (0,)),
        Instance("qa", "1", "negated", "n", (B, A), 0, (0,)),
        # item 2: orig picks B (gold A) -> wrong; neg picks B (gold B) -> right, no flip
        Instance("qa", "2", "original", "p", (A, B), 0, (0,)),
        Instance("qa", "2", "negated", "n", (A, B), 1, (1,)),
        # item 3: orig A right, neg B right -> both correct, flip
        Instance("qa", "3", "original", "p", (A, B), 0, (0,)),
        Instance("qa", "3", "negated", "n", (A, B), 1, (1,)),
        # instruction-free on item 3 only: agrees with original (A)
        Instance("qa", "3", "instruction_free", "f", (B, A), 1, (1,)),
    ]
    scores = [
        S((-1, 1), (-2, 1)),   # 1 orig -> A (correct)
        S((-3, 1), (-1, 1)),   # 1 neg (B, A) -> " A" (gold is B at 0) -> wrong; same text -> no flip
        S((-2, 1), (-1, 1)),   # 2 orig -> B (wrong)
        S((-2, 1), (-1, 1)),   # 2 neg -> B (correct); same text as orig -> no flip
        S((-1, 1), (-2, 1)),   # 3 orig -> A (correct)
        S((-2, 1), (-1, 1)),   # 3 neg -> B (correct) -> flip
        S((-2, 1), (-1, 1)),   # 3 free -> " A" == orig -> agree
    ]
    res = metrics_json(insts, scores)
    t = res["tasks"]["qa"]
    assert t["original"] == {"acc": pytest.approx(2 / 3), "acc_tok_mean": pytest.approx(2 / 3), "chance": 0.5, "n": 3,
                             "ci": [pytest.approx(WILSON_2_OF_3[0], abs=1e-12), pytest.approx(WILSON_2_OF_3[1], abs=1e-12)]}
    assert t["negated"]["acc"] == pytest.approx(2 / 3)
    assert t["mean"] == pytest.approx(2 / 3)
    assert t["both_correct"] == pytest.approx(1 / 3)
    assert t["flip_rate"] == pytest.approx(1 / 3)
    assert t["n_pairs"] == 3
    assert t["instruction_free"]["n"] == 1
    assert t["instruction_free_agreement"] == 1.0
    assert res["summary"]["n_tasks"] == 1 and res["summary"]["flip_rate"] == pytest.approx(1 / 3)


def test_tok_mean_differs_from_sum_and_macro():
    insts = [Instance("a", "1", "original", "p", (" x", " y"), 0, (0,)),
             Instance("a", "1", "negated", "n", (" x", " y"), 1, (1,)),
             Instance("b", "1", "original", "p", (" x", " y"), 0, (0,))]
    # sum prefers x (-4 > -5) but per-token mean prefers y (-5/5 > -4/2)
    scores = [S((-4, 2), (-5, 5)), S((-4, 2), (-5, 5)), S((-1, 1), (-2, 1))]
    res = metrics_json(insts, scores)
    a = res["tasks"]["a"]
    assert a["original"]["acc"] == 1 and a["original"]["acc_tok_mean"] == 0
    assert a["negated"]["acc"] == 0 and a["negated"]["acc_tok_mean"] == 1
    assert a["flip_rate"] == 0 and a["tok_mean"]["flip_rate"] == 0 and a["tok_mean"]["mean"] == 0.5
    b = res["tasks"]["b"]
    assert b["mean"] is None and b["flip_rate"] is None
    s = res["summary"]
    assert s["original_acc"] == 1.0 and s["negated_acc"] == 0.0 and s["mean"] == 0.5 and s["n_tasks"] == 2


@pytest.mark.parametrize("name,expected", [
    ("piqa_generate_negation_300.csv", "piqa_generate"),
    ("piqa_generate_300.csv", "piqa_generate"),
    ("story_cloze_Generate_Ending_Negation_50.csv", "story_cloze_Generate_Ending"),
    ("super_glue_generate_100.csv", "super_glue_generate"),
    ("mine.csv", "mine"),
])
def test_csv_set_name(name, expected):
    assert csv_set_name(name) == expected


def test_chance_counts_every_gold_option():
    """A negated 4-option item has 3 gold options: a random pick is right 3 times in 4."""
    opts = (" a", " b", " c", " d")
    insts = [Instance("arc", "1", "original", "p", opts, 2, (2,)),
             Instance("arc", "1", "negated", "n", opts, 0, (0, 1, 3)),
             Instance("arc", "2", "negated", "n", opts[:2], 0, (0,))]
    scores = [S((-1, 1), (-1, 1), (-1, 1), (-1, 1))] * 2 + [S((-1, 1), (-1, 1))]
    t = metrics_json(insts, scores)["tasks"]["arc"]
    assert t["original"]["chance"] == 0.25
    assert t["negated"]["chance"] == pytest.approx((0.75 + 0.5) / 2)


def test_item_records_and_intervals():
    """Per-item records (what `negtune compare` pairs) and the paired-bootstrap intervals,
    recomputed here from the item outcomes by a plain loop over the bootstrap indices."""
    import hashlib
    import json

    import numpy as np

    from negtune.evaluation.stats import bootstrap_indices, task_seed

    opts = (" a", " b")
    insts, scores = [], []
    # 6 items: original picks a (gold a) for items 0-3, b for 4-5; negated picks b for 0-2, a for 3-5
    for i in range(6):
        insts.append(Instance("t", f"q{i}", "original", f"Correct? {i}", opts, 0, (0,)))
        scores.append(S((-1, 1), (-2, 1)) if i < 4 else S((-2, 1), (-1, 1)))
        insts.append(Instance("t", f"q{i}", "negated", f"Incorrect? {i}", opts, 1, (1,)))
        scores.append(S((-2, 1), (-1, 1)) if i < 3 else S((-1, 1), (-2, 1)))
    t = metrics_json(insts, scores)["tasks"]["t"]
    orig = t["items"]["original"]
    assert orig["id"] == [f"q{i}" for i in range(6)] and orig["pred"] == [0, 0, 0, 0, 1, 1]
    assert orig["correct"] == [1, 1, 1, 1, 0, 0]
    assert orig["hash"][0] == hashlib.sha256(json.dumps(["Correct? 0", [" a", " b"], [0]]).encode()).hexdigest()[:12]
    assert orig["pred_hash"][0] == hashlib.sha256(b'" a"').hexdigest()[:8]
    assert t["items"]["negated"]["correct"] == [1, 1, 1, 0, 0, 0]
    # flips: items 0-2 (a -> b) and 4-5 (b -> a); both right: 0-2
    assert t["flip_rate"] == pytest.approx(5 / 6) and t["both_correct"] == pytest.approx(3 / 6)
    o = np.array([1, 1, 1, 1, 0, 0.0])
    g = np.array([1, 1, 1, 0, 0, 0.0])
    f = np.array([1, 1, 1, 0, 1, 1.0])
    idx = bootstrap_indices(6, 2000, task_seed(0, "t"))
    for key, values in (("flip_rate", [f[r].mean() for r in idx]), ("both_correct", [(o * g)[r].mean() for r in idx]),
                        ("mean", [(o[r].mean() + g[r].mean()) / 2 for r in idx])):
        low, high = np.quantile(values, [0.025, 0.975])
        assert t["ci"][key] == [pytest.approx(low, abs=1e-12), pytest.approx(high, abs=1e-12)], key
    s = metrics_json(insts, scores)["summary"]
    assert s["ci"]["flip_rate"] == t["ci"]["flip_rate"]  # one task: the macro interval is the task's
    assert s["ci"]["original_acc"][0] <= 4 / 6 <= s["ci"]["original_acc"][1]
