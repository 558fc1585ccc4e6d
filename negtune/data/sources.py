"""Reading source rows: local files in a source's own schema, or the Hugging Face hub.

Why local files first: every test, the demo and any air-gapped cluster run from local files
(``data.files`` in a recipe); the hub is one code path used when a task has no files. Local
formats are chosen by extension: ``.jsonl`` (one JSON object per line), ``.json`` (a list of
objects, or JSON lines), ``.csv``, ``.tsv``, ``.parquet``. Rows keep their source field names
(``goal``/``sol1``/``sol2``/``label`` for PIQA, ...); nested fields in CSV/TSV cells are JSON.

Every row carries ``where`` ("path: row N", N counting data rows from 1; for JSON lines the
line number) so that a bad row is reported by file and row. A fingerprint describes what was
read (sha256 of each local file, or hub id + config + revision + split + dataset fingerprint)
and goes into the manifest.
"""
from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional

from negtune.data.fields import TextRow
from negtune.errors import UserError
from negtune.hub import hub_offline

LOCAL_EXTENSIONS = (".jsonl", ".json", ".csv", ".tsv", ".parquet")


@dataclass
class SourceRows:
    rows: list[tuple[str, dict[str, Any]]]  # (where, row)
    fingerprint: dict[str, Any] = field(default_factory=dict)


def _as_list(files: Any) -> list[str]:
    if isinstance(files, (str, os.PathLike)):
        return [str(files)]
    return [str(f) for f in files]


def _read_jsonl(path: Path, text: str) -> Iterable[tuple[str, dict[str, Any]]]:
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise UserError(f"{path}: row {lineno}: invalid JSON ({err.msg})") from None
        if not isinstance(row, dict):
            raise UserError(f"{path}: row {lineno}: expected a JSON object")
        yield f"{path}: row {lineno}", row


def _read_json(path: Path, text: str) -> Iterable[tuple[str, dict[str, Any]]]:
    stripped = text.lstrip()
    if not stripped.startswith("["):
        yield from _read_jsonl(path, text)
        return
    try:
        rows = json.loads(text)
    except json.JSONDecodeError as err:
        raise UserError(f"{path}: line {err.lineno}: invalid JSON ({err.msg})") from None
    for i, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            raise UserError(f"{path}: row {i}: expected a JSON object")
        yield f"{path}: row {i}", row


def _read_delimited(path: Path, text: str, delimiter: str, required: Iterable[str]):
    reader = csv.DictReader(text.splitlines(keepends=True), delimiter=delimiter)
    header = reader.fieldnames or []
    missing = [f for f in required if f not in header]
    if header and missing:
        raise UserError(f"{path}: missing column {missing[0]!r} (header: {', '.join(header)})")
    try:
        for i, row in enumerate(reader, start=1):
            if None in row:  # more cells than header columns
                raise UserError(f"{path}: row {i}: more cells than columns")
            if any(v is None for v in row.values()):
                absent = [k for k, v in row.items() if v is None]
                raise UserError(f"{path}: row {i}: missing field {absent[0]!r}")
            yield f"{path}: row {i}", TextRow(row)
    except csv.Error as err:
        raise UserError(f"{path}: row {reader.line_num}: malformed CSV ({err})") from None


def _read_parquet(path: Path) -> Iterable[tuple[str, dict[str, Any]]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - pyarrow comes with datasets
        raise UserError(f"{path}: reading parquet needs pyarrow (pip install pyarrow)") from None
    try:
        table = pq.read_table(path)
    except Exception as err:  # noqa: BLE001 - any reader failure is a bad file
        raise UserError(f"{path}: not a readable parquet file ({type(err).__name__})") from None
    for i, row in enumerate(table.to_pylist(), start=1):
        yield f"{path}: row {i}", row


def read_local(files: Any, required: Iterable[str] = (), key: str = "data.files") -> SourceRows:
    """Read every row of ``files`` (one path or a list), in order."""
    paths = _as_list(files)
    if not paths:
        raise UserError(f"{key}: empty list of files")
    rows: list[tuple[str, dict[str, Any]]] = []
    described = []
    for name in paths:
        path = Path(name)
        if not path.is_file():
            raise UserError(f"{path}: file not found (from {key})")
        ext = path.suffix.lower()
        if ext not in LOCAL_EXTENSIONS:
            raise UserError(f"{path}: unsupported file type {ext or '(none)'} (use {', '.join(LOCAL_EXTENSIONS)})")
        data = path.read_bytes()  # read once: parsed below and hashed for the manifest
        if ext == ".parquet":
            file_rows = list(_read_parquet(path))
        else:
            try:
                # as read_text would: universal newlines
                text = data.decode("utf-8-sig").replace("\r\n", "\n").replace("\r", "\n")
            except UnicodeDecodeError:
                raise UserError(f"{path}: not UTF-8 text") from None
            if ext == ".jsonl":
                file_rows = list(_read_jsonl(path, text))
            elif ext == ".json":
                file_rows = list(_read_json(path, text))
            else:
                file_rows = list(_read_delimited(path, text, "\t" if ext == ".tsv" else ",", required))
        if not file_rows:
            raise UserError(f"{path}: no rows (empty split)")
        rows.extend(file_rows)
        described.append({"path": str(name), "sha256": hashlib.sha256(data).hexdigest(), "rows": len(file_rows)})
    return SourceRows(rows=rows, fingerprint={"kind": "local", "files": described})


@contextlib.contextmanager
def _quiet_hub_logs():
    """Hide the hub client's per-retry warnings: the failure is reported once, as one line."""
    loggers = [logging.getLogger(n) for n in ("huggingface_hub", "datasets")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(max(lg.getEffectiveLevel(), logging.ERROR))
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def load_hub(
    path: str,
    name: Optional[str],
    split: str,
    revision: Optional[str] = None,
    cache_dir: Optional[str] = None,
    label: str = "",
) -> SourceRows:
    """``datasets.load_dataset(path, name, split=..., revision=..., cache_dir=...)`` as rows.

    Any failure (no network, offline mode without a cached copy, unknown split) becomes one
    UserError line that says how to point the task at local files instead.
    """
    desc = path + (f" [{name}]" if name else "") + f" split {split!r}" + (f" @ {revision}" if revision else "")
    hint = f"set data.files.{label} to local files" if label else "use local files"
    try:
        import datasets
    except ImportError:  # pragma: no cover - datasets is a dependency
        raise UserError(f"{desc}: the 'datasets' package is not installed; {hint}") from None
    try:
        with _quiet_hub_logs():
            ds = datasets.load_dataset(path, name, split=split, revision=revision, cache_dir=cache_dir)
    except Exception as err:  # noqa: BLE001 - network/offline/not-found all end the same way
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        offline = " (offline mode is on)" if hub_offline() else ""
        raise UserError(
            f"hub dataset {desc}: could not be loaded{offline}: {type(err).__name__}: {first}; {hint}"
        ) from None
    if len(ds) == 0:
        raise UserError(f"hub dataset {desc}: no rows (empty split)")
    where = f"hub:{path}" + (f"/{name}" if name else "") + f"/{split}"
    rows = [(f"{where}: row {i}", row) for i, row in enumerate(ds.to_list(), start=1)]
    fingerprint = {
        "kind": "hub",
        "id": path,
        "config": name,
        "revision": revision,
        "split": split,
        "fingerprint": getattr(ds, "_fingerprint", None),
        "rows": len(rows),
    }
    print(f"negtune: loaded {len(rows)} rows from {desc}", file=sys.stderr)
    return SourceRows(rows=rows, fingerprint=fingerprint)
