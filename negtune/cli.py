"""``negtune`` console script: a thin dispatcher.

Why thin: ``negtune build-data`` and recipe validation must answer instantly, so this file
imports nothing heavy; each sub-command lives in its own module with its own argparse and
is imported only when named.
"""
from __future__ import annotations

import importlib
import sys

from negtune.errors import exit_on_user_error

COMMANDS = {
    "build-data": ("negtune.data.build", "build prompt instances from a recipe's data section"),
    "train": ("negtune.training.cli", "fine-tune a model (same as `python negtune/train.py`)"),
    "eval": ("negtune.evaluation.cli", "rank-classification accuracy on original/negated prompts"),
    "report": ("negtune.report", "markdown/CSV tables and the trade-off plot"),
    "export": ("negtune.export", "lm-evaluation-harness tasks (lm-eval) or the evaluate metric's path (evaluate)"),
    "compare": ("negtune.compare", "paired comparison of two results: B - A with intervals, McNemar p"),
    "demo": ("negtune.demo", "the offline end-to-end demo (base eval, FT, mitigation, report)"),
}

USAGE = "usage: negtune {" + ",".join(COMMANDS) + "} ...\n\n" + "\n".join(
    f"  {name:<11} {doc}" for name, (_, doc) in COMMANDS.items()
)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"negtune: error: unknown command {name!r} (commands: {', '.join(COMMANDS)})", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    return exit_on_user_error(lambda: module.main(rest))


if __name__ == "__main__":
    sys.exit(main())
