"""Whether and where negtune reaches the Hugging Face hub: one rule for models and data sets.

Why one module: the model loader and the data loader used to read different environment
variables, so a run could be "offline" for its data set and try the network for its model.

* ``hub_offline()``: offline mode is on when any of ``HF_HUB_OFFLINE``, ``HF_DATASETS_OFFLINE``
  or ``TRANSFORMERS_OFFLINE`` is set to a true value (1, true, yes, on): then models and data
  sets load only from local directories and caches, and a failure says so.
* ``hub_mirror(configured)`` / ``mirror_repo(mirror, repo_id)``: a *hub mirror* is a directory
  of dataset repositories cloned from the hub, ``DIR/<owner>/<name>`` (``git clone
  https://huggingface.co/datasets/<owner>/<name>`` with git-lfs: the data files plus the README
  whose ``configs:`` block names configs and splits). The recipe key ``data.hub_mirror`` or, when
  that is unset, the environment variable ``NEGTUNE_HUB_MIRROR`` selects it; the data loader
  then calls ``datasets.load_dataset`` on the clone with the same config and split names it
  would use for the hub id, so an air-gapped cluster runs the same code path as a connected one.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import NamedTuple, Optional

from negtune.errors import UserError

OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
MIRROR_VARIABLE = "NEGTUNE_HUB_MIRROR"


def hub_offline() -> bool:
    return any(os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on") for var in OFFLINE_VARIABLES)


class Mirror(NamedTuple):
    path: str
    origin: str  # "data.hub_mirror" or the environment variable's name, for error messages


def hub_mirror(configured: Optional[str] = None) -> Optional[Mirror]:
    """The mirror in effect: the recipe's ``data.hub_mirror``, else ``$NEGTUNE_HUB_MIRROR``."""
    if configured:
        return Mirror(str(configured), "data.hub_mirror")
    env = os.environ.get(MIRROR_VARIABLE, "").strip()
    return Mirror(env, MIRROR_VARIABLE) if env else None


def mirror_repo(mirror: Mirror, repo_id: str) -> Path:
    """``mirror/<owner>/<name>``; a missing clone is one line naming the path it expected."""
    root = Path(mirror.path)
    if not root.is_dir():
        raise UserError(f"{root}: hub mirror directory not found (from {mirror.origin})")
    repo = root / repo_id
    if not repo.is_dir():
        raise UserError(
            f"{repo}: not found: the hub mirror has no copy of {repo_id} "
            f"(git clone https://huggingface.co/datasets/{repo_id} {repo})"
        )
    return repo


_SHA = re.compile(r"^[0-9a-f]{40}$")


def git_head(repo: Path) -> Optional[str]:
    """The commit a git clone is checked out at, read from ``.git`` without running git
    (None when the directory is not a clone, e.g. files copied by hand)."""
    git = repo / ".git"
    try:
        head = (git / "HEAD").read_text().strip()
        if _SHA.match(head):
            return head
        if not head.startswith("ref: "):
            return None
        ref = head[5:].strip()
        loose = git / ref
        if loose.is_file():
            sha = loose.read_text().strip()
            return sha if _SHA.match(sha) else None
        packed = git / "packed-refs"
        if packed.is_file():
            for line in packed.read_text().splitlines():
                parts = line.split()
                if len(parts) == 2 and parts[1] == ref and _SHA.match(parts[0]):
                    return parts[0]
    except OSError:
        return None
    return None
