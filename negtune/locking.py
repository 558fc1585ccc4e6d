"""An exclusive lock on a run directory, so two negtune processes never write it at once.

Why: two ``negtune train --out X`` at the same time used to both exit 0 while the second
overwrote the first's checkpoints, and a ``--resume`` started beside a running job crashed
when a checkpoint was pruned underneath it. A training run holds ``RUN_DIR/.negtune.lock``
for its whole life; ``negtune eval RUN_DIR`` holds ``RUN_DIR/eval/.negtune.lock`` (so it can
run beside training, but not beside another evaluation of the same run).

It is an OS lock (``fcntl.flock``), not a home-made scheme: the kernel releases it when the
process ends, however it ends, so a lock file left by a killed process never blocks. The
file holds the holder's pid, host and start time, which the refusal names.
"""
from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path
from typing import Optional

from negtune.errors import UserError

LOCK_FILE = ".negtune.lock"


class DirLock:
    """``acquire()`` or one ``UserError`` naming the holder; released by ``release()`` or exit."""

    def __init__(self, directory: str | os.PathLike[str], purpose: str):
        self.path = Path(directory) / LOCK_FILE
        self.purpose = purpose
        self._fd: Optional[int] = None

    def acquire(self) -> "DirLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe(fd)
            os.close(fd)
            raise UserError(f"{self.path.parent}: in use by another negtune process ({holder}); wait for it to "
                            f"finish or choose another directory") from None
        info = {"pid": os.getpid(), "host": socket.gethostname(), "purpose": self.purpose,
                "started": time.strftime("%Y-%m-%d %H:%M:%S %z")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    def __enter__(self) -> "DirLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _describe(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
        return f"{info.get('purpose', 'negtune')}, pid {info['pid']} on {info['host']}, started {info['started']}"
    except (OSError, ValueError, KeyError, UnicodeDecodeError):
        return "holder unknown"
