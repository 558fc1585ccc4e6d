"""Evaluation sets: the paper's released CSVs (paired by file) and a recipe's ``eval`` section.

Why here: ``negtune eval``, the trainer's epoch-end evaluation, ``negtune eval RUN_DIR`` and
the exporters must evaluate exactly the same instances from the same inputs.

* ``load_csv_set(name, files, pair_by, limit)``: one paper set, its variants paired item by item.
* ``parse_csv_args(specs)``: ``--csv [VARIANT=]FILE`` arguments -> sets.
* ``build_eval_sets(recipe, limit)``: registry tasks (the recipe's ``eval`` section) + CSV sets.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Optional, Sequence

from negtune.data.build import build_eval_instances
from negtune.data.instances import Instance
from negtune.data.paper_csv import guess_variant, read_paper_csv, set_name
from negtune.errors import UserError

PAIR_BY = ("sample_id", "prompt")


# --------------------------------------------------------------------------- paper CSV sets


def _prompt_bodies(instances: Sequence[Instance]) -> list[str]:
    """Each prompt minus the prefix and suffix shared by every prompt of the file.

    That shared part is the instruction template ("... correct answer to the question \\"",
    "\\""), which is what differs between an original and a negated file.
    """
    prompts = [i.prompt for i in instances]
    if len(prompts) == 1:
        return [p.strip() for p in prompts]
    first, last = min(prompts), max(prompts)
    n = 0
    while n < min(len(first), len(last)) and first[n] == last[n]:
        n += 1
    rev = [p[n:][::-1] for p in prompts]
    rf, rl = min(rev), max(rev)
    m = 0
    while m < min(len(rf), len(rl)) and rf[m] == rl[m]:
        m += 1
    return [p[n: len(p) - m].strip() for p in prompts]


def _pair(ref: list[Instance], ref_file: str, other: list[Instance], other_file: str,
          pair_by: str) -> list[Instance]:
    """Give ``other``'s items the source_id of their partner in ``ref``; check both sides match."""
    hint = "" if pair_by == "prompt" else "; if the files number items differently, use --pair-by prompt"
    if pair_by == "sample_id":
        keys_ref = [i.source_id for i in ref]
        keys_other = [i.source_id for i in other]
        what = "sample_ids"
    else:
        keys_ref = _prompt_bodies(ref)
        keys_other = _prompt_bodies(other)
        what = "questions (prompt minus the shared instruction)"
        for keys, f in ((keys_ref, ref_file), (keys_other, other_file)):
            seen: set[str] = set()
            for k in keys:
                if k in seen:
                    raise UserError(f"{f}: --pair-by prompt: question {k[:50]!r} occurs twice; cannot pair")
                seen.add(k)
    idx_ref = {k: i for k, i in zip(keys_ref, ref)}
    idx_other = {k: i for k, i in zip(keys_other, other)}
    only_ref = [k for k in keys_ref if k not in idx_other]
    only_other = [k for k in keys_other if k not in idx_ref]
    if only_ref or only_other:
        example = (only_other or only_ref)[0]
        raise UserError(
            f"{other_file}: {what} do not match {ref_file} ({len(only_ref)} only in the first, "
            f"{len(only_other)} only in the second, e.g. {example[:50]!r}){hint}"
        )
    out = []
    for k, inst in zip(keys_other, other):
        partner = idx_ref[k]
        if sorted(partner.options) != sorted(inst.options):
            raise UserError(
                f"{other_file}: item {inst.source_id}: options differ from {ref_file} item "
                f"{partner.source_id}; the files do not hold the same items{hint}"
            )
        meta = dict(inst.meta, sample_id=inst.source_id)
        out.append(replace(inst, source_id=partner.source_id, meta=meta))
    return out


def load_csv_set(name: str, files: dict[str, str], pair_by: str = "sample_id",
                 limit: Optional[int] = None) -> list[Instance]:
    """Instances of one paper-format set: ``files`` maps variant -> CSV path.

    Every file is paired against the original one (or the first given) by ``pair_by``;
    ``limit`` keeps the first N items of that reference file and their partners.
    """
    if pair_by not in PAIR_BY:
        raise UserError(f"pair-by {pair_by!r}: use sample_id or prompt")
    if not files:
        raise UserError(f"csv set {name}: no files")
    loaded: dict[str, list[Instance]] = {}
    for variant, path in files.items():
        rows = read_paper_csv(path, variant=variant, task=name)
        loaded[variant] = [replace(i, meta=dict(i.meta, file=str(path), sample_id=i.source_id)) for i in rows]
    ref_variant = "original" if "original" in loaded else next(iter(loaded))
    ref = loaded[ref_variant]
    keep: Optional[set[str]] = None
    if limit is not None:
        keep = {i.source_id for i in ref[:limit]}
    out: list[Instance] = []
    for variant, rows in loaded.items():
        if variant != ref_variant:
            rows = _pair(ref, files[ref_variant], rows, files[variant], pair_by)
        if keep is not None:
            rows = [i for i in rows if i.source_id in keep]
        out.extend(rows)
    return out


def parse_csv_args(specs: Sequence[str], pair_by: str = "sample_id") -> list[tuple[str, dict[str, str], str]]:
    """``[VARIANT=]FILE`` strings -> [(set name, {variant: file}, pair_by)] in first-seen order."""
    sets: dict[str, dict[str, str]] = {}
    for spec in specs:
        variant, sep, path = spec.partition("=")
        if not sep:
            variant, path = "", spec
        if not path:
            raise UserError(f"--csv {spec!r}: expected [VARIANT=]FILE")
        if not Path(path).is_file():
            raise UserError(f"{path}: file not found")
        variant = variant or guess_variant(path)
        if variant not in ("original", "negated", "instruction_free"):
            raise UserError(f"--csv {spec!r}: unknown variant {variant!r} (original, negated, instruction_free)")
        name = set_name(path)
        files = sets.setdefault(name, {})
        if variant in files:
            raise UserError(f"--csv {path}: set {name!r} already has a {variant} file ({files[variant]})")
        files[variant] = path
    return [(name, files, pair_by) for name, files in sets.items()]


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
    if cfg.tasks:
        out += _limit_per_task(list(build_eval_instances(cfg, recipe.seed, recipe.data.cache_dir)), limit)
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


