"""Encoder-decoder (T0-style) scoring with a tiny T5 built from a config, against a per-option reference."""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from negtune.cli import main as cli_main
from negtune.data.instances import Instance
from negtune.evaluation.prompting import PromptFormat, encode_item
from negtune.evaluation.scoring import predictions, resolve_method, score_instances

WORDS = "the quick brown fox jumps over lazy dog cat red green blue Paris apple 10 twenty".split()


def build_tiny_t5(path: Path) -> Path:
    from tokenizers import processors
    from transformers import T5Config, T5ForConditionalGeneration

    from helpers import build_tiny_tokenizer

    tok = build_tiny_tokenizer()
    eos = tok.convert_tokens_to_ids("</s>")
    tok.backend_tokenizer.post_processor = processors.TemplateProcessing(  # T5: "... </s>", no BOS
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", eos)])
    torch.manual_seed(0)
    config = T5Config(vocab_size=len(tok), d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2,
                      num_heads=4, dropout_rate=0.0, pad_token_id=tok.pad_token_id, eos_token_id=eos,
                      decoder_start_token_id=tok.pad_token_id, tie_word_embeddings=True)
    T5ForConditionalGeneration(config).save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def t5(tmp_path_factory):
    from negtune.models import load_for_eval

    path = build_tiny_t5(tmp_path_factory.mktemp("t5") / "model")
    model, tok = load_for_eval(str(path))
    return path, model, tok


def make_instances(n=9, seed=1):
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        prompt = "Question: " + " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(1, 12))) + " Answer is"
        options = tuple(" " + " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(1, 5))) for _ in range(rnd.choice([2, 4])))
        out.append(Instance("t", str(i), "original", prompt, options, 0, (0,)))
    return out


def reference(model, tok, inst):
    """Per option, nothing shared: the encoder and decoder on (prompt, option) via ``labels``."""
    out = []
    for option in inst.options:
        enc = tok(inst.prompt.rstrip(), return_tensors="pt")
        labels = torch.tensor([tok(option, add_special_tokens=False)["input_ids"]])
        with torch.no_grad():
            logits = model(**enc, labels=labels).logits.double()
        out.append(float(logits.log_softmax(-1).gather(-1, labels[..., None]).double().sum()))
    return out


def test_loader_picks_seq2seq_from_the_config(t5):
    from transformers import T5ForConditionalGeneration

    _, model, tok = t5
    assert isinstance(model, T5ForConditionalGeneration)
    assert resolve_method(model, "auto") == "seq2seq" and resolve_method(model, "plain") == "plain"
    enc = encode_item(tok, make_instances(1)[0], "joint", None, PromptFormat(), seq2seq=True)
    assert enc.pairs[0][0][-1] == tok.eos_token_id  # the encoder input ends with </s>
    assert tok.eos_token_id not in enc.pairs[0][1]  # no EOS scored


def test_matches_per_option_reference(t5):
    _, model, tok = t5
    instances = make_instances()
    for method in ("auto", "plain"):
        for bs in (1, 3, 16):
            got = score_instances(model, tok, instances, batch_size=bs, method=method, progress=False)
            for inst, scores in zip(instances, got):
                for s, ref in zip(scores, reference(model, tok, inst)):
                    assert abs(s.loglik - ref) < 1e-5, (method, bs, s.loglik, ref)


def test_encoder_runs_once_per_item(t5):
    _, model, tok = t5
    instances = make_instances()
    rows = []
    handle = model.get_encoder().register_forward_pre_hook(
        lambda m, args, kwargs: rows.append(kwargs["input_ids"].shape[0]), with_kwargs=True)
    try:
        score_instances(model, tok, instances, batch_size=8, progress=False)
    finally:
        handle.remove()
    assert sum(rows) == len(instances) < sum(len(i.options) for i in instances)


def test_cli_seq2seq_end_to_end(t5, tmp_path, capsys):
    path, model, tok = t5
    csv = tmp_path / "toy_q_3.csv"
    neg = tmp_path / "toy_q_negation_3.csv"
    head = "sample_id,prompt,classes,answer_index\n"
    rows = [("0", "Question: what is apple? Answer is"), ("1", "Question: what is red? Answer is"),
            ("2", "Question: what is Paris? Answer is")]
    csv.write_text(head + "".join(f'{i},"{p}","[\' apple\', \' red\', \' Paris\']",{i}\n' for i, p in rows))
    neg.write_text(head + "".join(f'{i},"Not: {p}","[\' apple\', \' red\', \' Paris\']","{(int(i) + 1) % 3}"\n'
                                  for i, p in rows))
    out = tmp_path / "r.json"
    assert cli_main(["eval", "--model", str(path), "--csv", str(csv), "--csv", str(neg), "--quiet",
                     "--out", str(out), "--scores", str(tmp_path / "s.jsonl")]) == 0
    res = json.loads(out.read_text())
    assert res["scoring"]["architecture"] == "seq2seq" and res["scoring"]["method"] == "seq2seq"
    assert res["model_type"] == "t5" and res["n_params"] == sum(p.numel() for p in model.parameters())
    lines = [json.loads(x) for x in (tmp_path / "s.jsonl").read_text().splitlines()]
    inst = Instance("toy_q", "0", "original", rows[0][1], (" apple", " red", " Paris"), 0, (0,))
    ref = reference(model, tok, inst)
    assert max(abs(r["loglik"] - x) for r, x in zip(lines[:3], ref)) < 1e-5
    scored = score_instances(model, tok, [inst], progress=False)
    assert predictions(scored)[0] == max(range(3), key=lambda j: ref[j])
    capsys.readouterr()
    assert cli_main(["eval", "--model", str(path), "--csv", str(csv), "--method", "kv"]) == 2
    assert "not for encoder-decoder models" in capsys.readouterr().err
