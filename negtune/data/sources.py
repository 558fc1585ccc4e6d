"""Reading source rows: local files in a source's own schema, or the Hugging Face hub.

Why local files first: every test, the demo and any air-gapped cluster run from local files
(``data.files`` in a recipe); the hub is one code path used when a task has no files. Local
formats are chosen by extension: ``.jsonl`` (one JSON object per line), ``.json`` (a list of
objects, or JSON lines), ``.csv``, ``.tsv``, ``.parquet``. Rows keep their source field names
(``goal``/``sol1``/``sol2``/``label`` for PIQA, ...); nested fields in CSV/TSV cells are JSON.

Every row carries ``where`` ("path: row N", N counting data rows from 1; for JSON lines the
line number) so that a bad row is reported by file and row. A fingerprint describes what was
read (sha256 of each local file, or hub id + config + revision + split + dataset fingerprint,
plus the clone's path when a hub mirror is used) and goes into the manifest.
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
from negtune.hub import Mirror, git_head, hub_offline, mirror_repo

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


def _mirror_cache(repo_dir: Path, cache_dir: Optional[str]) -> tuple[str, str]:
    """A cache directory keyed by the clone's files, and that key.

    Why: ``datasets`` caches a local directory's prepared Arrow files under the directory's
    *name* and a hash of its README and data-file patterns, not of the files (datasets 5.2),
    so a ``git pull`` that changes data files but not the card, or a second clone at another
    revision, would silently read the first copy's cache. Keying the cache by every file's
    relative path, size and modification time makes a changed clone a new cache entry.
    """
    import datasets

    digest = hashlib.sha256(str(repo_dir.resolve()).encode())
    for path in sorted(p for p in repo_dir.rglob("*") if p.is_file() and ".git" not in p.relative_to(repo_dir).parts):
        st = path.stat()
        digest.update(f"{path.relative_to(repo_dir).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    key = digest.hexdigest()[:16]
    base = Path(cache_dir) if cache_dir else Path(datasets.config.HF_DATASETS_CACHE)
    return str(base / "negtune-mirror" / key), key


_LFS_POINTER = b"version https://git-lfs.github.com/spec/"


def _lfs_pointer(repo_dir: Path) -> Optional[Path]:
    """The first data file of a clone that is a git-lfs pointer (a clone made without git-lfs)."""
    for path in sorted(repo_dir.rglob("*.parquet")):
        try:
            with open(path, "rb") as fh:
                if fh.read(len(_LFS_POINTER)) == _LFS_POINTER:
                    return path
        except OSError:
            continue
    return None


def load_hub(
    path: str,
    name: Optional[str],
    split: str,
    revision: Optional[str] = None,
    cache_dir: Optional[str] = None,
    label: str = "",
    mirror: Optional[Mirror] = None,
    expected_rows: Optional[int] = None,
) -> SourceRows:
    """``datasets.load_dataset(path, name, split=..., revision=..., cache_dir=...)`` as rows.

    With a ``mirror`` (``negtune.hub.hub_mirror``) the same call runs on the clone
    ``mirror/<path>`` instead of the hub id (a clone is one revision: ``revision`` is not
    passed; the clone's checked-out commit is recorded instead). Any failure (no network,
    offline mode without a cached copy, unknown split, missing clone) becomes one UserError
    line. ``expected_rows`` is the split size the dataset card states: a different count is
    one warning line on stderr and ``fingerprint["warning"]`` (an upstream change, or a
    partial mirror, silently changes the sample otherwise).
    """
    source = path
    repo_dir = None
    if mirror is not None:
        repo_dir = mirror_repo(mirror, path)
        source = str(repo_dir)
        revision_used = git_head(repo_dir)
    else:
        revision_used = revision
    desc = source + (f" [{name}]" if name else "") + f" split {split!r}" + (f" @ {revision}" if revision and not repo_dir else "")
    hint = f"set data.files.{label} to local files" if label else "use local files"
    if repo_dir is not None:
        hint = f"check the clone {repo_dir}"
    try:
        import datasets
    except ImportError:  # pragma: no cover - datasets is a dependency
        raise UserError(f"{desc}: the 'datasets' package is not installed; {hint}") from None
    try:
        with _quiet_hub_logs():
            if repo_dir is not None:
                mirror_cache, files_key = _mirror_cache(repo_dir, cache_dir)
                ds = datasets.load_dataset(str(repo_dir), name, split=split, cache_dir=mirror_cache)
            else:
                ds = datasets.load_dataset(path, name, split=split, revision=revision, cache_dir=cache_dir)
    except Exception as err:  # noqa: BLE001 - network/offline/not-found all end the same way
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        offline = " (offline mode is on)" if hub_offline() and repo_dir is None else ""
        pointer = _lfs_pointer(repo_dir) if repo_dir is not None else None
        if pointer is not None:  # cloned without git-lfs: the data files are 130-byte stubs
            raise UserError(f"{pointer}: a git-lfs pointer, not data: run `git lfs pull` in {repo_dir}") from None
        kind = "hub mirror" if repo_dir is not None else "hub dataset"
        raise UserError(
            f"{kind} {desc}: could not be loaded{offline}: {type(err).__name__}: {first}; {hint}"
        ) from None
    if len(ds) == 0:
        raise UserError(f"hub dataset {desc}: no rows (empty split)")
    where = (source if repo_dir is not None else f"hub:{path}") + (f"/{name}" if name else "") + f"/{split}"
    rows = [(f"{where}: row {i}", row) for i, row in enumerate(ds.to_list(), start=1)]
    fingerprint: dict[str, Any] = {
        "kind": "hub",
        "id": path,
        "config": name,
        "revision": revision_used,
        "split": split,
        "fingerprint": getattr(ds, "_fingerprint", None),
        "rows": len(rows),
    }
    if repo_dir is not None:
        fingerprint["mirror"] = str(repo_dir)
        fingerprint["mirror_files"] = files_key
    if expected_rows is not None:
        fingerprint["expected_rows"] = expected_rows
        if expected_rows != len(rows):
            fingerprint["warning"] = (
                f"{desc}: {len(rows)} rows, but its dataset card states {expected_rows} "
                "(changed upstream, or a partial copy): the sample differs from the registry's"
            )
            print(f"negtune: warning: {fingerprint['warning']}", file=sys.stderr)
    print(f"negtune: loaded {len(rows)} rows from {desc}", file=sys.stderr)
    return SourceRows(rows=rows, fingerprint=fingerprint)
