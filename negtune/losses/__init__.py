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
  partner of each negated row) and ``pair_weight`` (1/k when k negated rows of the item share
  that partner, e.g. ``negated_target: all_wrong``: weigh partner sums by it so that each
  original instance counts once per item, see ``negtune.losses.units.partner_tokens``); with need ``"all_options"`` also ``opt_input_ids``,
  ``opt_attention_mask``, ``opt_labels``, ``opt_row``, ``opt_index``, ``opt_is_target``,
  ``opt_is_gold`` (every option of every row, flattened).
* ``ctx``: ``LossContext(reference_logits, step)``. ``reference_logits(input_ids, attention_mask)``
  returns the frozen base model's logits, computed under ``torch.no_grad()`` (LoRA: the same
  model with the adapter disabled; full fine-tuning: a frozen copy of the base). It is
  ``None`` unless the loss declares ``"reference_model"``.
* returns ``LossOutput(terms={name: Term(total, count, unit, weight=1.0)}, components={})``.

Normalisation: sums and counts
------------------------------
A loss is a weighted sum of *terms*, each a mean over its own unit (target tokens, rows,
options, ...)::

    L = sum_k  weight_k * total_k / count_k

``Term.total`` is the (differentiable) sum over this micro-batch's units, ``Term.count``
their number, and ``Term.unit`` says how to count them in any batch: a batch key (e.g.
``"n_target_tokens"``) or a function ``batch -> number``. For one micro-batch the loss is
the formula above (``LossOutput.loss``, computed for you). Across micro-batches and
processes the trainer does *not* average those per-micro-batch means: before the first
backward it counts every term's units in all micro-batches of the global batch (``unit``
applied to each, summed over processes) and backpropagates ``weight_k * total_k / (global
count_k)``. A step therefore optimises every term's mean over the *global* batch, the same
whatever ``per_device_batch_size``, ``grad_accum`` or the process count. This needs the
count to be a function of the batch alone (not of the model), which every sensible unit is.
``LossSpec`` checks that ``count == unit(batch)`` on every call.

* Composite losses normalise each component by its own unit: ``unlikelihood`` is
  ``{"ce": Term(nll sum, target tokens), "ul": Term(ul sum, non-gold option tokens, weight=alpha)}``.
* A term with ``weight=0`` is logged but not trained (e.g. ``mixed``'s ``ce_negated``).
* Terms are logged under their names as exact global-batch means; ``components`` holds any
  other floats to log (averaged over micro-batches weighted by their rows).
* Every micro-batch must return the same term names (return a zero term, count 0, when a
  micro-batch has no units of that kind: it then adds nothing).
* Units: the batch key ``"n_target_tokens"`` (the rows' target-answer tokens), and the
  functions the built-ins use, in ``negtune.losses.units`` (``rows``, ``partner_tokens``,
  ``union_tokens``, ``nongold_option_tokens``, ``ranked_rows``): import and reuse them.

Shorthands (same rule, one term named ``loss``): ``LossOutput(loss, components, n_tokens=N)``
says "``loss`` is a mean over the batch's ``n_target_tokens`` target tokens" (``N`` must equal
``batch["n_target_tokens"]``); ``LossOutput(loss, components)`` without terms, or a bare
scalar tensor, is taken as a mean over the micro-batch's *rows* (unit ``rows``), which is
only split-independent if the loss really is a per-row mean.

Example (the focal loss in ``tests/losses/user_loss_example.py``)::

    per_token = -((1 - logp.exp()) ** gamma) * logp           # [B, L-1]
    return LossOutput(terms={"focal": Term((per_token * mask).sum(), mask.sum(), "n_target_tokens")})

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
from negtune.losses.units import count_units, rows, unit_name  # torch-free at import
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
class Term:
    """One normalised part of a loss: ``weight * total / count`` (see "Normalisation")."""

    total: Any  # scalar tensor: the sum over this micro-batch's units (differentiable)
    count: Any  # how many units this micro-batch holds (int, float or 0-d tensor)
    unit: Any  # str (a batch key) or Callable[[dict], number]: counts the units of any batch
    weight: float = 1.0  # 0: logged, not trained

    def mean(self) -> Any:
        """``total / count`` (0 when the micro-batch has none of these units)."""
        count = float(self.count)
        return self.total / count if count > 0 else self.total * 0.0


@dataclass
class LossOutput:
    """What a loss returns: ``terms`` (see the module docstring) or one of the shorthands.

    With ``terms``, ``loss`` is derived: ``sum(weight * total / count)``, the value for this
    micro-batch. ``LossSpec`` turns the shorthands into ``terms`` so the trainer sees one form.
    """

    loss: Any = None
    components: dict[str, float] = field(default_factory=dict)
    n_tokens: Optional[int] = None
    terms: Optional[dict[str, Term]] = None

    def __post_init__(self) -> None:
        if self.terms is None:
            if self.loss is None:
                raise ValueError("LossOutput: give terms={...} (or a loss tensor)")
            return
        if self.loss is not None or self.n_tokens is not None:
            raise ValueError("LossOutput: give terms, or loss (with optional n_tokens), not both")
        if not self.terms:
            raise ValueError("LossOutput: terms is empty")
        trained = [t for t in self.terms.values() if t.weight != 0]
        parts = [t.weight * t.mean() for t in trained] or [0.0 * next(iter(self.terms.values())).total]
        self.loss = sum(parts[1:], parts[0])


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
        """Call the loss; return a ``LossOutput`` with ``terms`` whose counts match the batch."""
        out = self.fn(model, batch, ctx, **self.args)
        if not isinstance(out, LossOutput):
            if hasattr(out, "backward") and getattr(out, "ndim", 1) == 0:  # a bare scalar tensor
                out = LossOutput(out, {})
            else:
                raise UserError(
                    f"loss {self.name}: returned {type(out).__name__}; expected negtune.losses.LossOutput "
                    "(or a scalar tensor)"
                )
        if out.terms is None:
            if out.n_tokens is not None:
                expected = int(batch["n_target_tokens"])
                if int(out.n_tokens) != expected:
                    raise UserError(
                        f"loss {self.name}: returned n_tokens={out.n_tokens} but the batch has {expected} "
                        "target tokens; n_tokens must be batch['n_target_tokens'] (loss = mean over the "
                        "target tokens) or None"
                    )
                term = Term(out.loss * expected, expected, "n_target_tokens")
            else:
                n = rows(batch)
                term = Term(out.loss * n, n, rows)
            converted = LossOutput(terms={"loss": term}, components=dict(out.components))
            converted.loss = out.loss  # the value exactly as the loss computed it
            return converted
        for key, term in out.terms.items():
            try:
                expected = count_units(batch, term.unit)
            except Exception as err:
                raise UserError(f"loss {self.name}: term {key!r}: cannot count its unit "
                                f"{unit_name(term.unit)!r} in the batch: {err}") from None
            got = float(term.count)
            if abs(got - expected) > 1e-6 * max(1.0, abs(expected)):
                raise UserError(
                    f"loss {self.name}: term {key!r} reports count {got:g} but its unit "
                    f"{unit_name(term.unit)!r} counts {expected:g} in the batch; the trainer normalises by "
                    "the unit's count, so count must be unit(batch)"
                )
        return out


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
