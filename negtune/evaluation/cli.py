"""``negtune eval``: rank-classification accuracy on original/negated prompts.

    negtune eval --model PATH_OR_ID [--adapter PATH]
                 (--recipe RECIPE [key=value ...] | --csv [[NAME:]VARIANT=]FILE ...)
                 [--pair-by sample_id|prompt] [--limit N] [--batch-size B] [--dtype D]
                 [--tokenization joint|separate] [--max-length N] [--out results.json] [--scores scores.jsonl]
    negtune eval RUN_DIR [--batch-size B] [--dtype D] [--limit N] [--force]

Every input is checked (files, columns, pairing) before the model is loaded.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from negtune.config import RESOLVED_HEADER
from negtune.errors import ArgParser, UserError
from negtune.io import check_output_file, is_results_json, starts_with
from negtune.results import Results, format_metric


def build_parser() -> ArgParser:
    p = ArgParser(prog="negtune eval", description=__doc__.split("\n\n")[0])
    p.add_argument("args", nargs="*", metavar="RUN_DIR | key=value",
                   help="a training run directory, or recipe overrides after --recipe")
    p.add_argument("--model", help="hub id, local directory or named offline source (smollm2-135m-instruct)")
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
    p.add_argument("--out", help="results JSON (default: print the summary only)")
    p.add_argument("--scores", help="per-option log-likelihoods as JSON lines")
    p.add_argument("--force", action="store_true", help="RUN_DIR: re-evaluate finished checkpoints")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _positive(value: Any, flag: str) -> None:
    if value is not None and value < 1:
        raise UserError(f"eval: {flag}: must be >= 1, got {value}")


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

    # ---- run-directory mode
    if opts.model is None and opts.recipe is None and not opts.csv:
        if len(opts.args) != 1:
            raise UserError("eval: no inputs: give RUN_DIR, or --model with --recipe or --csv")
        from negtune.evaluation.jobs import evaluate_run

        res = evaluate_run(opts.args[0], batch_size=opts.batch_size, dtype=opts.dtype, limit=opts.limit,
                           progress=progress, force=opts.force)
        print(f"evaluated: {', '.join(res['evaluated']) or '-'}; already done: {', '.join(res['skipped']) or '-'}")
        print(Path(res["summary_md"]).read_text(), end="")
        return 0

    from negtune.evaluation.jobs import evaluate_model, recipe_info
    from negtune.evaluation.csv_sets import load_csv_set, parse_csv_args
    from negtune.evaluation.sets import build_eval_sets

    if opts.recipe is None and opts.args:
        raise UserError(f"eval: unexpected argument {opts.args[0]!r} (key=value overrides need --recipe)")
    if opts.recipe is None and not opts.csv:
        raise UserError("eval: no inputs: give --recipe or at least one --csv")
    recipe = None
    info: dict[str, Any] = {}
    instances = []
    if opts.recipe is not None:
        from negtune.config import load_recipe

        recipe = load_recipe(opts.recipe, opts.args)
        info = recipe_info(recipe)
        info["run"] = None
        has_eval = recipe.eval.tasks or recipe.eval.csv
        if has_eval or not opts.csv:
            instances += build_eval_sets(recipe, opts.limit)
    names = {i.task for i in instances}
    for name, files, pair_by in parse_csv_args(opts.csv, opts.pair_by):
        if name in names:
            raise UserError(f"--csv: set name {name!r} is already used by the recipe's eval section")
        instances += load_csv_set(name, files, pair_by, opts.limit)
    if not instances:
        raise UserError("eval: no instances to evaluate")

    model_name = opts.model or (recipe.model.name_or_path if recipe else None)
    if not model_name:
        raise UserError("eval: --model is required with --csv")
    if opts.adapter and not Path(opts.adapter).is_dir():
        raise UserError(f"adapter {opts.adapter}: no such directory")
    dtype = opts.dtype or (recipe.model.dtype if recipe else "float32")
    batch_size = opts.batch_size or (recipe.eval.batch_size if recipe else 16)
    tokenization = opts.tokenization or (recipe.eval.tokenization if recipe else "joint")
    max_length = opts.max_length or (recipe.model.max_length if recipe else None)
    # Outputs are checked before minutes of scoring: only negtune's own files are replaced.
    if opts.out:
        check_output_file(opts.out, is_results_json, "results file")
        if recipe is not None:
            check_output_file(Path(opts.out).with_suffix(".recipe.yaml"), starts_with(RESOLVED_HEADER), "resolved recipe")
    if opts.scores:
        check_output_file(opts.scores, starts_with('{"gold": '), "scores file")

    from negtune.models import load_for_eval

    model, tokenizer = load_for_eval(model_name, adapter=opts.adapter, dtype=dtype)
    info.update(model=model_name, adapter=opts.adapter, checkpoint=None,
                label=Path(opts.adapter).name if opts.adapter else model_name,
                inputs=sorted({i.meta.get("file") for i in instances if i.meta.get("file")}))
    results = evaluate_model(model, tokenizer, instances, batch_size, tokenization, progress=progress,
                             method=opts.method, max_length=max_length, info=info, out=opts.out,
                             scores_path=opts.scores)
    _print_summary(results)
    if opts.out:
        if recipe is not None:  # the resolved recipe goes beside every output
            from negtune.config import dump_recipe
            from negtune.io import write_text

            write_text(Path(opts.out).with_suffix(".recipe.yaml"), dump_recipe(recipe))
        print(f"wrote {opts.out}")
    return 0


if __name__ == "__main__":
    from negtune.errors import exit_on_user_error

    sys.exit(exit_on_user_error(lambda: main()))
