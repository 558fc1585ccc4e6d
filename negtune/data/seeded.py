"""The one source of randomness in data building: a hash of named parts.

Why not ``random.seed(seed)``: a choice must not depend on an item's position in the file,
on the cap, or on which other tasks are built, or raising the cap would reshuffle everything
and two machines could disagree. Every random choice is a pure function of
``(seed, task, purpose, item id)`` through sha256, so the same recipe and seed give
byte-identical files.
"""
from __future__ import annotations

import hashlib
from typing import Any


def seeded_int(*parts: Any) -> int:
    """A 64-bit integer that depends only on ``parts`` (stable across runs and machines)."""
    text = "\x1f".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")
