"""Writing outputs: atomically, and only where negtune may write.

Why atomic: a killed job must never leave a half-written results file or checkpoint that a
resumed job would trust. Everything is written to a temporary sibling and renamed into
place; ``os.replace`` is atomic on POSIX within one file system.

Why "only where negtune may write": an output path is user input. ``--out .`` in a project
directory, ``output_dir: ''`` or ``build-data --out RUN_DIR`` must not replace a user's files
or a training run. The rules:

* negtune writes into a directory only when it is new, empty, or one negtune made for the
  same purpose. Directories negtune makes carry a small marker file (``.negtune``, JSON
  ``{"kind": ...}``); a directory written by an older negtune without the marker is
  recognised by what it holds (``_LEGACY``).
* an atomic directory replace (``atomic_dir``) only ever replaces negtune's own output of the
  same kind (a run's data directory, a checkpoint, the converted model);
* a single output file (``--out results.json``) is replaced only when it is negtune's own
  (``check_output_file`` with a recogniser);
* anything else is one ``UserError`` naming the path, before any work is done.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional

from negtune.errors import UserError

MARKER = ".negtune"
_BOOKKEEPING = (MARKER, ".negtune.lock")  # negtune's own files: a directory holding only these is empty


def _is_bookkeeping(name: str) -> bool:
    """negtune's marker and lock, or the marker while it is being written (``..negtune.*.tmp``):
    another process of the same launch may check the directory in that instant."""
    return name in _BOOKKEEPING or (name.startswith(f".{MARKER}.") and name.endswith(".tmp"))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# --------------------------------------------------------------------------- where negtune may write


def _marker_kind(directory: Path) -> Optional[str]:
    try:
        return json.loads((directory / MARKER).read_text(encoding="utf-8")).get("kind")
    except (OSError, ValueError, AttributeError):
        return None


def is_results_json(path: Path) -> bool:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(data, dict) and isinstance(data.get("tasks"), dict) and "summary" in data


def starts_with(prefix: str) -> Callable[[Path], bool]:
    """A recogniser for files negtune writes with a fixed opening (e.g. a resolved recipe)."""
    def check(path: Path) -> bool:
        try:
            with open(path, encoding="utf-8") as fh:
                return fh.read(len(prefix)) == prefix
        except (OSError, UnicodeDecodeError):
            return False
    return check


# What older negtune versions (before markers) left in each kind of directory.
_LEGACY: dict[str, Callable[[Path], bool]] = {
    "run": lambda d: (d / "recipe.resolved.yaml").is_file(),
    "data": lambda d: (d / "manifest.json").is_file() and (d / "instances.jsonl").is_file(),
    "checkpoint": lambda d: (d / "trainer_state.json").is_file(),
    "eval": lambda d: all(p.suffix in (".json", ".csv", ".md") and (p.suffix != ".json" or is_results_json(p))
                          for p in d.iterdir() if not p.name.startswith(".")),
    "report": lambda d: (d / "report.md").is_file(),
    "compare": lambda d: (d / "compare.md").is_file() and (d / "compare.csv").is_file(),
    "demo": lambda d: (d / "base" / "recipe.resolved.yaml").is_file(),
    "model": lambda d: (d / "negtune_source.json").is_file(),
    "lm-eval-export": lambda d: starts_with('{\n  "format": "negtune-lm-eval-export')(d / "manifest.json"),
}


def is_owned(directory: str | os.PathLike[str], kind: str) -> bool:
    """Is ``directory`` negtune's own output of this kind (marker, or an older negtune's layout)?"""
    d = Path(directory)
    if not d.is_dir():
        return False
    found = _marker_kind(d)
    if found is not None:
        return found == kind
    legacy = _LEGACY.get(kind)
    return bool(legacy and legacy(d))


def _check_parents(path: Path) -> None:
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UserError(f"{path}: cannot write there: {parent} is a file, not a directory")
            return


def check_output_dir(path: str | os.PathLike[str], kind: str, what: str = "output directory") -> Path:
    """Refuse a directory negtune must not write into (nothing is created here)."""
    if str(path).strip() == "":
        raise UserError(f"{what}: empty path; name a directory for negtune's output")
    p = Path(path)
    _check_parents(p)
    if p.exists() and not p.is_dir():
        raise UserError(f"{p}: is a file; the {what} must be a new or empty directory, or an earlier "
                        f"negtune {kind} directory")
    if p.is_dir() and any(not _is_bookkeeping(q.name) for q in p.iterdir()) and not is_owned(p, kind):
        other = _marker_kind(p)
        why = f"it is a negtune {other} directory" if other else "it holds files negtune did not write"
        raise UserError(f"{p}: refusing to write the {what} there: {why}; choose a new or empty directory")
    return p


def claim_dir(path: str | os.PathLike[str], kind: str, what: str = "output directory") -> Path:
    """``check_output_dir``, then create the directory (if needed) and mark it as ours."""
    p = check_output_dir(path, kind, what)
    p.mkdir(parents=True, exist_ok=True)
    if _marker_kind(p) != kind:
        write_json(p / MARKER, {"kind": kind})
    return p


def remove_owned(path: str | os.PathLike[str], kind: str) -> None:
    """Delete a directory negtune made for ``kind`` (e.g. a demo stage it redoes); else refuse."""
    p = Path(path)
    if not p.exists():
        return
    if not is_owned(p, kind):
        raise UserError(f"{p}: refusing to delete it: not a negtune {kind} directory")
    shutil.rmtree(p)


def check_output_file(path: str | os.PathLike[str], is_ours: Callable[[Path], bool], what: str) -> Path:
    """Refuse an output file path that exists and is not negtune's own, or cannot be written.

    Called before the work that produces the file, so a bad ``--out`` costs no minutes.
    """
    p = Path(path)
    _check_parents(p)
    if p.is_dir():
        raise UserError(f"{p}: is a directory, expected a file path for the {what}")
    if p.exists() and not is_ours(p):
        raise UserError(f"{p}: exists and is not a negtune {what}; refusing to replace it (choose another path)")
    parent = next(q for q in [p.parent, *p.parent.parents] if q.exists())
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"{p}: cannot write the {what}: {parent} is not writable")
    return p


# --------------------------------------------------------------------------- atomic writes


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; results are meant to be shared
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def write_jsonl(path: str | os.PathLike[str], rows: Iterable[dict[str, Any]]) -> str:
    """Write rows as canonical JSON lines atomically; return the sha256 of the bytes."""
    digest = hashlib.sha256()
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
            for row in rows:
                line = json.dumps(row, sort_keys=True, ensure_ascii=False) + "\n"
                digest.update(line.encode("utf-8"))
                fh.write(line)
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str], kind: str) -> Iterator[Path]:
    """Yield a temporary directory; rename it to ``path`` only once fully written.

    Why: checkpoints and data directories are directories. A reader that sees ``path`` can
    trust it is complete. An existing ``path`` is replaced only if it is negtune's own output
    of the same ``kind``; the new directory carries the marker.
    """
    target = Path(path)
    _check_parents(target)
    if target.exists() and not is_owned(target, kind):
        what = "a file" if not target.is_dir() else "not a negtune " + kind + " directory"
        raise UserError(f"{target}: refusing to replace it: {what}")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield tmp
        write_json(tmp / MARKER, {"kind": kind})
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def sha256_file(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
