import pytest
import torch

from negtune.data.collate import IGNORE_INDEX, Collator, TrainExamples
from negtune.data.instances import Instance
from negtune.errors import UserError
from negtune.tokenization import encode_pair
from helpers import toy_instances


def test_rows_labels_and_padding(tiny_tokenizer):
    insts = toy_instances()
    ds = TrainExamples(insts, (), tiny_tokenizer, max_length=64)
    assert len(ds) == len(insts)
    batch = Collator(tiny_tokenizer, (), 64)([ds[i] for i in range(len(ds))])
    pad = tiny_tokenizer.pad_token_id
    for r, inst in enumerate(insts):
        p, o = encode_pair(tiny_tokenizer, inst.prompt, inst.options[inst.target])
        n = len(p) + len(o)
        assert ds.lengths[r] == n
        assert batch["input_ids"][r, :n].tolist() == p + o
        assert (batch["input_ids"][r, n:] == pad).all()
        assert batch["attention_mask"][r].tolist() == [1] * n + [0] * (batch["input_ids"].shape[1] - n)
        assert batch["labels"][r, len(p):n].tolist() == o
        assert (batch["labels"][r, :len(p)] == IGNORE_INDEX).all()
        assert (batch["labels"][r, n:] == IGNORE_INDEX).all()
    assert int(batch["n_target_tokens"]) == int((batch["labels"] != IGNORE_INDEX).sum())


def test_lazy_tokenization_matches_eager(tiny_tokenizer):
    insts = toy_instances()
    needs = ("paired", "all_options")
    eager = TrainExamples(insts, needs, tiny_tokenizer, max_length=20)
    lazy = TrainExamples(insts, needs)
    col = Collator(tiny_tokenizer, needs, 20)
    a = col([eager[i] for i in range(len(eager))])
    b = col([lazy[i] for i in range(len(lazy))])
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert a["input_ids"].shape[1] <= 20  # truncated from the left, answers intact
    assert (a["input_ids"][:, 0] == tiny_tokenizer.bos_token_id).all()


def test_paired_rows_and_options(tiny_tokenizer):
    insts = toy_instances()
    ds = TrainExamples(insts, ("paired", "all_options"), tiny_tokenizer, max_length=64)
    assert [r["instance"].variant for r in ds.rows] == ["negated", "negated"]
    assert [r["pair"].variant for r in ds.rows] == ["original", "original"]
    assert [r["pair"].pair_key for r in ds.rows] == [r["instance"].pair_key for r in ds.rows]
    batch = Collator(tiny_tokenizer, ("paired", "all_options"), 64)([ds[0], ds[1]])
    p, o = encode_pair(tiny_tokenizer, insts[0].prompt, insts[0].options[0])
    assert batch["pair_input_ids"][0, : len(p) + len(o)].tolist() == p + o
    assert batch["opt_row"].tolist() == [0, 0, 1, 1, 1, 1]
    assert batch["opt_index"].tolist() == [0, 1, 0, 1, 2, 3]
    assert batch["opt_is_target"].tolist() == [False, True, False, True, False, False]
    assert batch["opt_is_gold"].tolist() == [False, True, False, True, True, True]
    # the target option's sequence is the row's own sequence
    t = batch["opt_is_target"].nonzero().flatten()
    for r, k in enumerate(t.tolist()):
        n = int(batch["attention_mask"][r].sum())
        assert batch["opt_input_ids"][k, :n].tolist() == batch["input_ids"][r, :n].tolist()


def test_paired_without_partner_names_the_row(tiny_tokenizer):
    insts = [i for i in toy_instances() if not (i.source_id == "q2" and i.variant == "original")]
    with pytest.raises(UserError, match=r"row 2 \(demo/q2/negated/1\).*data.pairs: true"):
        TrainExamples(insts, ("paired",), tiny_tokenizer)
    with pytest.raises(UserError, match="no negated instance"):
        TrainExamples([i for i in insts if i.variant == "original"], ("paired",))


def test_bad_target_is_user_error():
    bad = Instance("demo", "x", "negated", "Q", (" a", " b"), 5, (0,))
    with pytest.raises(UserError, match="row 0"):
        TrainExamples([bad], ())


def test_paired_shares_partner_and_skips_other_variants(tiny_tokenizer, caplog):
    import logging

    insts = toy_instances()
    q2_orig, q2_neg = insts[2], insts[3]
    extra_neg = Instance("demo", "q2", "negated", q2_neg.prompt, q2_neg.options, 2, q2_neg.gold)  # all_wrong style
    free = Instance("demo", "q2", "instruction_free", "Q: capital of France?", q2_neg.options, 0, (0,))
    with caplog.at_level(logging.INFO, logger="negtune.data.collate"):
        ds = TrainExamples(insts + [extra_neg, free], ("paired",), tiny_tokenizer)
    assert [r["instance"].uid for r in ds.rows] == ["demo/q1/negated/1", "demo/q2/negated/1", "demo/q2/negated/2"]
    assert ds.rows[1]["pair"] is q2_orig and ds.rows[2]["pair"] is q2_orig
    assert "1 instruction_free instances not used" in caplog.text
    col = Collator(tiny_tokenizer, ("paired",), None)
    a, b = col(ds.rows), col(list(ds.rows))
    assert all(torch.equal(a[k], b[k]) for k in a)  # deterministic
    assert torch.equal(a["pair_input_ids"][1], a["pair_input_ids"][2])
