"""Run ``negtune train`` and SIGKILL the process right after optimizer step N (tests only).

    python tests/training/kill_after_step.py N RECIPE [train args ...]

Why a wrapper and not a hook in the trainer: the resume tests need a crash at a known step
(between two checkpoints), and that is a test's concern; the trainer's loop stays free of it.
The wrapper patches ``negtune.training.trainer.train_step`` in this process only.
"""
import os
import signal
import sys

import negtune.training.trainer as trainer_module
from negtune.errors import exit_on_user_error
from negtune.training.cli import main

kill_after = int(sys.argv[1])
real_step = trainer_module.train_step
steps = {"n": 0}


def step_then_maybe_die(*args, **kwargs):
    result = real_step(*args, **kwargs)
    steps["n"] += 1
    if steps["n"] == kill_after:
        os.kill(os.getpid(), signal.SIGKILL)
    return result


trainer_module.train_step = step_then_maybe_die
sys.exit(exit_on_user_error(lambda: main(sys.argv[2:])))
