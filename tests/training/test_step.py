"""``train_step`` in process: the same global batch split 8 x 1 or 4 x 2 gives the same step.

The subprocess test in test_run.py adds 2 processes through the real trainer; this one runs
in a second with a one-process stand-in for ``accelerate.Accelerator`` and also checks what
is logged (the step's loss and each term's global mean).
"""
import contextlib
from pathlib import Path

import pytest
import torch

from negtune.config import DataConfig
from negtune.data.build import build_dataset
from negtune.data.collate import Collator, TrainExamples
from negtune.errors import UserError
from negtune.losses import LossContext, LossOutput, LossSpec, Term, resolve_loss
from negtune.training.step import train_step

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples"
LOSSES = [
    {"name": "ce"},
    {"name": "mixed"},
    {"name": "unlikelihood", "alpha": 0.5},
    {"name": "kl_anchor", "beta": 0.5},
    {"name": "rank_margin"},
    {"name": "rank_margin", "mode": "margin", "margin": 2.0, "ce_weight": 0.0},
    {"name": "tests.losses.user_loss_example:focal_ce", "gamma": 2.0},
]


class OneProcess:
    """The part of ``accelerate.Accelerator`` that ``train_step`` uses, for one process."""

    num_processes = 1

    def no_sync(self, model):
        return contextlib.nullcontext()

    def backward(self, loss):
        loss.backward()

    def reduce(self, tensor, reduction="sum"):
        return tensor


class Recorder(torch.optim.SGD):
    """SGD that keeps the gradient of its last step."""

    def step(self, closure=None):
        self.seen = [p.grad.detach().clone() for g in self.param_groups for p in g["params"]]
        return super().step(closure)


@pytest.fixture(scope="module")
def instances():
    cfg = DataConfig(tasks=["arc_easy", "copa"], variants=["original", "negated"], pairs=True, max_instances=None,
                     negated_target="all_wrong", files={"arc_easy": str(SAMPLES / "arc_easy" / "train.jsonl"),
                                                        "copa": str(SAMPLES / "copa" / "train.jsonl")})
    return build_dataset(cfg, seed=2).instances


def step_once(model_dir, spec, rows, split, instances):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    tok = AutoTokenizer.from_pretrained(model_dir)
    examples = TrainExamples(instances, spec.needs, tok, max_length=96)
    collate = Collator(tok, spec.needs, 96)
    micro = [collate([examples[i] for i in rows[j:j + split]]) for j in range(0, len(rows), split)]
    ref = None
    if "reference_model" in spec.needs:
        base = AutoModelForCausalLM.from_pretrained(model_dir).eval()

        def ref(ids, mask):
            with torch.no_grad():
                return base(input_ids=ids, attention_mask=mask).logits

    opt = Recorder(model.parameters(), lr=1.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    result = train_step(OneProcess(), model, opt, sched, spec, micro, LossContext(reference_logits=ref), None, "test")
    return result, opt.seen


@pytest.mark.parametrize("cfg", LOSSES, ids=lambda c: "-".join(str(v) for v in c.values()))
def test_split_does_not_change_the_step(cfg, tiny_opt_dir, instances, monkeypatch):
    monkeypatch.chdir(Path(__file__).resolve().parents[2])  # the user loss resolves from the repo root
    spec = resolve_loss(cfg)
    n_rows = len(TrainExamples(instances, spec.needs))
    # 8 rows mixing ARC (4 options; under all_wrong 3 rows share a partner) and COPA (2 options)
    rows = [0, 1, 2, 3, n_rows - 1, n_rows - 2, n_rows // 2, 5]
    whole, g1 = step_once(tiny_opt_dir, spec, rows, 8, instances)
    split, g2 = step_once(tiny_opt_dir, spec, rows, 4, instances)
    scale = max(g.abs().max().item() for g in g1)
    assert max((a - b).abs().max().item() for a, b in zip(g1, g2)) <= 1e-5 * scale
    assert split.loss == pytest.approx(whole.loss, rel=1e-6)
    assert split.components.keys() == whole.components.keys()
    for k, v in whole.components.items():
        if k != "gold_top":  # a per-row fraction: averaged over micro-batches by rows
            assert split.components[k] == pytest.approx(v, rel=1e-5, abs=1e-7), k


def test_terms_must_be_the_same_in_every_micro_batch(tiny_opt_dir, instances):
    calls = []

    def moody(model, batch, ctx):
        out = resolve_loss({"name": "ce"})(model, batch, ctx)
        calls.append(1)
        name = "ce" if len(calls) == 1 else "other"
        return LossOutput(terms={name: out.terms["ce"]})

    spec = LossSpec("moody", moody, frozenset(), {})
    with pytest.raises(UserError, match=r"returned terms \['other'\] for micro-batch 2 but \['ce'\]"):
        step_once(tiny_opt_dir, spec, list(range(8)), 4, instances)


def test_a_term_count_that_is_not_its_unit_is_refused():
    def liar(model, batch, ctx):
        return LossOutput(terms={"x": Term(torch.tensor(1.0, requires_grad=True), 3, "n_target_tokens")})

    batch = {"input_ids": torch.zeros(1, 2, dtype=torch.long), "n_target_tokens": torch.tensor(2)}
    with pytest.raises(UserError, match="term 'x' reports count 3 but its unit 'n_target_tokens' counts 2"):
        LossSpec("liar", liar, frozenset(), {})(None, batch, LossContext())
    with pytest.raises(UserError, match="term 'x': cannot count its unit 'n_rows'"):
        LossSpec("liar", lambda m, b, c: LossOutput(terms={"x": Term(torch.tensor(1.0), 1, "n_rows")}),
                 frozenset(), {})(None, batch, LossContext())


def test_shorthands_become_one_term():
    batch = {"input_ids": torch.zeros(3, 2, dtype=torch.long), "n_target_tokens": torch.tensor(5)}
    loss = torch.tensor(2.0)
    out = LossSpec("tok", lambda m, b, c: LossOutput(loss, {"a": 1.0}, n_tokens=5), frozenset(), {})(None, batch, None)
    assert out.loss is loss and out.terms["loss"].unit == "n_target_tokens" and float(out.terms["loss"].count) == 5
    assert out.terms["loss"].total.item() == 10.0 and out.components == {"a": 1.0}
    out = LossSpec("bare", lambda m, b, c: loss, frozenset(), {})(None, batch, None)
    assert out.terms["loss"].unit.__name__ == "rows" and float(out.terms["loss"].count) == 3
    with pytest.raises(ValueError, match="not both"):
        LossOutput(loss, terms={"x": Term(loss, 1, "n_target_tokens")})


@pytest.mark.parametrize("cfg", [LOSSES[0], LOSSES[1], LOSSES[-1]], ids=["ce", "mixed", "focal_ce"])
def test_one_micro_batch_is_the_loss_itself(cfg, tiny_opt_dir, instances, monkeypatch):
    """With the whole global batch in one micro-batch the step backpropagates exactly the loss
    the function computed (bit for bit: runs made before the normalisation rule, such as
    the demo's, are reproduced)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    spec = resolve_loss(cfg)
    rows = list(range(8))
    _, stepped = step_once(tiny_opt_dir, spec, rows, 8, instances)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_opt_dir)
    tok = AutoTokenizer.from_pretrained(tiny_opt_dir)
    examples = TrainExamples(instances, spec.needs, tok, max_length=96)
    batch = Collator(tok, spec.needs, 96)([examples[i] for i in rows])
    spec(model, batch, LossContext()).loss.backward()
    for got, want in zip(stepped, [p.grad for p in model.parameters()]):
        assert torch.equal(got, want)
