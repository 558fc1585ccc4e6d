"""Evaluation jobs: score a model on eval sets and write its results; evaluate a whole run.

Why one module: ``negtune eval`` (CLI), the trainer's epoch-end evaluation and
``negtune eval RUN_DIR`` must produce the same results file from the same inputs.

* ``evaluate_model(model, tokenizer, instances, ...) -> Results`` (nothing written unless
  ``out``/``scores_path`` are given).
* ``evaluate_recipe_eval(model, tokenizer, recipe, out_dir, name=...)``: the trainer's hook.
* ``evaluate_run(run_dir, ...)``: the base model and every checkpoint of a run, resumable.
"""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

from negtune.data.instances import Instance
from negtune.errors import UserError
from negtune.evaluation.metrics import compute_metrics
from negtune.evaluation.scoring import OptionScore, resolve_method, score_instances
from negtune.evaluation.sets import build_eval_sets, sets_digest
from negtune.evaluation.summaries import write_run_summary
from negtune.results import EvalSettings, Results, ScoringInfo
from negtune.tokenization import effective_max_length


def versions() -> dict[str, Optional[str]]:
    import importlib.metadata as md

    out: dict[str, Optional[str]] = {}
    for pkg in ("negtune", "torch", "transformers", "peft"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    return out


def score_rows(instances: Sequence[Instance], scores: Sequence[Sequence[OptionScore]]) -> Iterable[dict[str, Any]]:
    """One row per option for ``--scores``."""
    for inst, opts in zip(instances, scores):
        for j, (option, s) in enumerate(zip(inst.options, opts)):
            yield {
                "source": inst.meta.get("file", inst.task),
                "task": inst.task,
                "variant": inst.variant,
                "sample_id": inst.meta.get("sample_id", inst.source_id),
                "pair_id": inst.source_id,
                "option_index": j,
                "option": option,
                "gold": j in inst.gold,
                "loglik": s.loglik,
                "n_tokens": s.n_tokens,
            }


def evaluate_model(model: Any, tokenizer: Any, instances: Sequence[Instance], batch_size: int = 16,
                   tokenization: str = "joint", *, progress: bool = True, method: str = "auto",
                   max_length: Optional[int] = None, limit: Optional[int] = None,
                   info: Optional[dict[str, Any]] = None, out: Optional[str | Path] = None,
                   scores_path: Optional[str | Path] = None) -> Results:
    """Score ``instances`` and return their ``Results``.

    ``max_length``: the recipe's ``model.max_length`` (sequences are cut at the smaller of it
    and the model's limit, as in training; None: the model's limit). ``info`` fills the
    descriptive fields (model, adapter, checkpoint, label, run, loss, recipe_hash, step,
    epoch, inputs). ``limit`` is recorded in the settings (the caller applied it to
    ``instances``). ``out`` / ``scores_path`` are written atomically.
    """
    from negtune.io import write_jsonl

    if not instances:
        raise UserError("eval: nothing to evaluate (no instances)")
    start = time.perf_counter()
    scores = score_instances(model, tokenizer, instances, batch_size=batch_size, tokenization=tokenization,
                             progress=progress, method=method, max_length=max_length)
    elapsed = time.perf_counter() - start
    _refuse_non_finite(instances, scores, info or {})
    tasks, summary = compute_metrics(instances, scores)
    dtype = str(next(model.parameters()).dtype).replace("torch.", "")
    info = dict(info or {})
    info.setdefault("label", info.get("checkpoint") or info.get("model"))
    results = Results(
        tasks=tasks, summary=summary, tokenization=tokenization, versions=versions(),
        settings=EvalSettings(limit=limit, dtype=dtype, tokenization=tokenization, method=method,
                              max_length=max_length, sets_sha256=sets_digest(instances)),
        scoring=ScoringInfo(method=resolve_method(model, method), batch_size=batch_size, dtype=dtype,
                            seconds=round(elapsed, 3), n_instances=len(instances),
                            n_options=sum(len(i.options) for i in instances),
                            max_length=effective_max_length(model, tokenizer, max_length),
                            n_truncated=sum(any(s.truncated for s in opts) for opts in scores)),
        **info,
    )
    if scores_path is not None:
        write_jsonl(scores_path, score_rows(instances, scores))
    if out is not None:
        results.write(out)
    return results


def _refuse_non_finite(instances: Sequence[Instance], scores: Sequence[Sequence[OptionScore]],
                       info: dict[str, Any]) -> None:
    """An accuracy computed from NaN log-likelihoods is meaningless (NaN never wins an argmax
    comparison, so it looks like a confident pick): refuse instead of reporting it."""
    for inst, opts in zip(instances, scores):
        for j, s in enumerate(opts):
            if not math.isfinite(s.loglik):
                who = info.get("checkpoint") or info.get("adapter") or info.get("model") or "the model"
                raise UserError(f"{who}: scoring gave a non-finite log-likelihood ({s.loglik}) for {inst.task} item "
                                f"{inst.source_id} option {j}; its weights are probably NaN/inf; no accuracy reported")


def recipe_info(recipe: Any) -> dict[str, Any]:
    from negtune.config import recipe_hash

    return {"model": recipe.model.name_or_path, "loss": (recipe.loss or {}).get("name"),
            "recipe_hash": recipe_hash(recipe), "run": recipe.output_dir}


def evaluate_recipe_eval(model: Any, tokenizer: Any, recipe: Any, out_dir: str | Path, *,
                         name: str = "eval", checkpoint: Optional[str] = None,
                         instances: Optional[Sequence[Instance]] = None, progress: bool = False,
                         info: Optional[dict[str, Any]] = None) -> Results:
    """In-process evaluation for the trainer: the recipe's eval section on ``model`` as is
    (training mode is restored afterwards), written to ``out_dir/<name>.json``.

    Pass ``instances`` (from ``build_eval_sets(recipe)``) to build the sets once per run.
    """
    sets = list(instances) if instances is not None else build_eval_sets(recipe)
    meta = recipe_info(recipe)
    meta.update({"checkpoint": checkpoint or name, "label": name})
    meta.update(info or {})
    return evaluate_model(model, tokenizer, sets, batch_size=recipe.eval.batch_size,
                          tokenization=recipe.eval.tokenization, progress=progress, max_length=recipe.model.max_length,
                          limit=recipe.eval.limit, info=meta, out=Path(out_dir) / f"{name}.json")


# --------------------------------------------------------------------------- run directories


def is_done(path: Path) -> bool:
    """A results file that parses (a half-written one never exists: writes are atomic)."""
    if not path.is_file():
        return False
    try:
        Results.read(path)
    except UserError:
        return False
    return True


class _RunModels:
    """The model behind each checkpoint of one run: the base is loaded once, adapter
    checkpoints are swapped onto it (unmerged), full checkpoints are loaded one at a time."""

    def __init__(self, base_name: str, dtype: str):
        self.base_name, self.dtype = base_name, dtype
        self._base: Any = None
        self._peft: Any = None

    def base(self) -> Any:
        from negtune.models import load_causal_lm

        if self._base is None:
            self._base = load_causal_lm(self.base_name, dtype=self.dtype).eval()
        return self._base

    def adapter(self, name: str, adapter_dir: str) -> Any:
        from negtune.models import first_line, load_adapter

        if self._peft is None:
            self._peft = load_adapter(self.base(), adapter_dir, adapter_name=name, is_trainable=False)
        else:
            previous = self._peft.active_adapter
            try:
                self._peft.load_adapter(adapter_dir, adapter_name=name, is_trainable=False)
            except Exception as err:  # noqa: BLE001 - a damaged adapter directory
                raise UserError(f"adapter {adapter_dir}: cannot load it: {first_line(err)}") from None
            self._peft.set_adapter(name)
            self._peft.delete_adapter(previous)
        return self._peft.eval()

    def full(self, model_dir: str) -> Any:
        from negtune.models import load_causal_lm

        return load_causal_lm(model_dir, dtype=self.dtype).eval()


def evaluate_run(run_dir: str | Path, *, batch_size: Optional[int] = None, dtype: Optional[str] = None,
                 limit: Optional[int] = None, progress: bool = True, force: bool = False,
                 log: Callable[[str], None] = lambda s: print(s, file=sys.stderr)) -> dict[str, Any]:
    """Evaluate the base model and every complete checkpoint of a training run.

    Results go to ``RUN_DIR/eval/<base|step-N>.json``. A checkpoint whose results file exists
    with the same settings (``EvalSettings``: limit, dtype, tokenization, method, max length,
    the items themselves) is skipped, so a killed job resumes; one computed with other
    settings is refused (one line naming the difference) unless ``force`` replaces it. The
    evaluation holds ``RUN_DIR/eval``'s lock, so two evaluations of one run never both write.
    Returns {"evaluated": [...], "skipped": [...], "summary_csv": path, "summary_md": path}.
    """
    from negtune.config import load_recipe
    from negtune.io import claim_dir
    from negtune.locking import DirLock
    from negtune.models import load_tokenizer
    from negtune.training.checkpoint import list_checkpoints
    from negtune.training.state import TrainerState

    run = Path(run_dir)
    if not run.is_dir():
        raise UserError(f"{run}: no such run directory")
    if not (run / "recipe.resolved.yaml").is_file():
        raise UserError(f"{run}: not a run directory (no recipe.resolved.yaml)")
    recipe = load_recipe(run / "recipe.resolved.yaml")
    eval_dir = claim_dir(run / "eval", "eval", "run's eval directory")
    with DirLock(eval_dir, "evaluation"):
        checkpoints = [(d.name, d, TrainerState.read(d)) for d in list_checkpoints(run)]
        instances = build_eval_sets(recipe, limit)
        limit = limit if limit is not None else recipe.eval.limit
        dtype = dtype or recipe.model.dtype
        wanted = EvalSettings(limit=limit, dtype=dtype, tokenization=recipe.eval.tokenization, method="auto",
                              max_length=recipe.model.max_length, sets_sha256=sets_digest(instances))
        todo, skipped = [], []
        for name, path, state in [("base", None, None)] + checkpoints:
            out = eval_dir / f"{name}.json"
            if force or not is_done(out):
                todo.append((name, path, state))
                continue
            changed = wanted.differences(Results.read(out).settings)
            if changed:
                raise UserError(f"{out}: computed with other settings ({'; '.join(changed)}); pass --force to "
                                "replace it, or evaluate into another run directory")
            skipped.append(name)
        # The trainer records the resolved base (a named offline source resolves to a cache dir).
        base_name = checkpoints[0][2].base_model if checkpoints else recipe.model.name_or_path
        models = _RunModels(base_name, dtype)
        tokenizer = load_tokenizer(base_name) if todo else None
        for name, path, state in todo:  # the base comes first, before any adapter wraps it
            log(f"eval {run.name}: {name}")
            info = dict(recipe_info(recipe), run=str(run), checkpoint=name, label=name, model=base_name,
                        step=state.step if state else None, epoch=state.epoch if state else None)
            if path is None or state is None:
                model = models.base()
            elif state.kind == "adapter":
                info["adapter"] = str(path / "model")
                model = models.adapter(name, info["adapter"])
            else:
                info["model"] = str(path / "model")
                model = models.full(info["model"])
            evaluate_model(model, tokenizer, instances, batch_size or recipe.eval.batch_size,
                           recipe.eval.tokenization, progress=progress, max_length=recipe.model.max_length,
                           limit=limit, info=info, out=eval_dir / f"{name}.json")
            del model
        csv_path, md_path = write_run_summary(run)
    return {"evaluated": [name for name, _, _ in todo], "skipped": skipped, "summary_csv": str(csv_path),
            "summary_md": str(md_path)}
