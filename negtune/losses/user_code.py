"""User losses named by reference: ``module.path:function`` or ``path/to/file.py:function``.

Why apart: importing a user's module runs its code, which resolving a recipe does (to read the
function's signature) but a dry run must not; ``locate_user_loss`` only finds the file or
module. Messages name ``<recipe>: loss.name`` and say where negtune looked.
"""
from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any, Optional

from negtune.errors import UserError
from negtune.losses.spec import LossSpec


def is_user_reference(name: Any) -> bool:
    """``module.path:function`` or ``file.py:function`` (user code), not a registered name."""
    return isinstance(name, str) and ":" in name


def import_user_loss(ref: str, source: str) -> Any:
    """The object ``ref`` names, imported (this runs the module's top-level code)."""
    where = f"{source}: loss.name"
    module_name, _, attr = ref.rpartition(":")
    if not module_name or not attr:
        raise UserError(f"{where}: {ref!r}: expected 'module.path:function'")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        if module_name.endswith(".py"):
            path = Path(module_name)
            if not path.is_file():
                raise UserError(f"{where}: {ref!r}: file {module_name} not found")
            mod_key = "negtune_user_loss_" + path.stem
            spec = importlib.util.spec_from_file_location(mod_key, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[mod_key] = module
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(module_name)
    except UserError:
        raise
    except ModuleNotFoundError as err:
        if err.name and (module_name == err.name or module_name.startswith(err.name + ".")):
            raise UserError(
                f"{where}: cannot import module {module_name!r} (not found from {os.getcwd()}; "
                "run from the directory that contains it or install it)"
            ) from None
        raise UserError(f"{where}: importing {module_name!r} failed: {err}") from None
    except Exception as err:  # syntax errors, failing top-level code in the user's file
        raise UserError(f"{where}: importing {module_name!r} failed: {type(err).__name__}: {err}") from None
    try:
        obj = getattr(module, attr)
    except AttributeError:
        raise UserError(f"{where}: module {module_name!r} has no attribute {attr!r}") from None
    return obj


def locate_user_loss(loss_cfg: dict, source: str = "<recipe>") -> LossSpec:
    """For dry runs: check that a user loss reference points at an existing file or module,
    WITHOUT running any of its code (importing a module executes its body). Its needs and
    arguments are checked when training starts; the returned spec cannot be called."""
    name = loss_cfg["name"]
    where = f"{source}: loss.name"
    module_name, _, attr = name.rpartition(":")
    if not module_name or not attr:
        raise UserError(f"{where}: {name!r}: expected 'module.path:function'")
    if module_name.endswith(".py"):
        if not Path(module_name).is_file():
            raise UserError(f"{where}: {name!r}: file {module_name} not found")
    else:
        search: Optional[list[str]] = [os.getcwd(), *sys.path]
        for part in module_name.split("."):  # PathFinder finds without executing package bodies
            found = importlib.machinery.PathFinder.find_spec(part, search)
            if found is None:
                raise UserError(f"{where}: cannot find module {module_name!r} (from {os.getcwd()})")
            search = list(found.submodule_search_locations or [])
    return LossSpec(name=name, fn=_not_imported, needs=frozenset(), args={k: v for k, v in loss_cfg.items()
                                                                          if k != "name"}, imported=False)


def _not_imported(*_: Any, **__: Any) -> Any:
    raise RuntimeError("a dry run does not import user loss code")
