"""Reading one JSON value of a results file, with the key path in every complaint.

Why separate: every part of the results file (``negtune.results``) checks its values the same
way, and a malformed file must fail with one message naming the key (``tasks.copa.original.acc:
expected a number``), not a ``KeyError`` deep in a report. Each reader returns the value typed
or raises ``Malformed``; ``Results.from_json`` turns that into one ``UserError`` naming the file.
"""
from __future__ import annotations

from typing import Any, Optional


class Malformed(Exception):
    """A malformed value at a key path (turned into one UserError naming the file)."""


def number(value: Any, where: str, optional: bool = True) -> Optional[float]:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Malformed(f"{where}: expected a number, got {value!r}")
    return float(value)


def integer(value: Any, where: str, optional: bool = True) -> Optional[int]:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise Malformed(f"{where}: expected an integer, got {value!r}")
    return value


def text(value: Any, where: str) -> Optional[str]:
    if value is None:
        return None
    if not isinstance(value, str):
        raise Malformed(f"{where}: expected a string, got {value!r}")
    return value


def mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Malformed(f"{where}: expected a mapping, got {type(value).__name__}")
    return value


Bounds = tuple[float, float]  # a 95% confidence interval (low, high)


def bounds(value: Any, where: str) -> Optional[Bounds]:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != 2:
        raise Malformed(f"{where}: expected an interval [low, high], got {value!r}")
    low, high = (number(v, where, optional=False) for v in value)
    return (low, high)


def bounds_map(value: Any, where: str) -> dict[str, Bounds]:
    d = mapping(value or {}, where)
    return {str(k): b for k, v in d.items() if (b := bounds(v, f"{where}.{k}")) is not None}


def column(d: dict[str, Any], key: str, kind: type, where: str) -> list[Any]:
    values = d.get(key)
    if not isinstance(values, list) or not all(isinstance(v, kind) and not isinstance(v, bool) for v in values):
        raise Malformed(f"{where}.{key}: expected a list of {kind.__name__}")
    return values
