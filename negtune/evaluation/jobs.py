"""Evaluation jobs: score a model on eval sets and write its results; evaluate a whole run.

Why one module: ``negtune eval`` (CLI), the trainer's epoch-end evaluation and
``negtune eval RUN_DIR`` must produce the same results file from the same inputs.

* ``evaluate_model(model, tokenizer, instances, ...) -> Results`` (nothing written unless
  ``out``/``scores_path`` are given); ``fmt`` (chat template), ``fewshot`` (recorded settings of
  the demonstrations already attached to the instances), ``procs`` (items split across processes).
* ``evaluate_recipe_eval(model, tokenizer, recipe, out_dir, name=...)``: the trainer's hook
  (always one process: the trainer calls it on its main process only).
* ``evaluate_run(run_dir, ..., procs=...)``: the base model and every checkpoint of a run,
  resumable; across processes whole checkpoints first, the rest by items.
"""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

from negtune.data.instances import Instance
from negtune.errors import UserError
from negtune.evaluation import stats
from negtune.evaluation.distributed import Processes, merge_scores, split_checkpoints
from negtune.evaluation.fewshot import describe as describe_fewshot
from negtune.evaluation.metrics import compute_metrics
from negtune.evaluation.prompting import PromptFormat
from negtune.evaluation.scoring import OptionScore, resolve_method, score_instances
from negtune.evaluation.seq2seq import is_seq2seq
from negtune.evaluation.sets import build_eval_sets, sets_digest
from negtune.evaluation.summaries import write_run_summary
from negtune.results import EvalSettings, IntervalInfo, PromptInfo, Results, ScoringInfo
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


def count_parameters(model: Any) -> int:
    """Parameters of the model itself (tied weights once, LoRA adapter weights not counted)."""
    return sum(p.numel() for name, p in model.named_parameters() if "lora_" not in name)


def prompt_info(fmt: PromptFormat, fewshot: Any, instances: Sequence[Instance],
                scores: Sequence[Sequence[OptionScore]]) -> PromptInfo:
    k = fewshot.k if fewshot is not None else 0
    given = [len(i.meta.get("demos") or []) for i in instances]
    used = [opts[0].n_demos for opts in scores]
    return PromptInfo(chat_template=fmt.chat_template, system_prompt=fmt.system_prompt, fewshot_k=k,
                      fewshot_sampling=fewshot.sampling if k else None, fewshot_seed=fewshot.seed if k else None,
                      fewshot_source=describe_fewshot(fewshot) if k else None,
                      n_fewshot_reduced=sum(u < g for u, g in zip(used, given)),
                      min_fewshot_used=min(used) if k else None)


def evaluate_model(model: Any, tokenizer: Any, instances: Sequence[Instance], batch_size: int = 16,
                   tokenization: str = "joint", *, progress: bool = True, method: str = "auto",
                   max_length: Optional[int] = None, limit: Optional[int] = None,
                   info: Optional[dict[str, Any]] = None, out: Optional[str | Path] = None,
                   scores_path: Optional[str | Path] = None, fmt: Optional[PromptFormat] = None,
                   fewshot: Any = None, procs: Optional[Processes] = None) -> Results:
    """Score ``instances`` and return their ``Results``.

    ``max_length``: the recipe's ``model.max_length`` (sequences are cut at the smaller of it
    and the model's limit, as in training; None: the model's limit). ``info`` fills the
    descriptive fields (model, adapter, checkpoint, label, run, loss, recipe_hash, step,
    epoch, inputs). ``fmt``: chat template and system prompt; ``fewshot``: the
    ``eval.fewshot`` settings the instances' demonstrations were attached with (recorded).
    ``procs``: split the items across processes (every process returns the full results;
    only rank 0 writes). ``limit`` is recorded in the settings (the caller applied it to
    ``instances``). ``out`` / ``scores_path`` are written atomically.
    """
    from negtune.io import write_jsonl

    if not instances:
        raise UserError("eval: nothing to evaluate (no instances)")
    fmt = fmt or PromptFormat()
    procs = procs or Processes()
    start = time.perf_counter()
    scores = score_instances(model, tokenizer, instances, batch_size=batch_size, tokenization=tokenization,
                             progress=progress and procs.is_main, method=method, max_length=max_length, fmt=fmt,
                             shard=procs.shard)
    if procs.world > 1:
        mine = sum(1 for opts in scores if opts and opts[0] is not None)
        print(f"eval: process {procs.rank + 1}/{procs.world} scored {mine} of {len(instances)} items", file=sys.stderr)
        scores = merge_scores(procs.gather(scores))
    elapsed = time.perf_counter() - start
    _refuse_non_finite(instances, scores, info or {})
    tasks, summary = compute_metrics(instances, scores)
    dtype = str(next(model.parameters()).dtype).replace("torch.", "")
    info = dict(info or {})
    info.setdefault("label", info.get("checkpoint") or info.get("model"))
    results = Results(
        tasks=tasks, summary=summary, tokenization=tokenization, versions=versions(),
        settings=EvalSettings(limit=limit, dtype=dtype, tokenization=tokenization, method=method,
                              max_length=max_length, prompting=prompting_request(fmt, fewshot),
                              sets_sha256=sets_digest(instances)),
        scoring=ScoringInfo(method=resolve_method(model, method), batch_size=batch_size, dtype=dtype,
                            seconds=round(elapsed, 3), n_instances=len(instances),
                            n_options=sum(len(i.options) for i in instances),
                            max_length=effective_max_length(model, tokenizer, max_length),
                            n_truncated=sum(any(s.truncated for s in opts) for opts in scores),
                            architecture="seq2seq" if is_seq2seq(model) else "causal", processes=procs.world),
        n_params=count_parameters(model), model_type=getattr(getattr(model, "config", None), "model_type", None),
        prompting=prompt_info(fmt, fewshot, instances, scores),
        intervals=IntervalInfo(level=stats.LEVEL, resamples=stats.RESAMPLES, seed=stats.SEED),
        **info,
    )
    if procs.is_main:
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


def prompting_request(fmt: Optional[PromptFormat], fewshot: Any) -> str:
    """The prompting asked for, as one comparable string (part of ``EvalSettings``)."""
    fmt = fmt or PromptFormat()
    k = fewshot.k if fewshot is not None else 0
    shots = f"{k}-shot" + (f" {fewshot.sampling} seed {fewshot.seed} from {describe_fewshot(fewshot)}" if k else "")
    return f"chat template {'on' if fmt.chat_template else 'off'}, system prompt {fmt.system_prompt!r}, {shots}"


def prompt_format(eval_cfg: Any) -> PromptFormat:
    """The context format an ``EvalConfig`` asks for (chat template, system prompt)."""
    return PromptFormat(chat_template=eval_cfg.chat_template, system_prompt=eval_cfg.system_prompt)


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
                          max_length=recipe.model.max_length, limit=recipe.eval.limit, info=meta,
                          out=Path(out_dir) / f"{name}.json", fmt=prompt_format(recipe.eval),
                          fewshot=recipe.eval.fewshot)


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
    """The models of one run on this process: the base loaded once, adapter checkpoints swapped
    onto it (the previous adapter deleted), full checkpoints loaded one at a time."""

    def __init__(self, base_name: str, dtype: str, device: Any = None):
        from negtune.models import load_tokenizer

        self.base_name, self.dtype, self.device = base_name, dtype, device
        self.tokenizer = load_tokenizer(base_name)
        self.base: Any = None
        self.peft: Any = None

    def _load(self, name: str) -> Any:
        from negtune.models import load_causal_lm

        model = load_causal_lm(name, dtype=self.dtype)
        if self.device is not None:
            model.to(self.device)
        return model.eval()

    def get_base(self) -> Any:
        if self.base is None:
            self.base = self._load(self.base_name)
        return self.base

    def model_for(self, path: Optional[Path], state: Any, info: dict[str, Any]) -> Any:
        """The model of a checkpoint (None: the base, which must come before any adapter wraps it)."""
        if path is None or state is None:
            info["model"] = self.base_name
            return self.get_base()
        if state.kind == "adapter":
            from negtune.models import first_line, load_adapter
            from negtune.peft_calls import peft_calls

            adapter = str(path / "model")
            info.update(model=self.base_name, adapter=adapter)
            with peft_calls():  # no bitsandbytes import for a plain base model
                if self.peft is None:
                    self.peft = load_adapter(self.get_base(), adapter, adapter_name=path.name, is_trainable=False)
                else:
                    previous = self.peft.active_adapter
                    try:
                        self.peft.load_adapter(adapter, adapter_name=path.name, is_trainable=False)
                    except Exception as err:  # noqa: BLE001 - a damaged adapter directory
                        raise UserError(f"adapter {adapter}: cannot load it: {first_line(err)}") from None
                    self.peft.set_adapter(path.name)
                    self.peft.delete_adapter(previous)
            return self.peft.eval()
        info["model"] = str(path / "model")
        return self._load(str(path / "model"))


def evaluate_run(run_dir: str | Path, *, batch_size: Optional[int] = None, dtype: Optional[str] = None,
                 limit: Optional[int] = None, progress: bool = True, force: bool = False,
                 log: Callable[[str], None] = lambda s: print(s, file=sys.stderr),
                 procs: Optional[Processes] = None) -> dict[str, Any]:
    """Evaluate the base model and every complete checkpoint of a training run.

    Results go to ``RUN_DIR/eval/<base|step-N>.json``. A checkpoint whose results file exists
    with the same settings (``EvalSettings``: limit, dtype, tokenization, method, max length,
    prompting, the items themselves) is skipped, so a killed job resumes; one computed with
    other settings is refused (one line naming the difference) unless ``force`` replaces it.
    Rank 0 holds ``RUN_DIR/eval``'s lock, so two evaluations of one run never both write. The
    base model is loaded once; adapter checkpoints are swapped on it; full checkpoints are
    loaded one at a time. With ``procs`` (several processes), whole checkpoints are split round
    robin and the remainder split by items (``negtune.evaluation.distributed``); rank 0 writes
    the summary. Returns {"evaluated": [...], "skipped": [...], "summary_csv", "summary_md"}.
    """
    from negtune.config import load_recipe
    from negtune.io import claim_dir
    from negtune.locking import DirLock
    from negtune.training.checkpoint import list_checkpoints
    from negtune.training.state import TrainerState

    procs = procs or Processes()
    run = Path(run_dir)
    if not run.is_dir():
        raise UserError(f"{run}: no such run directory")
    if not (run / "recipe.resolved.yaml").is_file():
        raise UserError(f"{run}: not a run directory (no recipe.resolved.yaml)")
    recipe = load_recipe(run / "recipe.resolved.yaml")
    eval_dir = run / "eval"
    lock = procs.all_ok(lambda: DirLock(claim_dir(eval_dir, "eval", "run's eval directory"), "evaluation").acquire()
                        if procs.is_main else None)
    try:
        checkpoints = [(d.name, d, TrainerState.read(d)) for d in list_checkpoints(run)]
        entries: dict[str, tuple[Optional[Path], Optional[TrainerState]]] = {"base": (None, None)}
        entries.update({name: (path, state) for name, path, state in checkpoints})
        instances = build_eval_sets(recipe, limit)
        limit = limit if limit is not None else recipe.eval.limit
        dtype = dtype or recipe.model.dtype
        fmt, fewshot = prompt_format(recipe.eval), recipe.eval.fewshot
        wanted = EvalSettings(limit=limit, dtype=dtype, tokenization=recipe.eval.tokenization, method="auto",
                              max_length=recipe.model.max_length, prompting=prompting_request(fmt, fewshot),
                              sets_sha256=sets_digest(instances))

        def to_do() -> list[str]:  # rank 0's view of what is done, before anyone writes
            names = []
            for name in entries:
                out = eval_dir / f"{name}.json"
                if force or not is_done(out):
                    names.append(name)
                elif changed := wanted.differences(Results.read(out).settings):
                    raise UserError(f"{out}: computed with other settings ({'; '.join(changed)}); pass --force "
                                    "to replace it, or evaluate into another run directory")
            return names

        todo = procs.gather(procs.all_ok(lambda: to_do() if procs.is_main else None))[0]
        skipped = [name for name in entries if name not in todo]
        if todo:
            bs = batch_size or recipe.eval.batch_size
            # The trainer records the resolved base (a named offline source resolves to a cache dir).
            base_name = checkpoints[0][2].base_model if checkpoints else recipe.model.name_or_path
            base_info = dict(recipe_info(recipe), run=str(run))
            models = _RunModels(base_name, dtype, procs.device)

            def evaluate_one(name: str, on: Processes) -> None:
                path, state = entries[name]
                info = dict(base_info, checkpoint=name, label=name, step=state.step if state else None,
                            epoch=state.epoch if state else None)
                where = f" (process {procs.rank + 1}/{procs.world})" if procs.world > 1 else ""
                log(f"eval {run.name}: {name}{where}")
                model = models.model_for(path, state, info)
                evaluate_model(model, models.tokenizer, instances, bs, recipe.eval.tokenization, progress=progress,
                               max_length=recipe.model.max_length, limit=limit, info=info,
                               out=eval_dir / f"{name}.json", fmt=fmt, fewshot=fewshot, procs=on)

            own, shared = split_checkpoints(todo, procs.world)
            procs.all_ok(lambda: [evaluate_one(name, Processes()) for name in own[procs.rank]])
            for name in shared:
                evaluate_one(name, procs)
        procs.barrier()
        csv_path, md_path = eval_dir / "summary.csv", eval_dir / "summary.md"
        if procs.is_main:
            csv_path, md_path = write_run_summary(run)
    finally:
        if lock is not None:
            lock.release()
    return {"evaluated": todo, "skipped": skipped, "summary_csv": str(csv_path), "summary_md": str(md_path)}
