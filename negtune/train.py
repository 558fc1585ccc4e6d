#!/usr/bin/env python
"""Fine-tune a causal LM on prompt instances: the script ``accelerate launch`` runs.

Three ways to run it, same code::

    accelerate launch --config_file launch/1gpu.yaml negtune/train.py recipes/opt125m.yaml [key=value ...]
    python negtune/train.py recipes/opt125m.yaml [key=value ...]        # one process
    negtune train recipes/opt125m.yaml [key=value ...]

Flags: ``--dry-run`` (validate, resolve the data, print the plan; loads no weights, no
network), ``--resume [PATH]`` (default: newest complete checkpoint in output_dir),
``--out DIR`` (overrides ``output_dir``). Read on in ``negtune/training/``: ``cli.py`` (this
command), ``checks.py`` (the recipe checks), ``plan.py`` (the dry run), ``trainer.py``
(setup -> train -> save) and ``step.py`` (one optimizer step).
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `import negtune` work without installing,
    # and keep negtune/ itself off sys.path (its io.py, config.py, data/ would shadow other modules).
    _HERE = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if str(Path(p or ".").resolve()) != _HERE]
    _ROOT = str(Path(_HERE).parent)
    if _ROOT not in sys.path:
        sys.path.insert(0, _ROOT)

from negtune.errors import exit_on_user_error  # noqa: E402
from negtune.training.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(exit_on_user_error(lambda: main(sys.argv[1:])))
