import math

import torch

from negtune.losses import LossContext, resolve_loss
from helpers import FixedLogits, train_steps


def _batch():
    # one row: tokens [0, 1, 2], prompt = [0], answer = [1, 2]
    ids = torch.tensor([[0, 1, 2, 0]])
    return {
        "input_ids": ids,
        "attention_mask": torch.tensor([[1, 1, 1, 0]]),
        "labels": torch.tensor([[-100, 1, 2, -100]]),
        "n_target_tokens": torch.tensor(2),
    }


def test_ce_hand_value():
    # after token 0: logits [0, ln2, 0] -> p(1) = 2/4; after token 1: uniform -> p(2) = 1/3
    table = [[0.0, math.log(2), 0.0], [0.0, 0.0, 0.0], [5.0, 0.0, 0.0]]
    out = resolve_loss({"name": "ce"})(FixedLogits(table), _batch(), LossContext())
    assert math.isclose(out.loss.item(), (math.log(2) + math.log(3)) / 2, rel_tol=1e-6)
    ce = out.terms["ce"]
    assert float(ce.count) == 2 and ce.unit == "n_target_tokens"
    assert math.isclose(ce.mean().item(), out.loss.item())


def test_ce_trains_tiny_opt(tiny_opt_dir):
    losses = train_steps(resolve_loss({"name": "ce"}), tiny_opt_dir, frozenset())
    assert losses[-1] < 0.7 * losses[0]
