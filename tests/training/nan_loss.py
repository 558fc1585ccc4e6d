"""Test helpers (no tests here): user losses that go wrong at a given step.

Used by tests/training/test_run.py and test_safety.py as ``loss.name: <this file>:<function>``:
training must stop with one line and keep only the good checkpoints.
"""


def nan_after(model, batch, ctx, step: int = 3):
    """The loss itself turns NaN from ``step`` on."""
    from negtune.losses import LossOutput
    from negtune.losses.ce import ce

    out = ce(model, batch, ctx)
    if ctx.step + 1 >= step:  # ctx.step counts completed optimizer steps
        return LossOutput(out.loss * float("nan"), out.components)
    return out


def nan_grad_after(model, batch, ctx, step: int = 3):
    """A finite loss whose gradient is NaN from ``step`` on: d sqrt(|u|)/du at u = 0."""
    from negtune.losses import LossOutput
    from negtune.losses.ce import ce

    out = ce(model, batch, ctx)
    if ctx.step + 1 >= step:
        w = next(p for p in model.parameters() if p.requires_grad)
        poison = (w - w.detach()).abs().sqrt().sum()  # value 0, gradient NaN
        return LossOutput(out.loss + poison, out.components, n_tokens=out.n_tokens)
    return out


def raise_after(model, batch, ctx, step: int = 3):
    """A researcher's bug: the loss raises from ``step`` on."""
    from negtune.losses.ce import ce

    if ctx.step + 1 >= step:
        raise ValueError("bad batch")
    return ce(model, batch, ctx)
