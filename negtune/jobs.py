"""Evaluation jobs: build eval sets, score them, write results; evaluate a whole training run.

Why one module: ``negtune eval`` (CLI), the trainer's epoch-end evaluation and
``negtune eval RUN_DIR`` must produce the same results JSON from the same inputs.

Public functions:

* ``csv_set_name(path)``, ``load_csv_set(name, files, pair_by, limit)``: the paper's CSVs.
* ``build_eval_sets(recipe, limit)``: registry tasks (recipe ``eval`` section) + CSV sets.
* ``evaluate_model(model, tokenizer, instances, ...) -> results dict`` (no file written
  unless ``out``/``scores_path`` given).
* ``evaluate_recipe_eval(model, tokenizer, recipe, out_dir, name=...)``: the trainer's hook.
* ``evaluate_run(run_dir, ...)``: base model + every checkpoint, resumable.
"""
from __future__ import annotations

import csv
import io
import json
import re
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

from negtune.data.instances import Instance
from negtune.errors import UserError

PAIR_BY = ("sample_id", "prompt")
_NEG = re.compile(r"[_\-. ]?negat(?:ion|ed)", re.IGNORECASE)
_SIZE = re.compile(r"[_\-]\d+$")


# --------------------------------------------------------------------------- paper CSV sets


def csv_set_name(path: str | Path) -> str:
    """``piqa_generate_negation_300.csv`` -> ``piqa_generate`` (stem minus negation and size)."""
    stem = Path(path).stem
    name = _SIZE.sub("", _NEG.sub("", stem))
    return name or stem


def _prompt_bodies(instances: Sequence[Instance]) -> list[str]:
    """Each prompt minus the prefix and suffix shared by every prompt of the file.

    That shared part is the instruction template ("... correct answer to the question \\"",
    "\\""), which is what differs between an original and a negated file.
    """
    prompts = [i.prompt for i in instances]
    if len(prompts) == 1:
        return [p.strip() for p in prompts]
    first, last = min(prompts), max(prompts)
    n = 0
    while n < min(len(first), len(last)) and first[n] == last[n]:
        n += 1
    rev = [p[n:][::-1] for p in prompts]
    rf, rl = min(rev), max(rev)
    m = 0
    while m < min(len(rf), len(rl)) and rf[m] == rl[m]:
        m += 1
    return [p[n: len(p) - m].strip() for p in prompts]


def _pair(ref: list[Instance], ref_file: str, other: list[Instance], other_file: str,
          pair_by: str) -> list[Instance]:
    """Give ``other``'s items the source_id of their partner in ``ref``; check both sides match."""
    hint = "" if pair_by == "prompt" else "; if the files number items differently, use --pair-by prompt"
    if pair_by == "sample_id":
        keys_ref = [i.source_id for i in ref]
        keys_other = [i.source_id for i in other]
        what = "sample_ids"
    else:
        keys_ref = _prompt_bodies(ref)
        keys_other = _prompt_bodies(other)
        what = "questions (prompt minus the shared instruction)"
        for keys, f in ((keys_ref, ref_file), (keys_other, other_file)):
            seen: set[str] = set()
            for k in keys:
                if k in seen:
                    raise UserError(f"{f}: --pair-by prompt: question {k[:50]!r} occurs twice; cannot pair")
                seen.add(k)
    idx_ref = {k: i for k, i in zip(keys_ref, ref)}
    idx_other = {k: i for k, i in zip(keys_other, other)}
    only_ref = [k for k in keys_ref if k not in idx_other]
    only_other = [k for k in keys_other if k not in idx_ref]
    if only_ref or only_other:
        example = (only_other or only_ref)[0]
        raise UserError(
            f"{other_file}: {what} do not match {ref_file} ({len(only_ref)} only in the first, "
            f"{len(only_other)} only in the second, e.g. {example[:50]!r}){hint}"
        )
    out = []
    for k, inst in zip(keys_other, other):
        partner = idx_ref[k]
        if sorted(partner.options) != sorted(inst.options):
            raise UserError(
                f"{other_file}: item {inst.source_id}: options differ from {ref_file} item "
                f"{partner.source_id}; the files do not hold the same items{hint}"
            )
        meta = dict(inst.meta, sample_id=inst.source_id)
        out.append(replace(inst, source_id=partner.source_id, meta=meta))
    return out


def load_csv_set(name: str, files: dict[str, str], pair_by: str = "sample_id",
                 limit: Optional[int] = None) -> list[Instance]:
    """Instances of one paper-format set: ``files`` maps variant -> CSV path.

    Every file is paired against the original one (or the first given) by ``pair_by``;
    ``limit`` keeps the first N items of that reference file and their partners.
    """
    from negtune.data.paper_csv import read_paper_csv

    if pair_by not in PAIR_BY:
        raise UserError(f"pair-by {pair_by!r}: use sample_id or prompt")
    if not files:
        raise UserError(f"csv set {name}: no files")
    loaded: dict[str, list[Instance]] = {}
    for variant, path in files.items():
        rows = read_paper_csv(path, variant=variant, task=name)
        loaded[variant] = [replace(i, meta=dict(i.meta, file=str(path), sample_id=i.source_id)) for i in rows]
    ref_variant = "original" if "original" in loaded else next(iter(loaded))
    ref = loaded[ref_variant]
    keep: Optional[set[str]] = None
    if limit is not None:
        keep = {i.source_id for i in ref[:limit]}
    out: list[Instance] = []
    for variant, rows in loaded.items():
        if variant != ref_variant:
            rows = _pair(ref, files[ref_variant], rows, files[variant], pair_by)
        if keep is not None:
            rows = [i for i in rows if i.source_id in keep]
        out.extend(rows)
    return out


def parse_csv_args(specs: Sequence[str], pair_by: str = "sample_id") -> list[tuple[str, dict[str, str], str]]:
    """``[VARIANT=]FILE`` strings -> [(set name, {variant: file}, pair_by)] in first-seen order."""
    from negtune.data.paper_csv import guess_variant

    sets: dict[str, dict[str, str]] = {}
    for spec in specs:
        variant, sep, path = spec.partition("=")
        if not sep:
            variant, path = "", spec
        if not path:
            raise UserError(f"--csv {spec!r}: expected [VARIANT=]FILE")
        if not Path(path).is_file():
            raise UserError(f"{path}: file not found")
        variant = variant or guess_variant(path)
        if variant not in ("original", "negated", "instruction_free"):
            raise UserError(f"--csv {spec!r}: unknown variant {variant!r} (original, negated, instruction_free)")
        name = csv_set_name(path)
        files = sets.setdefault(name, {})
        if variant in files:
            raise UserError(f"--csv {path}: set {name!r} already has a {variant} file ({files[variant]})")
        files[variant] = path
    return [(name, files, pair_by) for name, files in sets.items()]


# --------------------------------------------------------------------------- eval sets


def _limit_per_task(instances: list[Instance], limit: Optional[int]) -> list[Instance]:
    if limit is None:
        return instances
    kept: dict[str, list[str]] = {}
    allowed: set[tuple[str, str]] = set()
    for inst in instances:
        ids = kept.setdefault(inst.task, [])
        if inst.source_id not in ids and len(ids) < limit:
            ids.append(inst.source_id)
            allowed.add(inst.pair_key)
    return [i for i in instances if i.pair_key in allowed]


def build_eval_sets(recipe: Any, limit: Optional[int] = None) -> list[Instance]:
    """All instances the recipe's ``eval`` section asks for (registry tasks, then CSV sets)."""
    cfg = recipe.eval
    limit = limit if limit is not None else cfg.limit
    out: list[Instance] = []
    if cfg.tasks:
        from negtune.data.build import build_eval_instances

        out += _limit_per_task(list(build_eval_instances(cfg, recipe.seed, recipe.data.cache_dir)), limit)
    names = set(i.task for i in out)
    for k, pair in enumerate(cfg.csv):
        files = dict(pair.files)
        name = pair.name or csv_set_name(next(iter(files.values())))
        if name in names:
            raise UserError(f"{recipe.source}: eval.csv[{k}].name: {name!r} is already used; give a distinct name")
        names.add(name)
        out += load_csv_set(name, files, getattr(pair, "pair_by", "sample_id"), limit)
    if not out:
        raise UserError(f"{recipe.source}: eval: names no tasks and no csv sets to evaluate")
    return out


# --------------------------------------------------------------------------- evaluation


def versions() -> dict[str, Optional[str]]:
    import importlib.metadata as md

    out: dict[str, Optional[str]] = {}
    for pkg in ("negtune", "torch", "transformers", "peft"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    return out


def score_rows(instances: Sequence[Instance], scores: Sequence[Sequence[Any]]) -> Iterable[dict[str, Any]]:
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


def evaluate_model(model: Any, tokenizer: Any, instances: Sequence[Instance] | dict[str, Sequence[Instance]],
                   batch_size: int = 16,
                   tokenization: str = "joint", *, progress: bool = True, method: str = "auto",
                   info: Optional[dict[str, Any]] = None, out: Optional[str | Path] = None,
                   scores_path: Optional[str | Path] = None) -> dict[str, Any]:
    """Score ``instances`` and return the results dict (schema: notes/CONTRACT.md).

    ``info`` fills the descriptive keys (model, adapter, checkpoint, label, run, loss,
    recipe_hash). ``out`` / ``scores_path`` are written atomically when given.
    """
    from negtune.io import write_json, write_jsonl
    from negtune.metrics import compute_metrics
    from negtune.scoring import resolve_method, score_instances

    if isinstance(instances, dict):  # {set name: instances} -> one list; names come from Instance.task
        instances = [i for rows in instances.values() for i in rows]
    if not instances:
        raise UserError("eval: nothing to evaluate (no instances)")
    start = time.perf_counter()
    scores = score_instances(model, tokenizer, instances, batch_size=batch_size,
                             tokenization=tokenization, progress=progress, method=method)
    elapsed = time.perf_counter() - start
    info = dict(info or {})
    results: dict[str, Any] = {
        "model": info.get("model"),
        "adapter": info.get("adapter"),
        "checkpoint": info.get("checkpoint"),
        "label": info.get("label") or info.get("checkpoint") or info.get("model"),
        "run": info.get("run"),
        "loss": info.get("loss"),
        "recipe_hash": info.get("recipe_hash"),
        "tokenization": tokenization,
        "versions": versions(),
        "scoring": {"method": resolve_method(model, method), "batch_size": batch_size,
                    "dtype": str(next(model.parameters()).dtype).replace("torch.", ""),
                    "seconds": round(elapsed, 3), "n_instances": len(instances),
                    "n_options": sum(len(i.options) for i in instances)},
    }
    for k, v in info.items():
        results.setdefault(k, v)
    results.update(compute_metrics(instances, scores))
    if scores_path is not None:
        write_jsonl(scores_path, score_rows(instances, scores))
    if out is not None:
        write_json(out, results)
    return results


def recipe_info(recipe: Any) -> dict[str, Any]:
    from negtune.config import recipe_hash

    return {"model": recipe.model.name_or_path, "loss": (recipe.loss or {}).get("name"),
            "recipe_hash": recipe_hash(recipe), "run": recipe.output_dir}


def evaluate_recipe_eval(model: Any, tokenizer: Any, recipe: Any, out_dir: str | Path, *,
                         name: str = "eval", checkpoint: Optional[str] = None,
                         instances: Optional[Sequence[Instance]] = None, progress: bool = False,
                         info: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """In-process evaluation for the trainer: the recipe's eval section on ``model`` as is
    (training mode is restored afterwards), written to ``out_dir/<name>.json``.

    Pass ``instances`` (from ``build_eval_sets(recipe)``) to build the sets once per run.
    """
    sets = list(instances) if instances is not None else build_eval_sets(recipe)
    meta = recipe_info(recipe)
    meta.update({"checkpoint": checkpoint or name, "label": name})
    meta.update(info or {})
    return evaluate_model(model, tokenizer, sets, batch_size=recipe.eval.batch_size,
                          tokenization=recipe.eval.tokenization, progress=progress, info=meta,
                          out=Path(out_dir) / f"{name}.json")


# --------------------------------------------------------------------------- run directories


def _checkpoints(run_dir: Path) -> list[tuple[str, Path, dict[str, Any]]]:
    """The run's complete checkpoints (``negtune.checkpoint``), oldest first, with their state."""
    from negtune.checkpoint import STATE_FILE, list_checkpoints, read_state

    found = []
    for d in list_checkpoints(run_dir):
        try:
            state = read_state(d)
        except (OSError, json.JSONDecodeError):
            raise UserError(f"{d / STATE_FILE}: unreadable trainer_state.json") from None
        kind = state.get("kind")
        if kind not in ("full", "adapter"):
            raise UserError(f"{d / STATE_FILE}: kind: expected 'full' or 'adapter', got {kind!r}")
        found.append((d.name, d, state))
    return found


def _done(path: Path) -> bool:
    if not path.is_file():
        return False
    try:
        return "tasks" in json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return False


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

    run = Path(run_dir)
    recipe_path = run / "recipe.resolved.yaml"
    if not run.is_dir():
        raise UserError(f"{run}: no such run directory")
    if not recipe_path.is_file():
        raise UserError(f"{run}: not a run directory (no recipe.resolved.yaml)")
    recipe = load_recipe(recipe_path)
    eval_dir = run / "eval"
    checkpoints = _checkpoints(run)
    todo: list[tuple[str, Optional[Path], dict[str, Any]]] = []
    skipped = []
    for name, path, state in [("base", None, {})] + checkpoints:
        if not force and _done(eval_dir / f"{name}.json"):
            skipped.append(name)
        else:
            todo.append((name, path, state))
    evaluated: list[str] = []
    if todo:
        instances = build_eval_sets(recipe, limit)
        dtype = dtype or recipe.model.dtype
        bs = batch_size or recipe.eval.batch_size
        # The trainer records the resolved base (a named offline source resolves to a cache dir).
        stated = [st.get("base_model") for _, _, st in checkpoints if st.get("base_model")]
        base_name = stated[0] if stated else recipe.model.name_or_path
        base_info = recipe_info(recipe)
        base_info["run"] = str(run)
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
            info = dict(base_info, checkpoint=name, label=name, step=state.get("step"), epoch=state.get("epoch"))
            out = eval_dir / f"{name}.json"
            log(f"eval {run.name}: {name}")
            if path is None:  # the base model comes first in todo, before any adapter wraps it
                info["model"] = base_name
                evaluate_model(get_base(), tokenizer, instances, bs, recipe.eval.tokenization,
                               progress=progress, info=info, out=out)
            elif state["kind"] == "adapter":
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
                               progress=progress, info=info, out=out)
            else:
                info["model"] = str(path / "model")
                full = load_causal_lm(str(path / "model"), dtype=dtype)
                full.eval()
                evaluate_model(full, tokenizer, instances, bs, recipe.eval.tokenization,
                               progress=progress, info=info, out=out)
                del full
            evaluated.append(name)
    csv_path, md_path = write_run_summary(run)
    return {"evaluated": evaluated, "skipped": skipped, "summary_csv": str(csv_path), "summary_md": str(md_path)}


SUMMARY_COLUMNS = ["checkpoint", "step", "task", "original_acc", "negated_acc", "mean", "both_correct",
                   "flip_rate", "instruction_free_agreement", "n_pairs"]


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


def summary_rows(results: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for res in results:
        ck = res.get("checkpoint") or res.get("label")
        step = res.get("step")
        for task, t in sorted(res["tasks"].items()):
            rows.append({"checkpoint": ck, "step": step, "task": task,
                         "original_acc": (t.get("original") or {}).get("acc"),
                         "negated_acc": (t.get("negated") or {}).get("acc"),
                         "mean": t.get("mean"), "both_correct": t.get("both_correct"),
                         "flip_rate": t.get("flip_rate"),
                         "instruction_free_agreement": t.get("instruction_free_agreement"),
                         "n_pairs": t.get("n_pairs")})
        s = res["summary"]
        rows.append({"checkpoint": ck, "step": step, "task": "macro",
                     "original_acc": s.get("original_acc"), "negated_acc": s.get("negated_acc"),
                     "mean": s.get("mean"), "both_correct": s.get("both_correct"),
                     "flip_rate": s.get("flip_rate"),
                     "instruction_free_agreement": s.get("instruction_free_agreement"), "n_pairs": None})
    return rows


def write_run_summary(run_dir: str | Path) -> tuple[Path, Path]:
    """RUN_DIR/eval/summary.csv and summary.md from every results file in RUN_DIR/eval."""
    from negtune.io import write_text

    eval_dir = Path(run_dir) / "eval"
    results = []
    for f in eval_dir.glob("*.json"):
        try:
            res = json.loads(f.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(res, dict) and "tasks" in res and "summary" in res:
            results.append(res)
    results.sort(key=lambda r: (r.get("checkpoint") != "base", r.get("step") or 0, str(r.get("checkpoint"))))
    rows = summary_rows(results)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=SUMMARY_COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: _fmt(r[k]) for k in SUMMARY_COLUMNS})
    csv_path, md_path = eval_dir / "summary.csv", eval_dir / "summary.md"
    write_text(csv_path, buf.getvalue())
    md = ["| " + " | ".join(SUMMARY_COLUMNS) + " |", "|" + "---|" * len(SUMMARY_COLUMNS)]
    md += ["| " + " | ".join(_fmt(r[k]) for k in SUMMARY_COLUMNS) + " |" for r in rows]
    write_text(md_path, "\n".join(md) + "\n")
    return csv_path, md_path
