"""Shared fixtures: a tiny OPT model with an OPT-like tokenizer, built offline.

Why built here: nothing can be downloaded at test time. The tokenizer is a byte-level BPE
trained in-process on a fixed corpus (deterministic), post-processed like OPT's (``</s>``
as BOS), so the tokenization conventions under test are the real ones.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
PAPER_EVAL_CANDIDATES = [REPO.parent / "shared" / "paper_eval", Path("/work/shared/paper_eval")]

_CORPUS = [
    "Generate the correct answer to the following question. Question: What is the capital of France? Answer is Paris",
    "Generate the incorrect answer to the following question. Question: Which is a fruit? Answer is apple",
    "Complete the sentence with the appropriate ending. The man turned on the faucet.  so... Water flowed.",
    "The goal is to predict a correct English answer string for an input English question.\nQuestion: who\nAnswer:",
    "the quick brown fox jumps over the lazy dog . a b c d e f g h i j k l m n o p q r s t u v w x y z",
    "0 1 2 3 4 5 6 7 8 9 10 twenty hundred red green blue yellow black white cat dog cats dogs",
]


def build_tiny_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<pad>", "<unk>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    bos = tok.token_to_id("</s>")
    tok.post_processor = processors.TemplateProcessing(
        single="</s> $A", pair="</s> $A $B", special_tokens=[("</s>", bos)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="</s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
    )


def build_tiny_opt(path: Path, seed: int = 0, hidden: int = 32, layers: int = 2) -> Path:
    import torch
    from transformers import OPTConfig, OPTForCausalLM

    tokenizer = build_tiny_tokenizer()
    torch.manual_seed(seed)
    config = OPTConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        ffn_dim=hidden * 2,
        max_position_embeddings=512,
        word_embed_proj_dim=hidden,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        dropout=0.0,
        attention_dropout=0.0,
    )
    model = OPTForCausalLM(config)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_opt_dir(tmp_path_factory) -> Path:
    """A saved tiny OPT (random weights) + tokenizer directory, shared by the session."""
    return build_tiny_opt(tmp_path_factory.mktemp("tiny-opt") / "model")


@pytest.fixture(scope="session")
def tiny_tokenizer():
    return build_tiny_tokenizer()


@pytest.fixture(scope="session")
def paper_eval_dir() -> Path:
    for cand in PAPER_EVAL_CANDIDATES:
        if cand.is_dir():
            return cand
    pytest.skip("the paper's evaluation CSVs (../shared/paper_eval) are not available")
