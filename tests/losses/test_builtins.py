"""Each built-in loss against a hand-computed value, and each trains a tiny OPT (loss falls)."""
import math

import pytest
import torch

from negtune.losses import LossContext, resolve_loss
from helpers import FixedLogits, train_steps

LN = math.log
# logits looked up by the current token (vocab 4):
#   after 0: p = [1, 2, 1, 1] / 5     after 1 or 2: uniform     after 3: p = [1, 3, 1, 1] / 6
TABLE = [[0.0, LN(2), 0.0, 0.0], [0.0] * 4, [0.0] * 4, [0.0, LN(3), 0.0, 0.0]]
P0 = [0.2, 0.4, 0.2, 0.2]
P3 = [1 / 6, 0.5, 1 / 6, 1 / 6]


def T(x, dtype=torch.long):
    return torch.tensor(x, dtype=dtype)


def base_batch():
    # one negated row: prompt [0], target answer [2]
    return {"input_ids": T([[0, 2]]), "attention_mask": T([[1, 1]]), "labels": T([[-100, 2]]),
            "n_target_tokens": T(1)}


def with_pair(b):
    # original partner: prompt [0, 3], answer [1]
    b.update(pair_input_ids=T([[0, 3, 1]]), pair_attention_mask=T([[1, 1, 1]]),
             pair_labels=T([[-100, -100, 1]]), pair_n_target_tokens=T(1), pair_weight=T([1.0], torch.float32))
    return b


def with_options(b, target, gold):
    # options: 0 = [1], 1 = [2], 2 = [3, 1]
    b.update(opt_input_ids=T([[0, 1, 0], [0, 2, 0], [0, 3, 1]]),
             opt_attention_mask=T([[1, 1, 0], [1, 1, 0], [1, 1, 1]]),
             opt_labels=T([[-100, 1, -100], [-100, 2, -100], [-100, 3, 1]]),
             opt_row=T([0, 0, 0]), opt_index=T([0, 1, 2]),
             opt_is_target=T([k == target for k in range(3)], torch.bool),
             opt_is_gold=T([k in gold for k in range(3)], torch.bool))
    return b


def run(cfg, batch, ctx=None):
    return resolve_loss(cfg)(FixedLogits(TABLE), batch, ctx or LossContext())


def test_mixed_hand_value():
    out = run({"name": "mixed"}, with_pair(base_batch()))
    expect = (-LN(P0[2]) - LN(P3[1])) / 2
    assert math.isclose(out.loss.item(), expect, rel_tol=1e-6)
    ce = out.terms["ce"]  # one trained term over the union of both answers' tokens
    assert float(ce.count) == 2 and ce.weight == 1
    assert math.isclose(out.terms["ce_negated"].mean().item(), -LN(P0[2]), rel_tol=1e-6)
    assert math.isclose(out.terms["ce_original"].mean().item(), -LN(P3[1]), rel_tol=1e-6)
    assert out.terms["ce_negated"].weight == 0 and out.terms["ce_original"].weight == 0  # logged only


def test_n_tokens_must_match_batch():
    from negtune.errors import UserError
    from negtune.losses import LossOutput, LossSpec

    spec = LossSpec("liar", lambda m, b, c: LossOutput(torch.tensor(1.0), {}, n_tokens=7), frozenset(), {})
    with pytest.raises(UserError, match="n_tokens=7 but the batch has 1 target tokens"):
        spec(None, base_batch(), LossContext())


def test_unlikelihood_hand_value():
    # gold {1}: the non-gold options 0 ([1]) and 2 ([3, 1]) get the unlikelihood term
    b = with_options(base_batch(), target=1, gold={1})
    out = run({"name": "unlikelihood", "alpha": 0.5}, b)
    ul_tokens = [-LN(1 - P0[1]), -LN(1 - P0[3]), -LN(1 - P3[1])]
    expect = -LN(P0[2]) + 0.5 * sum(ul_tokens) / 3
    assert math.isclose(out.loss.item(), expect, rel_tol=1e-6)
    assert math.isclose(out.terms["ul"].mean().item(), sum(ul_tokens) / 3, rel_tol=1e-6)
    assert float(out.terms["ul"].count) == 3 and out.terms["ul"].weight == 0.5


def test_unlikelihood_clamps_certain_tokens():
    table = [[0.0, 200.0, 0.0, 0.0]] + TABLE[1:]  # p(1 | 0) == 1 in float32
    b = with_options(base_batch(), target=1, gold={1})
    out = resolve_loss({"name": "unlikelihood", "alpha": 1.0})(FixedLogits(table), b, LossContext())
    assert torch.isfinite(out.loss)
    out.loss.backward()


def test_kl_anchor_hand_value():
    b = with_pair(base_batch())
    ref = lambda ids, mask: torch.zeros(ids.shape + (4,))  # base model: uniform
    out = run({"name": "kl_anchor", "beta": 2.0}, b, LossContext(reference_logits=ref))
    kl = sum(0.25 * (LN(0.25) - LN(q)) for q in P3)
    assert math.isclose(out.loss.item(), -LN(P0[2]) + 2.0 * kl, rel_tol=1e-6)
    assert math.isclose(out.terms["kl"].mean().item(), kl, rel_tol=1e-6)


def test_kl_anchor_is_zero_against_itself_and_needs_reference():
    b = with_pair(base_batch())
    model = FixedLogits(TABLE)
    ref = lambda ids, mask: model(ids).logits.detach()
    out = resolve_loss({"name": "kl_anchor"})(model, b, LossContext(reference_logits=ref))
    assert abs(out.terms["kl"].mean().item()) < 1e-6
    with pytest.raises(RuntimeError, match="reference_logits"):
        resolve_loss({"name": "kl_anchor"})(model, b, LossContext())


def test_rank_margin_softmax_hand_value():
    # target 0 ([1]); option 1 also gold (left out); option 2 ([3, 1]) is wrong
    b = with_options(base_batch(), target=0, gold={0, 1})
    s0 = LN(P0[1])
    s2 = (LN(P0[3]) + LN(P3[1])) / 2
    rank = -(s0 - LN(math.exp(s0) + math.exp(s2)))
    out = run({"name": "rank_margin", "ce_weight": 0.5}, b)
    assert math.isclose(out.terms["rank"].mean().item(), rank, rel_tol=1e-6)
    assert math.isclose(out.loss.item(), rank + 0.5 * -s0, rel_tol=1e-6)
    assert out.components["gold_top"] == 1.0
    # without length normalisation option 2 scores its sum
    s2sum = LN(P0[3]) + LN(P3[1])
    out = run({"name": "rank_margin", "ce_weight": 0.0, "length_norm": False}, b)
    assert math.isclose(out.loss.item(), -(s0 - LN(math.exp(s0) + math.exp(s2sum))), rel_tol=1e-6)


def test_rank_margin_hinge_hand_value():
    b = with_options(base_batch(), target=0, gold={0})
    s0, s1 = LN(P0[1]), LN(P0[2])
    s2 = (LN(P0[3]) + LN(P3[1])) / 2
    out = run({"name": "rank_margin", "mode": "margin", "margin": 1.0, "ce_weight": 0.0}, b)
    expect = (max(0, 1.0 - (s0 - s1)) + max(0, 1.0 - (s0 - s2))) / 2
    assert math.isclose(out.loss.item(), expect, rel_tol=1e-6)


def test_rank_margin_two_rows_batched_equals_separate():
    b = with_options(base_batch(), target=0, gold={0})
    two = {k: v for k, v in b.items()}
    for k in ("opt_input_ids", "opt_attention_mask", "opt_labels", "opt_index", "opt_is_target", "opt_is_gold"):
        two[k] = torch.cat([b[k], b[k]])
    two["opt_row"] = T([0, 0, 0, 1, 1, 1])
    for k in ("input_ids", "attention_mask", "labels"):
        two[k] = torch.cat([b[k], b[k]])
    two["n_target_tokens"] = T(2)
    one = run({"name": "rank_margin"}, b)
    both = run({"name": "rank_margin"}, two)
    assert math.isclose(one.loss.item(), both.loss.item(), rel_tol=1e-6)


@pytest.mark.parametrize("cfg", [
    {"name": "mixed"},
    {"name": "unlikelihood", "alpha": 0.5},
    {"name": "kl_anchor", "beta": 0.5},
    {"name": "rank_margin"},
    {"name": "rank_margin", "mode": "margin", "ce_weight": 0.0},
])
def test_builtin_trains_tiny_opt(cfg, tiny_opt_dir):
    spec = resolve_loss(cfg)
    losses = train_steps(spec, tiny_opt_dir, spec.needs, steps=20, reference="reference_model" in spec.needs)
    assert all(math.isfinite(x) for x in losses)
    assert losses[-1] < 0.7 * losses[0], losses
