"""Scorer exactness: KV-cache reuse == plain forward, batch-size invariance, architectures, LoRA."""
from __future__ import annotations

import random

import pytest
import torch

from negtune.data.instances import Instance
from helpers import metrics_json
from negtune.evaluation.scoring import OptionScore, predictions, score_instances
from negtune.tokenization import encode_pair

WORDS = "the quick brown fox jumps over lazy dog cat red green blue Paris apple 10 twenty".split()


def make_instances(n=11, seed=0):
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        prompt = "Question: " + " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(1, 14))) + " Answer is"
        k = rnd.choice([2, 4])
        options = tuple(" " + " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(1, 6))) for _ in range(k))
        out.append(Instance("t", str(i), "original", prompt, options, 0, (0,)))
    return out


def direct(model, tokenizer, inst, mode="joint"):
    """The reference: plain forward of prompt+option, log_softmax, gather."""
    out = []
    for option in inst.options:
        p, o = encode_pair(tokenizer, inst.prompt, option, mode)
        ids = torch.tensor([p + o])
        with torch.no_grad():
            logp = model(input_ids=ids).logits.float().log_softmax(-1)
        tok = logp[0, len(p) - 1: -1].gather(-1, ids[0, len(p):, None]).squeeze(-1)
        out.append((float(tok.sum()), len(o)))
    return out


def max_diff(a, b):
    return max(abs(x.loglik - y.loglik) for ra, rb in zip(a, b) for x, y in zip(ra, rb))


@pytest.fixture(scope="module")
def opt(tiny_opt_dir):
    from negtune.models import load_for_eval

    return load_for_eval(str(tiny_opt_dir))


@pytest.fixture(scope="module")
def instances():
    return make_instances()


@pytest.mark.parametrize("mode", ["joint", "separate"])
def test_matches_direct_computation(opt, instances, mode):
    model, tok = opt
    got = score_instances(model, tok, instances, batch_size=4, tokenization=mode, progress=False)
    for inst, scores in zip(instances, got):
        for s, (ll, n) in zip(scores, direct(model, tok, inst, mode)):
            assert s.n_tokens == n
            assert abs(s.loglik - ll) < 1e-4


def test_batch_size_invariance(opt, instances):
    model, tok = opt
    runs = {bs: score_instances(model, tok, instances, batch_size=bs, progress=False) for bs in (1, 3, 8)}
    assert predictions(runs[1]) == predictions(runs[3]) == predictions(runs[8])
    assert max_diff(runs[1], runs[3]) < 1e-4 and max_diff(runs[1], runs[8]) < 1e-4
    for method in ("batched", "plain"):
        assert max_diff(runs[3], score_instances(model, tok, instances, 3, method=method, progress=False)) < 1e-4


def test_results_in_input_order(opt, instances):
    model, tok = opt
    fwd = score_instances(model, tok, instances, batch_size=5, progress=False)
    rev = score_instances(model, tok, instances[::-1], batch_size=5, progress=False)
    assert max_diff(fwd, rev[::-1]) < 1e-4


def test_left_truncation_is_consistent(opt, instances):
    model, tok = opt
    short = score_instances(model, tok, instances, 4, max_length=20, progress=False)
    plain = score_instances(model, tok, instances, 1, method="plain", max_length=20, progress=False)
    assert max_diff(short, plain) < 1e-4


def _tiny(arch, vocab, pad):
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(1)
    if arch == "gpt2":
        return GPT2LMHeadModel(GPT2Config(vocab_size=vocab, n_embd=32, n_layer=2, n_head=4, n_positions=256,
                                          bos_token_id=2, eos_token_id=2, pad_token_id=pad))
    return LlamaForCausalLM(LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                                        bos_token_id=2, eos_token_id=2, pad_token_id=pad))


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_other_architectures_and_unmerged_lora(tiny_tokenizer, instances, arch):
    from peft import LoraConfig, get_peft_model

    tok = tiny_tokenizer
    model = _tiny(arch, len(tok), tok.pad_token_id).eval()
    ref = [direct(model, tok, i) for i in instances]
    got = score_instances(model, tok, instances, batch_size=3, progress=False)
    assert max(abs(s.loglik - r[0]) for g, rr in zip(got, ref) for s, r in zip(g, rr)) < 1e-4
    targets = ["c_attn"] if arch == "gpt2" else ["q_proj", "v_proj"]
    peft_model = get_peft_model(model, LoraConfig(r=4, target_modules=targets, init_lora_weights=False)).eval()
    kv = score_instances(peft_model, tok, instances, batch_size=3, progress=False)
    plain = score_instances(peft_model, tok, instances, batch_size=1, method="plain", progress=False)
    assert max_diff(kv, plain) < 1e-4
    assert max_diff(kv, got) > 1e-3  # the adapter is really applied


def test_lora_on_opt_and_half_precision(tiny_opt_dir, instances):
    from peft import LoraConfig, get_peft_model

    from negtune.models import load_causal_lm, load_tokenizer

    tok = load_tokenizer(str(tiny_opt_dir))
    model = load_causal_lm(str(tiny_opt_dir))
    pm = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)).eval()
    assert max_diff(score_instances(pm, tok, instances, 8, progress=False),
                    score_instances(pm, tok, instances, 1, method="plain", progress=False)) < 1e-4
    bf = load_causal_lm(str(tiny_opt_dir), dtype="bfloat16").eval()
    got = score_instances(bf, tok, instances, 8, progress=False)
    assert all(torch.isfinite(torch.tensor(s.loglik)) for row in got for s in row)
    assert max_diff(got, score_instances(bf, tok, instances, 1, method="plain", progress=False)) < 0.5


def test_multi_answer_accuracy():
    # negated 4-option item: 3 correct answers; picking any of them counts
    insts = [Instance("arc", "1", "negated", "q", (" a", " b", " c", " d"), 0, (0, 1, 3)),
             Instance("arc", "2", "negated", "q", (" a", " b", " c", " d"), 0, (0, 1, 3))]
    s = lambda *v: [OptionScore(x, 1) for x in v]  # noqa: E731
    res = metrics_json(insts, [s(-5, -1, -3, -4), s(-5, -4, -1, -3)])
    assert res["tasks"]["arc"]["negated"]["acc"] == 0.5
