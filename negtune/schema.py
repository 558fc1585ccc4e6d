"""Validation of plain data against type hints: the rules recipes and loss arguments share.

Why a module of its own: the recipe schema (``negtune.config``) and the loss registry
(``negtune.losses.registry``) both turn user-written YAML values into typed Python values, and a
mistake must read the same wherever it is made: one line naming the file and the key path,
``recipes/x.yaml: train.lr: must be > 0, got -1``. Both call the functions here; neither
imports the other's private helpers.

* ``convert(value, type, where, src)`` checks a value against a type hint (``int``, ``float``,
  ``str``, ``bool``, ``Literal``, ``Optional``/``Union``, ``list[...]``, ``dict[str, ...]``,
  dataclasses) and returns the converted value. Numbers must be finite (``.inf``/``.nan``
  would pass every range check).
* ``check_range(value, meta, where, src)`` applies ``gt``/``ge``/``lt``/``le`` bounds.
* ``build_dataclass(cls, raw, where, src)`` builds a dataclass from a mapping: unknown keys,
  missing required keys, wrong types and out-of-range values are each one ``UserError``.
  Field bounds live in ``field(metadata=meta(gt=0))``.

Standard library only, so validating a recipe stays instant.
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, Literal, Union

from negtune.errors import UserError


def meta(**kwargs: Any) -> dict[str, Any]:
    """Field metadata for ``build_dataclass``: bounds (``gt``, ``ge``, ``lt``, ``le``), ``required``,
    ``internal`` (not a user key)."""
    return kwargs


def type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if tp is type(None):
        return "null"
    if origin in (Union, types.UnionType):
        return " or ".join(type_name(a) for a in typing.get_args(tp))
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin is list:
        return f"a list (items: {type_name(typing.get_args(tp)[0])})"
    if origin is dict:
        return "a mapping"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def convert(value: Any, tp: Any, where: str, src: str) -> Any:
    """Check ``value`` against type ``tp``; return the converted value or raise UserError."""
    origin = typing.get_origin(tp)
    bad = UserError(f"{src}: {where}: expected {type_name(tp)}, got {value!r}")
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise bad
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return convert(value, arg, where, src)
            except UserError as err:
                errors.append(err)
        if len(errors) == 1:
            raise errors[0]
        raise bad
    if origin is Literal:
        if value in typing.get_args(tp):
            return value
        raise bad
    if origin is list:
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise bad
        (item_tp,) = typing.get_args(tp)
        return [convert(v, item_tp, f"{where}[{i}]", src) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise bad
        _key_tp, val_tp = typing.get_args(tp)
        return {str(k): convert(v, val_tp, f"{where}.{k}", src) for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return build_dataclass(tp, value, where, src)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise bad
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise bad
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise bad
        try:  # PyYAML reads "1e-3" (no dot) as a string
            number = float(value)
        except ValueError:
            raise bad from None
        if not math.isfinite(number):  # .inf / .nan pass every range check, and poison training
            raise UserError(f"{src}: {where}: must be a finite number, got {value!r}")
        return number
    if tp is str:
        if isinstance(value, str):
            return value
        raise bad
    raise bad


def check_range(value: Any, bounds: dict[str, Any], where: str, src: str) -> None:
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    for key, op, text in (
        ("gt", lambda a, b: a > b, ">"),
        ("ge", lambda a, b: a >= b, ">="),
        ("lt", lambda a, b: a < b, "<"),
        ("le", lambda a, b: a <= b, "<="),
    ):
        if key in bounds and not op(value, bounds[key]):
            raise UserError(f"{src}: {where}: must be {text} {bounds[key]}, got {value!r}")


def build_dataclass(cls: type, raw: Any, where: str, src: str) -> Any:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise UserError(f"{src}: {where or 'top level'}: expected a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    for key in raw:
        if key not in fields:
            path = f"{where}.{key}" if where else str(key)
            known = ", ".join(sorted(fields))
            raise UserError(f"{src}: {path}: unknown key (known: {known})")
    kwargs = {}
    for name, f in fields.items():
        if name not in raw:
            if f.metadata.get("required"):
                path = f"{where}.{name}" if where else name
                raise UserError(f"{src}: {path}: required key is missing")
            continue
        path = f"{where}.{name}" if where else name
        value = convert(raw[name], hints[name], path, src)
        check_range(value, dict(f.metadata), path, src)
        kwargs[name] = value
    return cls(**kwargs)
