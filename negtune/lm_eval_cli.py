"""``negtune export lm-eval``: which instances to export, then ``negtune.lm_eval_export``.

    negtune export lm-eval (RECIPE [key=value ...] | --csv [[NAME:]VARIANT=]FILE ... | --paper-csv-dir DIR)
                           --out DIR [--group NAME] [--size N] [--limit N] [--pair-by auto|sample_id|prompt]

RECIPE exports the recipe's ``eval`` section (registry tasks and CSV sets, exactly the
instances ``negtune eval --recipe RECIPE`` scores, via ``negtune.evaluation.sets``), and the
README's commands name the recipe's model, dtype and length limit. ``--csv`` / ``--paper-csv-dir``
read the paper's CSV format, pairing each set as ``--pair-by`` says.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

from negtune.data.instances import Instance
from negtune.errors import ArgParser, UserError
from negtune.lm_eval_export import RunHint, export_lm_eval, lm_eval_command

_SIZE_RE = re.compile(r"[_\-](\d+)$")


def build_parser() -> ArgParser:
    p = ArgParser(prog="negtune export lm-eval",
                  description="write negtune evaluation sets as an lm-evaluation-harness task directory")
    p.add_argument("args", nargs="*", metavar="RECIPE [key=value ...]",
                   help="a recipe whose eval section names the tasks / CSV sets, and overrides")
    p.add_argument("--csv", action="append", metavar="[[NAME:]VARIANT=]FILE",
                   help="paper-format CSV; repeatable; files of one set differ only by 'negation' and size")
    p.add_argument("--paper-csv-dir", metavar="DIR",
                   help="every paper CSV in DIR, the largest size of each set (see --size)")
    p.add_argument("--out", required=True, help="directory to write (replaced if it is an earlier export)")
    p.add_argument("--group", default="negtune", help="prefix of every task and group name (default negtune)")
    p.add_argument("--size", type=int, help="--paper-csv-dir: use the files of this size instead (the paper's _50 "
                                            "original and negated files hold different items: they do not pair)")
    p.add_argument("--limit", type=int, help="first N items per set (and their partners)")
    p.add_argument("--pair-by", choices=["auto", "sample_id", "prompt"], default="auto",
                   help="CSV input: match negated to original items by sample_id, by question text, or auto "
                        "(default: sample_id, else by question for a set whose files number items "
                        "differently, as the paper's WebQ files do)")
    return p


def paper_csv_dir_files(directory: str | Path, size: int | None = None) -> list[str]:
    """The CSVs of ``directory`` to export: per set, the files of its largest size (the
    paper's 300/100-item files, not the ``_50`` subsets), or of ``size`` when given."""
    from negtune.data.paper_csv import set_name as csv_set_name

    d = Path(directory)
    if not d.is_dir():
        raise UserError(f"{d}: no such directory")
    by_set: dict[str, dict[int, list[Path]]] = {}
    for f in sorted(d.glob("*.csv")):
        m = _SIZE_RE.search(f.stem)
        by_set.setdefault(csv_set_name(f), {}).setdefault(int(m.group(1)) if m else -1, []).append(f)
    if not by_set:
        raise UserError(f"{d}: no CSV files")
    chosen = []
    for sizes in by_set.values():
        pick = size if size is not None else max(sizes)
        chosen += [str(f) for f in sizes.get(pick, [])]
    if not chosen:
        raise UserError(f"{d}: no CSV file of size {size}")
    return chosen


def _load_set(name: str, files: dict[str, str], pair_by: str, limit: int | None) -> list[Instance]:
    """One paper set, paired as ``negtune eval --pair-by`` pairs it; ``auto`` tries sample_id
    first, then the question text (the only way to pair the paper's WebQ files, while PIQA
    repeats questions and pairs by sample_id only)."""
    from negtune.evaluation.csv_sets import load_csv_set

    if pair_by != "auto":
        return load_csv_set(name, files, pair_by, limit)
    try:
        return load_csv_set(name, files, "sample_id", limit)
    except UserError as by_id:
        try:
            rows = load_csv_set(name, files, "prompt", limit)
        except UserError:
            raise by_id from None
    print(f"{name}: sample_ids differ between its files; paired by question (--pair-by prompt)", file=sys.stderr)
    return rows


def _recipe_sets(args: list[str], limit: int | None) -> tuple[dict[str, list[Instance]], RunHint]:
    """The recipe's eval instances grouped by task, and the README's model settings."""
    from negtune.config import load_recipe
    from negtune.evaluation.sets import build_eval_sets
    from negtune.models import is_named_offline_source

    recipe = load_recipe(args[0], args[1:])
    sets: dict[str, list[Instance]] = {}
    for inst in build_eval_sets(recipe, limit):
        sets.setdefault(inst.task, []).append(inst)
    m = recipe.model
    model, note = m.name_or_path, ""
    if is_named_offline_source(model):  # lm-eval loads the converted directory
        from negtune.offline_model import model_dir

        model = str(model_dir(m.name_or_path))
        note = (f"\n\n`{model}` is `{m.name_or_path}` converted by negtune on first use "
                f"(any negtune command with `--model {m.name_or_path}` creates it).")
    if recipe.eval.tokenization != "joint":
        note += ("\n\nThe recipe scores with `eval.tokenization: separate`; lm-eval encodes prompt + option "
                 "together (`joint`), so compare with `negtune eval ... eval.tokenization=joint`.")
    inputs = " ".join(["--recipe", *args] + ([f"--limit {limit}"] if limit else []))
    return sets, RunHint(model=model, dtype=m.dtype, max_length=m.max_length, negtune_inputs=inputs, note=note)


def main(argv: list[str] | None = None) -> int:
    """``negtune export lm-eval ...``: see the module docstring."""
    opts = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    sources = [name for name, given in (("RECIPE", opts.args), ("--csv", opts.csv),
                                        ("--paper-csv-dir", opts.paper_csv_dir)) if given]
    if len(sources) != 1:
        raise UserError("export lm-eval: give exactly one of RECIPE, --csv FILE ..., --paper-csv-dir DIR"
                        + (f" (got {', '.join(sources)})" if sources else ""))
    for flag, value in (("--limit", opts.limit), ("--size", opts.size)):
        if value is not None and value < 1:
            raise UserError(f"export lm-eval: {flag}: must be >= 1, got {value}")
    if opts.size is not None and opts.paper_csv_dir is None:
        raise UserError("export lm-eval: --size applies to --paper-csv-dir only")
    if opts.args:
        if "=" in opts.args[0]:
            raise UserError(f"export lm-eval: {opts.args[0]!r}: the recipe comes first, then key=value overrides")
        if opts.pair_by != "auto":
            raise UserError("export lm-eval: --pair-by applies to CSV input (a recipe sets eval.csv[].pair_by)")
        sets, run = _recipe_sets(opts.args, opts.limit)
    else:
        from negtune.evaluation.csv_sets import parse_csv_args

        specs = opts.csv or paper_csv_dir_files(opts.paper_csv_dir, opts.size)
        sets = {name: _load_set(name, files, opts.pair_by, opts.limit) for name, files, _ in parse_csv_args(specs)}
        run = RunHint(negtune_inputs="--csv FILE ..." + (f" --limit {opts.limit}" if opts.limit else ""))
    tasks = export_lm_eval(sets, opts.out, group=opts.group, run=run)
    out = Path(opts.out).expanduser().resolve()
    print(f"wrote {len(tasks)} lm-eval tasks ({len(sets)} sets) to {out}")
    print(f"run: {lm_eval_command(out, opts.group, run)}")
    return 0


if __name__ == "__main__":
    from negtune.errors import exit_on_user_error

    sys.exit(exit_on_user_error(lambda: main()))
