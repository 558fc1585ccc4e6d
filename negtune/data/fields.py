"""Reading one field of a source row: the checks every task parser shares.

Why here: a bad row must be reported as ``file: row N: field 'label': ...`` whatever the task,
and rows arrive from JSON lines, CSV/TSV cells (nested values as JSON text), parquet (numpy
arrays) or the hub. These helpers normalise those shapes and raise one ``UserError`` naming
the row and field; the task parsers in ``negtune.data.tasks`` only say which field means what.

Option formatting follows the paper's released files: every option is ``" " + text`` with the
first character upper-cased (HellaSwag endings, LAMBADA words and NQ answers are lower-case in
their sources; the paper's options never are).
"""
from __future__ import annotations

import ast
import json
from typing import Any, Optional

from negtune.errors import UserError


def cap_first(text: str) -> str:
    """Upper-case the first character only (``str.capitalize`` would lower the rest)."""
    return text[:1].upper() + text[1:]


def fmt_option(text: str) -> str:
    """An option as the paper writes it: leading space, first character upper-cased."""
    return " " + cap_first(text.strip())


def get_field(row: dict[str, Any], key: str, where: str) -> Any:
    if key not in row or row[key] is None:
        raise UserError(f"{where}: missing field {key!r}")
    return row[key]


def text(row: dict[str, Any], key: str, where: str, allow_empty: bool = False) -> str:
    value = get_field(row, key, where)
    if not isinstance(value, str):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        else:
            raise UserError(f"{where}: field {key!r}: expected text, got {type(value).__name__}")
    value = value.strip()
    if not value and not allow_empty:
        raise UserError(f"{where}: field {key!r}: empty")
    return value


def structured(value: Any, key: str, where: str) -> Any:
    """Nested fields arrive as JSON/Python literals when the source file is CSV/TSV."""
    if isinstance(value, str):
        stripped = value.strip()
        for loader in (json.loads, ast.literal_eval):
            try:
                return loader(stripped)
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                continue
        raise UserError(f"{where}: field {key!r}: cannot parse {stripped[:40]!r} as a list or mapping")
    return value


def text_list(row: dict[str, Any], key: str, where: str, sub: Optional[str] = None) -> list[str]:
    value = structured(get_field(row, key, where), key, where)
    name = key
    if sub is not None:
        if not isinstance(value, dict) or sub not in value:
            raise UserError(f"{where}: field {key!r}: expected a mapping with {sub!r}")
        value, name = value[sub], f"{key}.{sub}"
    if hasattr(value, "tolist"):  # numpy arrays from parquet
        value = value.tolist()
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise UserError(f"{where}: field {name!r}: expected a list of strings")
    out = [v.strip() for v in value]
    if not out or not all(out):
        raise UserError(f"{where}: field {name!r}: empty list or empty entry")
    return out


class TextRow(dict):
    """A row whose cells are text whatever the schema says (CSV/TSV files): a label "1" there
    is the integer 1, while in a typed source (JSON, parquet, the hub) it is a schema error."""


def label(row: dict[str, Any], key: str, where: str, n: int, base: int = 0, text_in_schema: bool = False) -> int:
    """A label in ``base .. base+n-1``; returns the 0-based index.

    The schema's type is enforced: an integer label (``text_in_schema`` False) must be an
    integer in typed sources ("1" and 1.5 are refused, so a mis-written file is not silently
    read as another answer); HellaSwag's labels are strings in its schema ("0".."3").
    """
    value = get_field(row, key, where)
    text_ok = text_in_schema or isinstance(row, TextRow)
    expected = "a string label" if text_in_schema else "an integer label"
    if isinstance(value, bool) or (isinstance(value, str) and not text_ok) \
            or (isinstance(value, float) and not value.is_integer()) \
            or (not isinstance(value, (str, int, float))):
        raise UserError(f"{where}: field {key!r}: expected {expected}, got {value!r}")
    try:
        parsed = int(value.strip()) if isinstance(value, str) else int(value)
    except ValueError:
        raise UserError(f"{where}: field {key!r}: label {value!r} is not an integer") from None
    if not base <= parsed < base + n:
        raise UserError(f"{where}: field {key!r}: label {parsed} out of range ({base}-{base + n - 1})")
    return parsed - base


def row_id(row: dict[str, Any], key: Optional[str], index: int) -> str:
    """The source's id field when it has one (or a local file adds one), else the row index."""
    for k in ([key] if key else []) + ["id"]:
        if k in row and row[k] is not None and str(row[k]).strip() != "":
            return str(row[k]).strip()
    return str(index)
