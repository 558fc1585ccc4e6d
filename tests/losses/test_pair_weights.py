"""Paired losses count each original partner once per item, also under ``negated_target: all_wrong``.

Under ``all_wrong`` a 4-option item yields three negated rows that share one original
partner. ``mixed`` must then equal ``ce`` on the union of both variants (each instance
once), and ``kl_anchor``'s KL must be the mean over the original instances' answer
positions, each instance once; before partner weights the partner counted three times.
"""
from pathlib import Path

import pytest
import torch

from negtune.config import DataConfig
from negtune.data.build import build_dataset
from negtune.data.collate import Collator, TrainExamples
from negtune.losses import LossContext, resolve_loss
from negtune.losses.kl_anchor import kl_terms

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "data" / "samples"


def arc_instances(negated_target: str):
    """ARC-Easy (4 options: 3 negated rows per item under all_wrong) and COPA (2 options: 1 row)."""
    cfg = DataConfig(tasks=["arc_easy", "copa"], variants=["original", "negated"], pairs=True, max_instances=None,
                     negated_target=negated_target, files={"arc_easy": str(SAMPLES / "arc_easy" / "train.jsonl"),
                                                           "copa": str(SAMPLES / "copa" / "train.jsonl")})
    return build_dataset(cfg, seed=5).instances


def one_batch(instances, needs, tokenizer):
    rows = TrainExamples(instances, needs, tokenizer, max_length=96)
    return rows, Collator(tokenizer, needs, 96)([rows[i] for i in range(len(rows))])


@pytest.fixture(scope="module")
def model_and_tokenizer(tiny_opt_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(tiny_opt_dir), AutoTokenizer.from_pretrained(tiny_opt_dir)


def test_partner_weights_add_up_to_one_per_item(tiny_tokenizer):
    instances = arc_instances("all_wrong")
    rows, batch = one_batch(instances, ("paired",), tiny_tokenizer)
    per_item: dict = {}
    for row in rows.rows:
        per_item.setdefault(row["pair"].pair_key, []).append(row["pair_weight"])
    assert sorted({len(w) for w in per_item.values()}) == [1, 3]  # COPA: one negated row; ARC: three
    assert all(abs(sum(w) - 1) < 1e-12 and len(set(w)) == 1 for w in per_item.values())
    assert batch["pair_weight"].tolist() == pytest.approx([r["pair_weight"] for r in rows.rows])
    seeded, _ = one_batch(arc_instances("seeded"), ("paired",), tiny_tokenizer)
    assert {r["pair_weight"] for r in seeded.rows} == {1.0}


@pytest.mark.parametrize("negated_target", ["seeded", "all_wrong"])
def test_mixed_equals_ce_on_the_union(negated_target, model_and_tokenizer):
    model, tok = model_and_tokenizer
    instances = arc_instances(negated_target)
    assert {i.variant for i in instances} == {"original", "negated"}
    _, paired = one_batch(instances, ("paired",), tok)
    _, union = one_batch(instances, (), tok)  # every instance once, both variants
    ctx = LossContext()
    mixed = resolve_loss({"name": "mixed"})(model, paired, ctx)
    ce = resolve_loss({"name": "ce"})(model, union, ctx)
    assert mixed.loss.item() == pytest.approx(ce.loss.item(), rel=1e-6)
    assert float(mixed.terms["ce"].count) == pytest.approx(float(union["n_target_tokens"]))
    grads = []
    for out in (mixed, ce):
        model.zero_grad()
        out.loss.backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    assert (grads[0] - grads[1]).abs().max().item() <= 1e-5 * grads[1].abs().max().item()


def test_kl_anchor_counts_each_original_once(model_and_tokenizer, tmp_path):
    from transformers import AutoModelForCausalLM

    from helpers import build_tiny_opt

    model, tok = model_and_tokenizer
    base = AutoModelForCausalLM.from_pretrained(build_tiny_opt(tmp_path / "base", seed=1)).eval()

    def reference(ids, mask):
        with torch.no_grad():
            return base(input_ids=ids, attention_mask=mask).logits

    instances = arc_instances("all_wrong")
    _, paired = one_batch(instances, ("paired",), tok)
    _, originals = one_batch([i for i in instances if i.variant == "original"], (), tok)
    with torch.no_grad():
        out = resolve_loss({"name": "kl_anchor", "beta": 1000.0})(model, paired, LossContext(reference_logits=reference))
        ce = resolve_loss({"name": "ce"})(model, paired, LossContext())
        ids, mask = originals["input_ids"], originals["attention_mask"]
        s, n = kl_terms(model(input_ids=ids, attention_mask=mask).logits.float(), reference(ids, mask),
                        originals["labels"])
    kl = (s / n).item()
    assert kl > 0.01
    # loss = ce + 1000 kl (a large beta keeps float32 cancellation small); counting ARC's
    # partners three times against COPA's once moved the KL by 3e-4 relative
    assert (out.loss.item() - ce.loss.item()) / 1000 == pytest.approx(kl, rel=1e-5)
    assert float(out.terms["kl"].count) == pytest.approx(float(n))
