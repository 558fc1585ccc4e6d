"""Helpers for the loss tests: a fake model with fixed logits and a tiny-OPT training loop."""
from __future__ import annotations

from types import SimpleNamespace

import torch

from negtune.data.instances import Instance


class FixedLogits(torch.nn.Module):
    """A 'model' whose logits are looked up by token id: logits[b, t] = table[input_ids[b, t]].

    Making the prediction a function of the current token keeps hand computations small.
    """

    def __init__(self, table):
        super().__init__()
        self.table = torch.nn.Parameter(torch.as_tensor(table, dtype=torch.float32))

    def forward(self, input_ids, attention_mask=None, **_):
        return SimpleNamespace(logits=self.table[input_ids])


def toy_instances() -> list[Instance]:
    """Two items under original and negated prompts (2 and 4 options)."""
    out = []
    items = [
        ("q1", "Question: Which is a fruit? Answer is", (" apple", " dog"), 0),
        ("q2", "Question: What is the capital of France? Answer is", (" Paris", " red", " cat", " blue"), 0),
    ]
    for sid, q, opts, correct in items:
        out.append(Instance("demo", sid, "original", "Generate the correct answer. " + q, opts, correct, (correct,)))
        wrong = tuple(i for i in range(len(opts)) if i != correct)
        out.append(Instance("demo", sid, "negated", "Generate the incorrect answer. " + q, opts, wrong[0], wrong))
    return out


def train_steps(spec, model_dir, needs, steps=20, lr=3e-3, reference=False):
    """Train a tiny OPT with ``spec`` for ``steps`` full-batch steps; return the loss values."""
    import copy

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from negtune.data.collate import Collator, TrainExamples
    from negtune.losses import LossContext

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    ds = TrainExamples(toy_instances(), needs, tok, max_length=64)
    batch = Collator(tok, needs, 64)([ds[i] for i in range(len(ds))])
    ref_fn = None
    if reference:
        ref = copy.deepcopy(model).eval()

        def ref_fn(ids, mask):
            with torch.no_grad():
                return ref(input_ids=ids, attention_mask=mask).logits

    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    losses = []
    for step in range(steps):
        out = spec(model, batch, LossContext(reference_logits=ref_fn, step=step))
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(float(out.loss.detach()))
    return losses
