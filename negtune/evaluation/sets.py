"""Evaluation sets: what a recipe's ``eval`` section asks to evaluate, and its digest.

Why here: ``negtune eval``, the trainer's epoch-end evaluation, ``negtune eval RUN_DIR`` and
the exporters must evaluate exactly the same instances from the same inputs.

* ``build_eval_sets(recipe, limit)``: registry tasks (built from their split, or the paper's
  files under ``eval.paper_csv_dir``: ``negtune.evaluation.paper_sets``) + CSV sets
  (``eval.csv``: ``negtune.evaluation.csv_sets``);
* ``sets_digest(instances)``: what was evaluated, as one hash (results record it).
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, Optional, Sequence

from negtune.data.build import build_eval_instances
from negtune.data.instances import Instance
from negtune.data.paper_csv import set_name
from negtune.errors import UserError
from negtune.evaluation.csv_sets import load_csv_set
from negtune.evaluation.paper_sets import paper_eval_sets


# --------------------------------------------------------------------------- eval sets


def _limit_per_task(instances: list[Instance], limit: Optional[int]) -> list[Instance]:
    if limit is None:
        return instances
    kept: dict[str, list[str]] = {}
    allowed: set[tuple[str, str]] = set()
    for inst in instances:
        ids = kept.setdefault(inst.task, [])
        if inst.source_id not in ids and len(ids) < limit:
            ids.append(inst.source_id)
            allowed.add(inst.pair_key)
    return [i for i in instances if i.pair_key in allowed]


def build_eval_sets(recipe: Any, limit: Optional[int] = None, fewshot: bool = True) -> list[Instance]:
    """All instances the recipe's ``eval`` section asks for (registry tasks, then CSV sets),
    with their few-shot demonstrations when ``eval.fewshot.k`` > 0 (``fewshot=False``: without)."""
    cfg = recipe.eval
    limit = limit if limit is not None else cfg.limit
    out = _eval_sets(recipe, limit)
    if fewshot and cfg.fewshot.k:
        from negtune.evaluation.fewshot import add_fewshot

        full = _eval_sets(recipe, None) if cfg.fewshot.source == "eval" and limit is not None else out
        out = add_fewshot(out, cfg.fewshot, pool_instances=full, eval_split=cfg.split, data_files=recipe.data.files,
                          cache_dir=recipe.data.cache_dir)
    return out


def _eval_sets(recipe: Any, limit: Optional[int]) -> list[Instance]:
    cfg = recipe.eval
    out: list[Instance] = []
    if cfg.tasks and getattr(cfg, "paper_csv_dir", None):  # the paper's own files (evaluation.paper_sets)
        out += paper_eval_sets(cfg, recipe.seed, limit)
    elif cfg.tasks:
        out += _limit_per_task(list(build_eval_instances(cfg, recipe.seed, recipe.data.cache_dir, recipe.data)), limit)
    names = set(i.task for i in out)
    for k, pair in enumerate(cfg.csv):
        files = dict(pair.files)
        name = pair.name or set_name(next(iter(files.values())))
        if name in names:
            raise UserError(f"{recipe.source}: eval.csv[{k}].name: {name!r} is already used; give a distinct name")
        names.add(name)
        out += load_csv_set(name, files, getattr(pair, "pair_by", "sample_id"), limit)
    if not out:
        raise UserError(f"{recipe.source}: eval: names no tasks and no csv sets to evaluate")
    return out




def sets_digest(instances: Sequence[Instance]) -> str:
    """sha256 of exactly what is evaluated: every instance's task, id, variant, prompt, options
    and gold set, in order. Two results with the same digest scored the same items."""
    digest = hashlib.sha256()
    for i in instances:
        row = [i.task, i.source_id, i.variant, i.prompt, list(i.options), list(i.gold)]
        digest.update(json.dumps(row, ensure_ascii=False).encode("utf-8") + b"\n")
    return digest.hexdigest()
