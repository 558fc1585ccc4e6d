"""Training losses as plain functions: a registry, recipe validation, and the call contract.

Why plain functions: a researcher comparing objectives for negated instructions should be
able to write ``def my_loss(model, batch, ctx, alpha: float = 0.5) -> LossOutput`` in their
own file, name it in the recipe (``loss: {name: my_losses:my_loss, alpha: 0.3}``) and train,
without editing negtune. The trainer never branches on loss names: a loss *declares* the
data it needs (``needs``), the collator provides it, and the trainer only builds a reference
model when ``"reference_model"`` is declared.

Contract
--------
``fn(model, batch, ctx, **args) -> LossOutput``

* ``model``: the (possibly PEFT-wrapped) causal LM; call ``model(input_ids=..., attention_mask=...)``.
* ``batch``: the dict built by ``negtune.data.collate.Collator`` (all values are tensors):
  ``input_ids``, ``attention_mask``, ``labels`` (unshifted, -100 on prompt and padding, the
  Hugging Face convention), ``n_target_tokens``; with need ``"paired"`` also ``pair_input_ids``,
  ``pair_attention_mask``, ``pair_labels``, ``pair_n_target_tokens`` (the original-variant
  partner of each negated row); with need ``"all_options"`` also ``opt_input_ids``,
  ``opt_attention_mask``, ``opt_labels``, ``opt_row``, ``opt_index``, ``opt_is_target``,
  ``opt_is_gold`` (every option of every row, flattened).
* ``ctx``: ``LossContext(reference_logits, step)``. ``reference_logits(input_ids, attention_mask)``
  returns the frozen base model's logits, computed under ``torch.no_grad()`` (LoRA: the same
  model with the adapter disabled; full fine-tuning: a frozen copy of the base). It is
  ``None`` unless the loss declares ``"reference_model"``.
* returns ``LossOutput(loss, components, n_tokens=None)``: ``loss`` a scalar tensor to
  backpropagate (a per-token *mean* when ``n_tokens`` is set), ``components`` floats to log
  (e.g. ``{"ce": 2.1, "ul": 0.3}``). ``n_tokens`` (optional) says "``loss`` is a mean over
  the batch's ``n_target_tokens`` target tokens": the trainer, accumulating gradients over
  micro-batches and processes, then weights each micro-batch by ``n_target_tokens /
  global target tokens`` so that a step optimises the mean over the global batch's tokens
  (it counts tokens from the batches *before* the forward passes, hence ``n_tokens`` must
  equal ``batch["n_target_tokens"]``; this is checked). ``None``: the loss is some other
  per-batch mean (composite losses, ``mixed``) and micro-batches are weighted equally.

Declaring needs and argument ranges
-----------------------------------
Built-ins use ``@register_loss("name", needs=(...), ranges={...})``. A user's function uses
``@negtune.losses.declare(needs=(...), ranges={"alpha": {"ge": 0}})`` or sets ``fn.needs``.
Arguments are checked against the signature before anything heavy is loaded: unknown or
missing arguments, values not matching a type annotation (``float``, ``int``, ``bool``,
``str``, ``Literal[...]``, ``Optional[...]``), and values outside declared ranges are a
``UserError`` naming ``<recipe>: loss.<arg>``.

This module does not import torch; built-in loss modules import it inside their functions,
so ``resolve_loss`` (called while validating a recipe) stays fast.
"""
from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import inspect
import os
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

from negtune.errors import UserError
from negtune.schema import check_range, convert  # the recipe's type rules and messages

NEEDS = frozenset({"paired", "all_options", "reference_model"})

# Built-ins live one per module and register themselves on import; importing them lazily
# keeps this module light.
_BUILTIN_MODULES = {
    "ce": "negtune.losses.ce",
    "mixed": "negtune.losses.mixed",
    "unlikelihood": "negtune.losses.unlikelihood",
    "kl_anchor": "negtune.losses.kl_anchor",
    "rank_margin": "negtune.losses.rank_margin",
}
_REGISTRY: dict[str, Callable[..., Any]] = {}


@dataclass
class LossOutput:
    """What a loss returns. ``loss`` is a scalar tensor; see the module docstring for ``n_tokens``."""

    loss: Any
    components: dict[str, float] = field(default_factory=dict)
    n_tokens: Optional[int] = None


@dataclass
class LossContext:
    """What the trainer gives a loss besides model and batch."""

    reference_logits: Optional[Callable[[Any, Any], Any]] = None
    step: int = 0


@dataclass
class LossSpec:
    """A resolved, validated loss: call it as ``spec(model, batch, ctx)``."""

    name: str
    fn: Callable[..., Any]
    needs: frozenset
    args: dict[str, Any]
    imported: bool = True  # False: a user loss located but not imported (dry runs; see locate_user_loss)

    def __call__(self, model: Any, batch: dict, ctx: LossContext) -> LossOutput:
        out = self.fn(model, batch, ctx, **self.args)
        if isinstance(out, LossOutput):
            if out.n_tokens is not None and "n_target_tokens" in batch:
                expected = int(batch["n_target_tokens"])
                if int(out.n_tokens) != expected:
                    raise UserError(
                        f"loss {self.name}: returned n_tokens={out.n_tokens} but the batch has {expected} "
                        "target tokens; n_tokens must be batch['n_target_tokens'] (loss = mean over the "
                        "target tokens) or None"
                    )
            return out
        if hasattr(out, "backward") and getattr(out, "ndim", 1) == 0:  # a bare scalar tensor
            return LossOutput(out, {})
        raise UserError(
            f"loss {self.name}: returned {type(out).__name__}; expected negtune.losses.LossOutput "
            "(or a scalar tensor)"
        )


# --------------------------------------------------------------------------- declaring


def _set_declarations(fn: Any, needs: Iterable[str], ranges: Optional[dict] = None) -> None:
    needs = frozenset(needs)
    unknown = needs - NEEDS
    if unknown:
        raise ValueError(f"unknown loss needs {sorted(unknown)}; known: {sorted(NEEDS)}")
    fn.needs = needs
    fn.arg_ranges = dict(ranges or {})


def declare(needs: Iterable[str] = (), ranges: Optional[dict[str, dict[str, float]]] = None):
    """Decorator for user losses: ``@declare(needs=("paired",), ranges={"beta": {"ge": 0}})``.

    ``ranges`` maps an argument to bounds among ``gt``, ``ge``, ``lt``, ``le``.
    """

    def wrap(fn):
        _set_declarations(fn, needs, ranges)
        return fn

    return wrap


def register_loss(name: str, needs: Iterable[str] = (), ranges: Optional[dict[str, dict[str, float]]] = None):
    """Decorator registering a built-in (or plugin) loss under ``name``."""

    def wrap(fn):
        _set_declarations(fn, needs, ranges)
        fn.loss_name = name
        _REGISTRY[name] = fn
        return fn

    return wrap


def list_losses() -> list[str]:
    return sorted(set(_BUILTIN_MODULES) | set(_REGISTRY))


# --------------------------------------------------------------------------- resolving


def _import_reference(ref: str, source: str) -> Any:
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


def _lookup(name: str, source: str) -> Any:
    if ":" in name:
        return _import_reference(name, source)
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


def is_user_reference(name: Any) -> bool:
    """``module.path:function`` or ``file.py:function`` (user code), not a registered name."""
    return isinstance(name, str) and ":" in name


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
