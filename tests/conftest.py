"""Shared fixtures: a tiny OPT model with an OPT-like tokenizer, built offline.

Why built here: nothing can be downloaded at test time. The builders live in
``tests/helpers.py`` (importable as ``helpers`` from any test); the fixtures below share one
model per session.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from helpers import build_tiny_opt, build_tiny_tokenizer, find_paper_eval  # noqa: E402


@pytest.fixture(scope="session")
def tiny_opt_dir(tmp_path_factory) -> Path:
    """A saved tiny OPT (random weights) + tokenizer directory, shared by the session."""
    return build_tiny_opt(tmp_path_factory.mktemp("tiny-opt") / "model")


@pytest.fixture(scope="session")
def tiny_tokenizer():
    return build_tiny_tokenizer()


@pytest.fixture(scope="session")
def paper_eval_dir() -> Path:
    found = find_paper_eval()
    if found is None:
        pytest.skip("the paper's evaluation CSVs (../shared/paper_eval) are not available")
    return found
