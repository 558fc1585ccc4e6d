"""``negtune train`` (and ``negtune/train.py``): check the recipe, then plan or train.

    negtune train RECIPE [key=value ...] [--dry-run] [--resume | --resume=PATH] [--out DIR]

``--resume`` alone continues from the newest complete checkpoint in the run directory;
``--resume=PATH`` from a given checkpoint. It never takes the next argument as its value,
so ``--resume train.lr=5e-3`` is a resume plus an override (overrides may go anywhere).

Exit codes: 0 done; 2 bad input (one line, before any model is loaded); 3 the loss or the
gradient norm became NaN/inf (one line; the last good checkpoint is kept, the poisoned
state is not saved).
"""
from __future__ import annotations

import os
import sys
from typing import Optional

from negtune.config import load_recipe
from negtune.errors import ArgParser
from negtune.training.checks import check_recipe, world_size_from_env

EXIT_NONFINITE = 3


def parse_args(argv: list[str]):
    p = ArgParser(prog="negtune train", description="Fine-tune a causal LM from a recipe.")
    p.add_argument("recipe", help="recipe YAML (see recipes/)")
    p.add_argument("overrides", nargs="*", help="key.path=value overrides, e.g. train.lr=5e-4")
    p.add_argument("--dry-run", action="store_true", help="validate, resolve data, print the plan; load nothing")
    p.add_argument("--resume", default=None, metavar="PATH",
                   help="--resume: continue from the newest checkpoint in output_dir; --resume=PATH: from PATH")
    p.add_argument("--out", default=None, metavar="DIR", help="output directory (overrides output_dir)")
    return p.parse_intermixed_args(["--resume=auto" if a == "--resume" else a for a in argv])


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    overrides = list(args.overrides)
    if args.out:
        overrides.append(f"output_dir={args.out}")
    if args.resume:
        overrides.append(f"train.resume={args.resume}")
    recipe = load_recipe(args.recipe, overrides)
    checked = check_recipe(recipe, recipe.train.resume, world_size_from_env(), dry_run=args.dry_run)
    if args.dry_run:
        from negtune.training.plan import print_plan

        return print_plan(checked) if int(os.environ.get("RANK", "0")) == 0 else 0
    from negtune.training.step import NonFiniteLoss
    from negtune.training.trainer import Trainer

    trainer = Trainer(checked)
    try:
        trainer.setup()
        return trainer.train()
    except NonFiniteLoss as err:
        trainer.close()  # the message gets its own line
        print(f"negtune: error: non-finite training: {err}; stopped without saving this state "
              f"(last good checkpoint kept in {trainer.run_dir / 'checkpoints'})", file=sys.stderr)
        return EXIT_NONFINITE
    finally:
        trainer.close()
