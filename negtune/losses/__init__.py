"""Training losses as plain functions: the built-ins, a registry, and the contract they follow.

A loss is ``fn(model, batch, ctx, **args) -> LossOutput``, named in the recipe (``loss: {name:
ce}``, or ``{name: my_losses:my_loss, alpha: 0.3}`` for a researcher's own function) and checked
before anything heavy is loaded. It declares the data it needs; the trainer never branches on
loss names. The full statement of the contract is ``docs/losses.md``, "The loss contract".

Parts: ``contract`` (what a loss receives and returns, ``declare``), ``spec`` (``LossSpec``, a
resolved loss), ``registry`` (``register_loss``, ``resolve_loss``), ``user_code`` (losses named
by ``module:function``), ``units`` (what a term is a mean over), one module per built-in.
Importing this package does not import torch (built-ins import it inside their functions).
"""
from __future__ import annotations

# The public names, re-exported: ``from negtune.losses import X`` is the import path.
from negtune.losses.contract import NEEDS, LossContext, LossOutput, Term, declare  # noqa: F401
from negtune.losses.registry import check_data_compat, list_losses, register_loss, resolve_loss  # noqa: F401
from negtune.losses.spec import LossSpec  # noqa: F401
from negtune.losses.user_code import is_user_reference, locate_user_loss  # noqa: F401
