"""Paired metrics on a hand-made case with known answers."""
from __future__ import annotations

import pytest

from negtune.data.instances import Instance
from negtune.data.paper_csv import set_name as csv_set_name
from helpers import metrics_json
from negtune.evaluation.scoring import OptionScore


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
    assert t["original"] == {"acc": pytest.approx(2 / 3), "acc_tok_mean": pytest.approx(2 / 3), "chance": 0.5, "n": 3}
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
