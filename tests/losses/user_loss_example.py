"""A researcher's own loss, kept outside negtune: referenced as ``tests.losses.user_loss_example:focal_ce``.

Recipe::

    loss:
      name: tests.losses.user_loss_example:focal_ce   # or tests/losses/user_loss_example.py:focal_ce
      gamma: 2.0

Focal cross-entropy (Lin et al. 2017) on the target answer's tokens:

    L = (1 / N) * sum_t -(1 - p_t)^gamma * log p_t,     p_t = p(y_t | x, y_<t)

gamma = 0 is plain ``ce``. It follows the normalisation rule (docs/losses.md): return
the *sum* over the unit (here: target tokens) with the micro-batch's count of that unit and
name the unit; the trainer divides by the global batch's count, so the step is the same for
any split into micro-batches and processes (tests/training/test_run.py checks it).
"""
import torch

from negtune.losses import LossOutput, Term, declare


@declare(needs=(), ranges={"gamma": {"ge": 0}})
def focal_ce(model, batch, ctx, gamma: float = 2.0):
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
    labels = batch["labels"][:, 1:]
    mask = (labels != -100).float()
    logp = torch.log_softmax(logits[:, :-1], -1).gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    per_token = -((1 - logp.exp()) ** gamma) * logp
    return LossOutput(terms={"focal": Term(total=(per_token * mask).sum(), count=mask.sum(), unit="n_target_tokens")})


def paired_user_loss(model, batch, ctx, weight: float = 1.0):
    """Declares its needs with a plain attribute (no decorator)."""
    return focal_ce(model, batch, ctx, gamma=0.0)


paired_user_loss.needs = {"paired"}


def needs_k(model, batch, ctx, *, k: int, mode: str = "a"):
    return focal_ce(model, batch, ctx, gamma=float(k))


def bad_signature(model, batch):
    return None


def returns_wrong_type(model, batch, ctx):
    return {"loss": 1.0}


NOT_CALLABLE = 3
