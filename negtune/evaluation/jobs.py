"""Evaluation jobs: score a model on eval sets and write its results; evaluate a whole run.

Why one module: ``negtune eval`` (CLI), the trainer's epoch-end evaluation and
``negtune eval RUN_DIR`` must produce the same results file from the same inputs.

* ``evaluate_model(model, tokenizer, instances, ...) -> Results`` (nothing written unless
  ``out``/``scores_path`` are given).
* ``evaluate_recipe_eval(model, tokenizer, recipe, out_dir, name=...)``: the trainer's hook.
* ``evaluate_run(run_dir, ...)``: the base model and every checkpoint of a run, resumable.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

from negtune.data.instances import Instance
from negtune.errors import UserError
from negtune.evaluation.metrics import compute_metrics
from negtune.evaluation.scoring import OptionScore, resolve_method, score_instances
from negtune.evaluation.sets import build_eval_sets
from negtune.evaluation.summaries import write_run_summary
from negtune.evaluation import stats
from negtune.results import IntervalInfo, Results, ScoringInfo
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
                   max_length: Optional[int] = None, info: Optional[dict[str, Any]] = None,
                   out: Optional[str | Path] = None, scores_path: Optional[str | Path] = None) -> Results:
    """Score ``instances`` and return their ``Results``.

    ``max_length``: the recipe's ``model.max_length`` (sequences are cut at the smaller of it
    and the model's limit, as in training; None: the model's limit). ``info`` fills the
    descriptive fields (model, adapter, checkpoint, label, run, loss, recipe_hash, step,
    epoch, inputs). ``out`` / ``scores_path`` are written atomically.
    """
    from negtune.io import write_jsonl

    if not instances:
        raise UserError("eval: nothing to evaluate (no instances)")
    start = time.perf_counter()
    scores = score_instances(model, tokenizer, instances, batch_size=batch_size, tokenization=tokenization,
                             progress=progress, method=method, max_length=max_length)
    elapsed = time.perf_counter() - start
    tasks, summary = compute_metrics(instances, scores)
    info = dict(info or {})
    info.setdefault("label", info.get("checkpoint") or info.get("model"))
    results = Results(
        tasks=tasks, summary=summary, tokenization=tokenization, versions=versions(),
        scoring=ScoringInfo(method=resolve_method(model, method), batch_size=batch_size,
                            dtype=str(next(model.parameters()).dtype).replace("torch.", ""),
                            seconds=round(elapsed, 3), n_instances=len(instances),
                            n_options=sum(len(i.options) for i in instances),
                            max_length=effective_max_length(model, tokenizer, max_length),
                            n_truncated=sum(any(s.truncated for s in opts) for opts in scores)),
        intervals=IntervalInfo(level=stats.LEVEL, resamples=stats.RESAMPLES, seed=stats.SEED),
        **info,
    )
    if scores_path is not None:
        write_jsonl(scores_path, score_rows(instances, scores))
    if out is not None:
        results.write(out)
    return results


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
                          tokenization=recipe.eval.tokenization, progress=progress,
                          max_length=recipe.model.max_length, info=meta, out=Path(out_dir) / f"{name}.json")


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


def evaluate_run(run_dir: str | Path, *, batch_size: Optional[int] = None, dtype: Optional[str] = None,
                 limit: Optional[int] = None, progress: bool = True, force: bool = False,
                 log: Callable[[str], None] = lambda s: print(s, file=sys.stderr)) -> dict[str, Any]:
    """Evaluate the base model and every complete checkpoint of a training run.

    Results go to ``RUN_DIR/eval/<base|step-N>.json``; a checkpoint whose results file
    exists is skipped (so a killed job resumes), unless ``force``. The base model is loaded
    once; adapter checkpoints are swapped on it; full checkpoints are loaded one at a time.
    Returns {"evaluated": [...], "skipped": [...], "summary_csv": path, "summary_md": path}.
    """
    from negtune.config import load_recipe
    from negtune.models import load_causal_lm, load_tokenizer
    from negtune.training.checkpoint import list_checkpoints
    from negtune.training.state import TrainerState

    run = Path(run_dir)
    recipe_path = run / "recipe.resolved.yaml"
    if not run.is_dir():
        raise UserError(f"{run}: no such run directory")
    if not recipe_path.is_file():
        raise UserError(f"{run}: not a run directory (no recipe.resolved.yaml)")
    recipe = load_recipe(recipe_path)
    eval_dir = run / "eval"
    checkpoints = [(d.name, d, TrainerState.read(d)) for d in list_checkpoints(run)]
    todo: list[tuple[str, Optional[Path], Optional[TrainerState]]] = []
    skipped = []
    for name, path, state in [("base", None, None)] + checkpoints:
        if not force and is_done(eval_dir / f"{name}.json"):
            skipped.append(name)
        else:
            todo.append((name, path, state))
    evaluated: list[str] = []
    if todo:
        instances = build_eval_sets(recipe, limit)
        dtype = dtype or recipe.model.dtype
        bs = batch_size or recipe.eval.batch_size
        # The trainer records the resolved base (a named offline source resolves to a cache dir).
        base_name = checkpoints[0][2].base_model if checkpoints else recipe.model.name_or_path
        base_info = dict(recipe_info(recipe), run=str(run))
        tokenizer = load_tokenizer(base_name)
        base = None
        peft_model = None

        def get_base() -> Any:
            nonlocal base
            if base is None:
                base = load_causal_lm(base_name, dtype=dtype)
                base.eval()
            return base

        for name, path, state in todo:
            info = dict(base_info, checkpoint=name, label=name, step=state.step if state else None,
                        epoch=state.epoch if state else None)
            out = eval_dir / f"{name}.json"
            log(f"eval {run.name}: {name}")
            if path is None or state is None:  # the base model comes first, before any adapter wraps it
                info["model"] = base_name
                evaluate_model(get_base(), tokenizer, instances, bs, recipe.eval.tokenization,
                               progress=progress, max_length=recipe.model.max_length, info=info, out=out)
            elif state.kind == "adapter":
                from peft import PeftModel

                adapter = str(path / "model")
                info.update(model=base_name, adapter=adapter)
                if peft_model is None:
                    peft_model = PeftModel.from_pretrained(get_base(), adapter, adapter_name=name,
                                                           is_trainable=False)
                else:
                    previous = peft_model.active_adapter
                    peft_model.load_adapter(adapter, adapter_name=name, is_trainable=False)
                    peft_model.set_adapter(name)
                    peft_model.delete_adapter(previous)
                peft_model.eval()
                evaluate_model(peft_model, tokenizer, instances, bs, recipe.eval.tokenization,
                               progress=progress, max_length=recipe.model.max_length, info=info, out=out)
            else:
                info["model"] = str(path / "model")
                full = load_causal_lm(str(path / "model"), dtype=dtype)
                full.eval()
                evaluate_model(full, tokenizer, instances, bs, recipe.eval.tokenization,
                               progress=progress, max_length=recipe.model.max_length, info=info, out=out)
                del full
            evaluated.append(name)
    csv_path, md_path = write_run_summary(run)
    return {"evaluated": evaluated, "skipped": skipped, "summary_csv": str(csv_path), "summary_md": str(md_path)}
