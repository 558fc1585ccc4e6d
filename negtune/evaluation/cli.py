"""``negtune eval``: rank-classification accuracy on original/negated prompts.

    negtune eval --model PATH_OR_ID [--model ...] [--adapter PATH]
                 (--recipe RECIPE [key=value ...] | --csv [[NAME:]VARIANT=]FILE ...)
                 [--pair-by sample_id|prompt] [--limit N] [--batch-size B] [--dtype D]
                 [--tokenization joint|separate] [--max-length N] [--device-map MAP]
                 [--fewshot K [--fewshot-sampling fixed|per_item] [--fewshot-seed S]
                  [--fewshot-source train|eval|csv] [--fewshot-csv [VARIANT=]FILE ...]]
                 [--chat-template] [--system-prompt TEXT] [--out results.json|DIR] [--scores scores.jsonl|DIR]
    negtune eval RUN_DIR [--batch-size B] [--dtype D] [--limit N] [--force]

Several ``--model`` values (a size sweep) write one results file each into ``--out DIR``.
Under ``accelerate launch --num_processes N -m negtune.cli eval ...`` the work is split
across the processes (``negtune.evaluation.distributed``). Every input is checked (files,
columns, pairing, few-shot pools, chat templates) before any weights are loaded.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from negtune.config import RESOLVED_HEADER
from negtune.errors import ArgParser, UserError
from negtune.io import check_output_dir, check_output_file, is_results_json, starts_with
from negtune.results import Results, format_metric


def build_parser() -> ArgParser:
    p = ArgParser(prog="negtune eval", description=__doc__.split("\n\n")[0])
    p.add_argument("args", nargs="*", metavar="RUN_DIR | key=value",
                   help="a training run directory, or recipe overrides after --recipe")
    p.add_argument("--model", action="append", default=[],
                   help="hub id, local directory or named offline source (smollm2-135m-instruct); "
                        "repeat for a size sweep (one results file per model in --out DIR)")
    p.add_argument("--adapter", help="PEFT adapter directory, applied without merging")
    p.add_argument("--recipe", help="recipe whose eval section names the tasks / CSV sets")
    p.add_argument("--csv", action="append", default=[], metavar="[[NAME:]VARIANT=]FILE",
                   help="paper-format CSV; repeatable; variant guessed from 'negation'/'negated' in the name; "
                        "VARIANT=FILE pairs with the previous --csv, NAME:VARIANT=FILE names the set")
    p.add_argument("--pair-by", choices=["sample_id", "prompt"], default="sample_id",
                   help="match negated to original items by sample_id (default) or by question text")
    p.add_argument("--limit", type=int, help="first N items per task / CSV set")
    p.add_argument("--batch-size", type=int, help="sequences per forward pass (default: recipe or 16)")
    p.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], help="default float32 (recipe: model.dtype)")
    p.add_argument("--tokenization", choices=["joint", "separate"], help="default joint")
    p.add_argument("--max-length", type=int, metavar="N",
                   help="cut sequences at min(N, the model's limit) (default: the recipe's model.max_length, "
                        "else the model's limit)")
    p.add_argument("--method", choices=["auto", "kv", "batched", "plain"], default="auto",
                   help="scoring implementation (all give the same numbers; auto = fastest verified)")
    p.add_argument("--device-map", metavar="MAP",
                   help="spread a model too big for one device: auto, balanced, ... (transformers' device_map)")
    p.add_argument("--fewshot", type=int, metavar="K", help="K demonstrations before each prompt (eval.fewshot.k)")
    p.add_argument("--fewshot-sampling", choices=["fixed", "per_item"],
                   help="one demonstration set per task (default; its prefix is run once) or one per item")
    p.add_argument("--fewshot-seed", type=int, metavar="S", help="demonstration selection seed (default 1234)")
    p.add_argument("--fewshot-source", choices=["train", "eval", "csv"],
                   help="the task's training split (default), the evaluated set itself, or --fewshot-csv files")
    p.add_argument("--fewshot-csv", action="append", default=[], metavar="[VARIANT=]FILE",
                   help="paper-format demonstration file for the set its name names; repeatable")
    p.add_argument("--chat-template", action=argparse.BooleanOptionalAction, default=None,
                   help="score options as the assistant's reply through the tokenizer's chat template")
    p.add_argument("--system-prompt", metavar="TEXT",
                   help="system turn under --chat-template (default: the template's own)")
    p.add_argument("--out", help="results JSON, or a directory with several --model (default: print the summary only)")
    p.add_argument("--scores", help="per-option log-likelihoods as JSON lines (a directory with several --model)")
    p.add_argument("--force", action="store_true", help="RUN_DIR: re-evaluate finished checkpoints")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _positive(value: Any, flag: str) -> None:
    if value is not None and value < 1:
        raise UserError(f"eval: {flag}: must be >= 1, got {value}")


def _eval_flags(opts: argparse.Namespace) -> dict[str, Any]:
    """The eval-section settings given as flags, as a raw ``eval`` mapping."""
    from negtune.evaluation.csv_sets import parse_csv_args

    fewshot: dict[str, Any] = {}
    for flag, key in (("fewshot", "k"), ("fewshot_sampling", "sampling"), ("fewshot_seed", "seed"),
                      ("fewshot_source", "source")):
        if getattr(opts, flag) is not None:
            fewshot[key] = getattr(opts, flag)
    if opts.fewshot_csv:
        fewshot["csv"] = {name: files for name, files, _ in parse_csv_args(opts.fewshot_csv)}
        fewshot.setdefault("source", "csv")
    raw: dict[str, Any] = {"fewshot": fewshot} if fewshot else {}
    if opts.chat_template is not None:
        raw["chat_template"] = opts.chat_template
    if opts.system_prompt is not None:
        raw["system_prompt"] = opts.system_prompt
    return raw


def _as_overrides(raw: dict[str, Any], prefix: str = "eval") -> list[str]:
    out = []
    for key, value in raw.items():
        if isinstance(value, dict) and key == "fewshot":
            out += _as_overrides(value, f"{prefix}.{key}")
        else:
            out.append(f"{prefix}.{key}={json.dumps(value)}")  # JSON is YAML: strings stay strings
    return out


def _slug(name: str) -> str:
    path = Path(name)
    text = "_".join(path.resolve().parts[-2:]) if path.exists() else name
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "model"


def _targets(models: list[str], target: str | None, suffix: str, flag: str) -> list[Path | None]:
    """Where each model's results go: ``target`` itself for one model, ``target/<model>`` for several."""
    if target is None:
        return [None] * len(models)
    path = Path(target)
    if len(models) == 1:
        return [path]
    if path.exists() and not path.is_dir():
        raise UserError(f"{flag} {target}: with several --model this must be a directory, and it is a file")
    check_output_dir(path, "eval", f"{flag} directory")
    names = [_slug(m) for m in models]
    if len(set(names)) < len(names):
        raise UserError(f"--model: two models would write the same file in {target} ({', '.join(names)})")
    return [path / f"{n}{suffix}" for n in names]


def _print_notes(results: Results) -> None:
    """Never silent about what the length limit did."""
    sc, pr = results.scoring, results.prompting
    if pr is not None and pr.fewshot_k and pr.n_fewshot_reduced:
        print(f"note: {pr.n_fewshot_reduced} items were shown fewer than {pr.fewshot_k} demonstrations "
              f"(fewest {pr.min_fewshot_used}) to fit the max length {sc.max_length if sc else '-'}")
    if sc is not None and sc.n_truncated:
        print(f"note: {sc.n_truncated} items were cut from the left to fit the max length {sc.max_length}")


def _print_summary(results: Results) -> None:
    f = format_metric
    print(f"{'task':<28} {'n':>5} {'orig':>6} {'neg':>6} {'mean':>6} {'both':>6} {'flip':>6}")
    for task, t in results.tasks.items():
        n = max((v.n for v in t.variants.values()), default=0)
        print(f"{task:<28} {n:>5} {f(t.acc('original')):>6} {f(t.acc('negated')):>6} {f(t.pairs.mean):>6} "
              f"{f(t.pairs.both_correct):>6} {f(t.pairs.flip_rate):>6}")
    s = results.summary
    print(f"{'macro':<28} {'':>5} {f(s.original_acc):>6} {f(s.negated_acc):>6} {f(s.mean):>6} "
          f"{f(s.both_correct):>6} {f(s.flip_rate):>6}")


def main(argv: list[str] | None = None) -> int:
    from negtune.evaluation.distributed import processes

    opts = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    _positive(opts.limit, "--limit")
    _positive(opts.batch_size, "--batch-size")
    _positive(opts.max_length, "--max-length")
    progress = not opts.quiet
    if opts.quiet:
        try:
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
        except ImportError:  # pragma: no cover
            pass
    flags = _eval_flags(opts)

    # ---- run-directory mode
    if not opts.model and opts.recipe is None and not opts.csv:
        if len(opts.args) != 1:
            raise UserError("eval: no inputs: give RUN_DIR, or --model with --recipe or --csv")
        if flags or opts.device_map:
            raise UserError("eval RUN_DIR: evaluates with the run's recipe; few-shot, chat-template and "
                            "device-map flags apply to --model only")
        from negtune.evaluation.jobs import evaluate_run

        procs = processes()
        res = evaluate_run(opts.args[0], batch_size=opts.batch_size, dtype=opts.dtype, limit=opts.limit,
                           progress=progress, force=opts.force, procs=procs)
        if procs.is_main:
            print(f"evaluated: {', '.join(res['evaluated']) or '-'}; already done: {', '.join(res['skipped']) or '-'}")
            print(Path(res["summary_md"]).read_text(), end="")
        return 0

    from negtune.config import EvalConfig, check_fewshot
    from negtune.evaluation.csv_sets import load_csv_set, parse_csv_args
    from negtune.evaluation.fewshot import add_fewshot
    from negtune.evaluation.jobs import evaluate_model, prompt_format, recipe_info
    from negtune.evaluation.sets import build_eval_sets

    if opts.recipe is None and opts.args:
        raise UserError(f"eval: unexpected argument {opts.args[0]!r} (key=value overrides need --recipe)")
    if opts.recipe is None and not opts.csv:
        raise UserError("eval: no inputs: give --recipe or at least one --csv")
    recipe = None
    info: dict[str, Any] = {}
    if opts.recipe is not None:
        from negtune.config import load_recipe

        recipe = load_recipe(opts.recipe, opts.args + _as_overrides(flags))
        info = recipe_info(recipe)
        info["run"] = None
        ev = recipe.eval
    else:
        from negtune.schema import build_dataclass

        ev = build_dataclass(EvalConfig, flags, "eval", "negtune eval")
        check_fewshot(ev.fewshot, "negtune eval")

    def eval_sets(limit: int | None) -> list:
        found = []
        if recipe is not None and (recipe.eval.tasks or recipe.eval.csv or not opts.csv):
            found += build_eval_sets(recipe, limit, fewshot=False)
        names = {i.task for i in found}
        for name, files, pair_by in parse_csv_args(opts.csv, opts.pair_by):
            if name in names:
                raise UserError(f"--csv: set name {name!r} is already used by the recipe's eval section")
            found += load_csv_set(name, files, pair_by, limit)
        return found

    instances = eval_sets(opts.limit)
    if not instances:
        raise UserError("eval: no instances to evaluate")
    if ev.fewshot.k:
        limited = opts.limit is not None or (recipe is not None and recipe.eval.limit is not None)
        full = eval_sets(None) if ev.fewshot.source == "eval" and limited else instances
        instances = add_fewshot(instances, ev.fewshot, pool_instances=full, eval_split=ev.split,
                                data_files=recipe.data.files if recipe else None,
                                cache_dir=recipe.data.cache_dir if recipe else None)

    models = opts.model or ([recipe.model.name_or_path] if recipe else [])
    if not models:
        raise UserError("eval: --model is required with --csv")
    if opts.adapter and len(models) > 1:
        raise UserError(f"--adapter: applies to one --model, got {len(models)}")
    if opts.adapter and not Path(opts.adapter).is_dir():
        raise UserError(f"adapter {opts.adapter}: no such directory")
    dtype = opts.dtype or (recipe.model.dtype if recipe else "float32")
    batch_size = opts.batch_size or (recipe.eval.batch_size if recipe else 16)
    tokenization = opts.tokenization or (recipe.eval.tokenization if recipe else "joint")
    max_length = opts.max_length or (recipe.model.max_length if recipe else None)
    outs = _targets(models, opts.out, ".json", "--out")
    score_files = _targets(models, opts.scores, ".scores.jsonl", "--scores")
    # Outputs are checked before minutes of scoring: only negtune's own files are replaced.
    for out, scores_path in zip(outs, score_files):
        if out is not None:
            check_output_file(out, is_results_json, "results file")
            if recipe is not None:
                check_output_file(out.with_suffix(".recipe.yaml"), starts_with(RESOLVED_HEADER), "resolved recipe")
        if scores_path is not None:
            check_output_file(scores_path, starts_with('{"gold": '), "scores file")
    fmt = prompt_format(ev)
    procs = processes()
    if opts.device_map and procs.world > 1:
        raise UserError("--device-map: not with several processes (each would spread the model over every "
                        "device); launch one process")

    from negtune.models import load_for_eval, load_tokenizer

    if fmt.chat_template:  # before any weights: every tokenizer must have a template
        from negtune.evaluation.prompting import has_chat_template

        for name in models:
            if not has_chat_template(load_tokenizer(opts.adapter if opts.adapter and
                                                    Path(opts.adapter, "tokenizer_config.json").is_file() else name)):
                raise UserError(f"model {name}: --chat-template / eval.chat_template: "
                                "its tokenizer has no chat template")
    inputs = sorted({i.meta.get("file") for i in instances if i.meta.get("file")})
    for name, out, scores_path in zip(models, outs, score_files):
        model, tokenizer = load_for_eval(name, adapter=opts.adapter, dtype=dtype, device_map=opts.device_map)
        if procs.device is not None and not opts.device_map:
            model.to(procs.device)
        meta = dict(info, model=name, adapter=opts.adapter, checkpoint=None,
                    label=Path(opts.adapter).name if opts.adapter else name, inputs=inputs)
        results = evaluate_model(model, tokenizer, instances, batch_size, tokenization, progress=progress,
                                 method=opts.method, max_length=max_length, info=meta, out=out,
                                 scores_path=scores_path, fmt=fmt, fewshot=ev.fewshot, procs=procs)
        del model
        if not procs.is_main:
            continue
        if len(models) > 1:
            print(f"== {name} ({results.n_params:,} parameters)")
        _print_summary(results)
        _print_notes(results)
        if out is not None:
            if recipe is not None:  # the resolved recipe goes beside every output
                from negtune.config import dump_recipe
                from negtune.io import write_text

                write_text(out.with_suffix(".recipe.yaml"), dump_recipe(recipe))
            print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    from negtune.errors import exit_on_user_error

    sys.exit(exit_on_user_error(lambda: main()))
