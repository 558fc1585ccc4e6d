"""Finding a loss by name and validating a recipe's ``loss`` section.

Why here, and light: ``resolve_loss`` runs while a recipe is validated, before anything heavy
is loaded, so unknown names, bad arguments (type annotations, declared ranges) and data that
cannot provide the loss's needs fail in a second with ``<recipe>: loss.<arg>``. Built-ins live
one per module and register themselves on import; this module imports them only when named.
"""
from __future__ import annotations

import importlib
import inspect
import typing
from typing import Any, Callable, Iterable, Optional

from negtune.errors import UserError
from negtune.losses.contract import NEEDS, set_declarations
from negtune.losses.spec import LossSpec
from negtune.losses.user_code import import_user_loss
from negtune.schema import check_range, convert  # the recipe's type rules and messages

_BUILTIN_MODULES = {
    "ce": "negtune.losses.ce",
    "mixed": "negtune.losses.mixed",
    "unlikelihood": "negtune.losses.unlikelihood",
    "kl_anchor": "negtune.losses.kl_anchor",
    "rank_margin": "negtune.losses.rank_margin",
}
_REGISTRY: dict[str, Callable[..., Any]] = {}


def register_loss(name: str, needs: Iterable[str] = (), ranges: Optional[dict[str, dict[str, float]]] = None):
    """Decorator registering a built-in (or plugin) loss under ``name``."""

    def wrap(fn):
        set_declarations(fn, needs, ranges)
        fn.loss_name = name
        _REGISTRY[name] = fn
        return fn

    return wrap


def list_losses() -> list[str]:
    return sorted(set(_BUILTIN_MODULES) | set(_REGISTRY))


def _lookup(name: str, source: str) -> Any:
    if ":" in name:
        return import_user_loss(name, source)
    if name not in _REGISTRY and name in _BUILTIN_MODULES:
        importlib.import_module(_BUILTIN_MODULES[name])
    if name not in _REGISTRY:
        raise UserError(
            f"{source}: loss.name: unknown loss {name!r} (known: {', '.join(list_losses())}; "
            "or 'module.path:function')"
        )
    return _REGISTRY[name]


def _resolve_annotation(ann: Any, fn: Any) -> Any:
    """Turn a (possibly string) annotation into a type, or None when it cannot be resolved."""
    if ann is inspect.Parameter.empty:
        return None
    if isinstance(ann, str):
        namespace = dict(vars(typing))
        namespace.update(getattr(fn, "__globals__", {}) or {})
        try:
            ann = eval(ann, namespace)  # noqa: S307 - annotations of the user's own function
        except Exception:
            return None
    return ann


def _call_signature(fn: Any, where: str) -> tuple[Any, list[inspect.Parameter], bool]:
    """Check ``fn(model, batch, ctx, **args)``.

    Returns (the function whose globals resolve annotations, the recipe-argument parameters,
    whether it takes ``**kwargs``).
    """
    if not callable(fn):
        raise UserError(f"{where}: {fn!r} is not callable")
    target = fn
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        raise UserError(f"{where}: cannot read the signature of {fn!r}") from None
    if not inspect.isfunction(fn) and not inspect.ismethod(fn) and hasattr(fn, "__call__"):
        target = type(fn).__call__
    params = list(sig.parameters.values())
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    has_varargs = any(p.kind == p.VAR_POSITIONAL for p in params)
    if len(positional) < 3 and not has_varargs:
        raise UserError(
            f"{where}: {getattr(fn, '__name__', fn)!r} has signature {sig}; a loss must be "
            "fn(model, batch, ctx, **args)"
        )
    args = positional[3:] + [p for p in params if p.kind == p.KEYWORD_ONLY]
    for p in args:
        if p.kind == p.POSITIONAL_ONLY:
            raise UserError(f"{where}: argument {p.name!r} is positional-only; recipe arguments are passed by name")
    return target, args, any(p.kind == p.VAR_KEYWORD for p in params)


def resolve_loss(loss_cfg: dict, source: str = "<recipe>") -> LossSpec:
    """Resolve and validate a recipe's ``loss`` section without running anything heavy."""
    if not isinstance(loss_cfg, dict):
        raise UserError(f"{source}: loss: expected a mapping with 'name', got {loss_cfg!r}")
    name = loss_cfg.get("name")
    if not isinstance(name, str) or not name:
        raise UserError(f"{source}: loss.name: required, a registered loss or 'module.path:function'")
    fn = _lookup(name, source)
    where = f"{source}: loss.name"
    if inspect.isclass(fn):
        raise UserError(f"{where}: {name!r} is a class; reference an instance or a function")
    target, arg_list, accepts_any = _call_signature(fn, where)

    needs = getattr(fn, "needs", frozenset())
    if isinstance(needs, str):
        needs = {needs}
    try:
        needs = frozenset(needs)
    except TypeError:
        raise UserError(f"{where}: {name!r}.needs must be a set of names among {sorted(NEEDS)}") from None
    if needs - NEEDS:
        raise UserError(f"{where}: {name!r} declares unknown needs {sorted(needs - NEEDS)} (known: {sorted(NEEDS)})")

    args = {k: v for k, v in loss_cfg.items() if k != "name"}
    arg_params = {p.name: p for p in arg_list}
    for key in args:
        if key not in arg_params and not accepts_any:
            known = ", ".join(sorted(arg_params)) or "none"
            raise UserError(f"{source}: loss.{key}: unknown argument of loss {name!r} (known: {known})")
    for pname, p in arg_params.items():
        if p.default is inspect.Parameter.empty and pname not in args:
            raise UserError(f"{source}: loss.{pname}: required argument of loss {name!r} is missing")

    ranges = getattr(fn, "arg_ranges", None) or {}
    checked = {}
    for key, value in args.items():
        p = arg_params.get(key)
        tp = _resolve_annotation(p.annotation, target) if p is not None else None
        if tp is not None and tp is not Any:
            try:
                value = convert(value, tp, f"loss.{key}", source)
            except UserError:
                raise
            except Exception:  # an annotation convert does not understand: accept the value
                pass
        check_range(value, dict(ranges.get(key, {})), f"loss.{key}", source)
        checked[key] = value
    return LossSpec(name=name, fn=fn, needs=needs, args=checked)


def check_data_compat(spec: LossSpec, data_cfg: Any, source: str = "<recipe>") -> None:
    """Raise UserError if the recipe's data cannot provide what the loss needs."""
    if "paired" in spec.needs:
        variants = set(getattr(data_cfg, "variants", []) or [])
        missing = {"original", "negated"} - variants
        if missing:
            raise UserError(
                f"{source}: data.variants: loss {spec.name!r} needs original/negated pairs but "
                f"data.variants lacks {', '.join(sorted(missing))}; set data.variants: [original, negated] "
                "and data.pairs: true"
            )
        if not getattr(data_cfg, "pairs", False):
            raise UserError(
                f"{source}: data.pairs: loss {spec.name!r} needs original/negated pairs; set data.pairs: true"
            )
