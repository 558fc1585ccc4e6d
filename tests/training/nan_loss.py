"""Test helper (no tests here): a user loss that turns NaN from a given step on.

Used by tests/training/test_run.py as ``loss.name: <this file>:nan_after`` to check that a
non-finite loss stops training with exit code 3 and keeps only the good checkpoints.
"""


def nan_after(model, batch, ctx, step: int = 3):
    from negtune.losses import LossOutput
    from negtune.losses.ce import ce

    out = ce(model, batch, ctx)
    if ctx.step + 1 >= step:  # ctx.step counts completed optimizer steps
        return LossOutput(out.loss * float("nan"), out.components)
    return out
