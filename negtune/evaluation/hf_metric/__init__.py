"""negtune's paired metrics as a Hugging Face ``evaluate`` module that loads offline, by path.

    import evaluate
    from negtune.evaluation.hf_metric import metric_path

    paired = evaluate.load(metric_path())
    paired.compute(predictions=..., references=..., ids=..., variants=...)

Why by path: ``evaluate.load("accuracy")`` fetches its script from the Hugging Face hub; a
script given by path needs no network. The script (``negtune_paired.py``, beside this file)
ships in the package and computes with ``negtune.evaluation.hf_metric.paired``, i.e. with
the code behind ``negtune eval``. ``negtune export evaluate`` (or
``python -m negtune.evaluation.hf_metric``) prints the path for shell use.

This module imports neither ``evaluate`` nor ``datasets`` (the path is known without them).
"""
from __future__ import annotations

import sys
from pathlib import Path

SCRIPT = "negtune_paired.py"


def metric_path() -> str:
    """The ``evaluate`` module script to pass to ``evaluate.load``."""
    return str(Path(__file__).resolve().parent / SCRIPT)


def main(argv: list[str] | None = None) -> int:
    """``negtune export evaluate``: print the path (no options)."""
    from negtune.errors import ArgParser

    p = ArgParser(prog="negtune export evaluate",
                  description="print the path of negtune's evaluate metric module: evaluate.load(PATH)")
    p.parse_args(list(sys.argv[1:] if argv is None else argv))
    print(metric_path())
    return 0


if __name__ == "__main__":
    from negtune.errors import exit_on_user_error

    sys.exit(exit_on_user_error(lambda: main()))
