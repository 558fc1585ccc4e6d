"""``negtune export FORMAT ...``: hand negtune's evaluation to the tools researchers already use.

    negtune export lm-eval (RECIPE [key=value ...] | --csv [VARIANT=]FILE ... | --paper-csv-dir DIR) --out DIR
    negtune export evaluate        print the path of the `evaluate` metric module: evaluate.load(PATH)

Why one command with formats: each target lives in its own module (imported only when named,
like the top-level commands); this file only picks it.
"""
from __future__ import annotations

import importlib
import sys

from negtune.errors import UserError

FORMATS = {
    "lm-eval": ("negtune.lm_eval_cli", "an lm-evaluation-harness task directory (lm_eval --include_path DIR)"),
    "evaluate": ("negtune.evaluation.hf_metric", "print the path of the evaluate metric module (evaluate.load(PATH))"),
}

USAGE = "usage: negtune export {" + ",".join(FORMATS) + "} ...\n\n" + "\n".join(
    f"  {name:<9} {doc}" for name, (_, doc) in FORMATS.items())


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if args else 2
    if args[0] not in FORMATS:
        raise UserError(f"export: unknown format {args[0]!r} (one of: {', '.join(FORMATS)})")
    return importlib.import_module(FORMATS[args[0]][0]).main(args[1:])


if __name__ == "__main__":
    from negtune.errors import exit_on_user_error

    sys.exit(exit_on_user_error(lambda: main()))
