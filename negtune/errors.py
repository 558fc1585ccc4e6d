"""One error type for every problem a user can fix.

Why: the toolkit's contract is that bad input produces exactly one line naming the
file, key or row and what is wrong, exit code 2, and no traceback. Every module raises
``UserError``; only ``exit_on_user_error`` (which every command's entry point runs) turns it into that line and that exit code, so
library callers (tests, notebooks) still get a normal exception they can catch.
"""
from __future__ import annotations

import argparse
import errno
import sys
from typing import Callable, NoReturn

EXIT_USER_ERROR = 2


class UserError(Exception):
    """A problem with the user's input (recipe, data file, path, argument).

    The message must already be the complete one-line explanation, e.g.
    ``recipes/x.yaml: train.lr: must be > 0``.
    """

    def __str__(self) -> str:  # keep it one line whatever the caller passed
        return " ".join(str(self.args[0]).split("\n")) if self.args else "error"


# Operating-system errors about the user's files or disk (not bugs): reported like UserError.
_FILE_ERRNOS = {errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT, errno.ENOTDIR,
                errno.EISDIR, errno.ENOENT, errno.EEXIST, errno.ENAMETOOLONG}


def exit_on_user_error(func: Callable[[], int | None]) -> int:
    """Run ``func``; on ``UserError`` (or a read-only, permission-denied, full-disk, ... file
    error) print one line to stderr and return exit code 2."""
    try:
        return int(func() or 0)
    except UserError as err:
        print(f"negtune: error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    except OSError as err:
        if err.errno not in _FILE_ERRNOS:
            raise
        where = err.filename if err.filename is not None else "output"
        print(f"negtune: error: {where}: {err.strerror or err}", file=sys.stderr)
        return EXIT_USER_ERROR


class ArgParser(argparse.ArgumentParser):
    """``argparse`` for every negtune command: a usage error is one ``UserError`` line
    (``negtune train: unrecognized arguments: --lrr``), not argparse's usage dump and exit."""

    def error(self, message: str) -> NoReturn:
        raise UserError(f"{self.prog}: {message}")
