"""Build prompt instances from a recipe's data section; ``negtune build-data``.

Pipeline per task: read rows (local files or hub, ``negtune.data.sources``) -> parse each
row into an ``Item`` (the task entry's ``parse``, ``negtune.data.tasks``) -> complete options
where the task's source gives answers only (its ``complete_options`` rule,
``negtune.data.options``) -> sample at most ``max_instances`` items (seeded) -> render each
requested prompt variant (the task entry's ``variants``) -> ``Instance`` records.

Every random choice is a pure function of ``(seed, task, item id, purpose)`` through
sha256 (``negtune.data.seeded``), never of the item's position or of the cap, so the same
recipe and seed give byte-identical files and raising the cap only adds items:

- cap: items are ranked by ``seeded_int(seed, task, "sample", salt, id)`` and the lowest
  ``max_instances`` are kept, then emitted in source order (salt: "pairs" when pairing,
  else the variant name, so unpaired variants draw different items);
- negated training target on 3+-option tasks: ``wrong[seeded_int(seed, task, id) % len(wrong)]``
  (``negated_target: all_wrong`` emits one instance per wrong option instead).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

from negtune.data.instances import Instance, Item
from negtune.data.seeded import seeded_int
from negtune.data.sources import SourceRows, load_hub, read_local
from negtune.data.tasks import TaskSpec, check_names, get_task, get_variant
from negtune.data.variants import Variant
from negtune.errors import ArgParser, UserError

FORMAT = "negtune-instances/1"


# --------------------------------------------------------------------------- loading items


def load_rows(spec: TaskSpec, split: str, files: Any, cache_dir: Optional[str], key: str) -> SourceRows:
    if files:
        return read_local(files, spec.fields, key=f"{key}.{spec.name}")
    if spec.hub is None:
        raise UserError(
            f"{key}.{spec.name}: required: task {spec.name!r} has no hub source; "
            f"point it at local files with fields {spec.schema_doc}"
        )
    return load_hub(
        spec.hub.path,
        spec.hub.name,
        spec.hub.split_for(split),
        revision=spec.hub.revision,
        cache_dir=cache_dir,
        label=spec.name,
    )


def load_items(
    task: str,
    split: str,
    files: Any,
    seed: int,
    cache_dir: Optional[str] = None,
    key: str = "data.files",
) -> tuple[list[Item], dict[str, Any]]:
    """All items of ``task`` (in source order, options complete) and the source fingerprint."""
    spec = get_task(task, where=f"{key.rsplit('.', 1)[0]}.tasks")
    src = load_rows(spec, split, files, cache_dir, key)
    if not src.rows:
        raise UserError(f"{key}.{task}: no rows (empty split)")
    items = [spec.parse(row, where, i) for i, (where, row) in enumerate(src.rows)]
    first: dict[str, str] = {}
    for item in items:
        if item.id in first:
            raise UserError(f"{item.where}: duplicate id {item.id!r} (first seen at {first[item.id]})")
        first[item.id] = item.where
    if spec.complete_options is not None:
        spec.complete_options(items, seed, spec.name)
    for item in items:
        if len(set(item.options)) == 1:  # nothing to rank: every answer would count as the model's pick
            raise UserError(f"{item.where}: all {len(item.options)} options are identical ({item.options[0]!r})")
    return items, src.fingerprint


def select(items: Sequence[Item], cap: Optional[int], seed: int, task: str, salt: str) -> list[Item]:
    """At most ``cap`` items chosen by seeded rank, returned in source order."""
    if cap is None or cap >= len(items):
        return list(items)
    ranked = sorted(range(len(items)), key=lambda i: (seeded_int(seed, task, "sample", salt, items[i].id), i))
    keep = sorted(ranked[:cap])
    return [items[i] for i in keep]


# --------------------------------------------------------------------------- instances


def gold_indices(item: Item, variant: Variant) -> tuple[int, ...]:
    n = len(item.options)
    if variant.negated:
        return tuple(i for i in range(n) if i != item.answer)
    return (item.answer,)


def seeded_target(gold: tuple[int, ...], seed: int, task: str, item_id: str) -> int:
    """The one option trained on when several are correct: ``gold[h(seed, task, id) % len]``."""
    if len(gold) == 1:
        return gold[0]
    return gold[seeded_int(seed, task, item_id) % len(gold)]


def make_instances(
    task: str, item: Item, variant_name: str, seed: int, all_wrong: bool = False, key: str = "data.variants"
) -> list[Instance]:
    variant = get_variant(task, variant_name, where=key)
    prompt = variant.render(item.fields)
    gold = gold_indices(item, variant)
    targets = list(gold) if (all_wrong and variant.negated) else [seeded_target(gold, seed, task, item.id)]
    return [
        Instance(
            task=task,
            source_id=item.id,
            variant=variant_name,
            prompt=prompt,
            options=tuple(item.options),
            target=t,
            gold=gold,
        )
        for t in targets
    ]


@dataclass
class Built:
    instances: list[Instance]
    sources: dict[str, dict[str, Any]]  # task -> fingerprint


def build_dataset(cfg: Any, seed: int) -> Built:
    """Training instances for a ``DataConfig`` plus the source fingerprints."""
    check_names(cfg.tasks, cfg.variants, "data")
    instances: list[Instance] = []
    sources: dict[str, dict[str, Any]] = {}
    all_wrong = cfg.negated_target == "all_wrong"
    for task in cfg.tasks:
        items, fp = load_items(task, cfg.split, cfg.files.get(task), seed, cfg.cache_dir, "data.files")
        sources[task] = fp
        if cfg.pairs:
            for item in select(items, cfg.max_instances, seed, task, "pairs"):
                for name in cfg.variants:
                    instances += make_instances(task, item, name, seed, all_wrong)
        else:
            for name in cfg.variants:
                for item in select(items, cfg.max_instances, seed, task, name):
                    instances += make_instances(task, item, name, seed, all_wrong)
    return Built(instances, sources)


def build_instances(cfg: Any, seed: int) -> list[Instance]:
    """Training instances for a ``DataConfig``, in a deterministic order (task, then item/variant)."""
    return build_dataset(cfg, seed).instances


def build_eval_dataset(cfg: Any, seed: int, cache_dir: Optional[str] = None) -> Built:
    check_names(cfg.tasks, cfg.variants, "eval")
    instances: list[Instance] = []
    sources: dict[str, dict[str, Any]] = {}
    for task in cfg.tasks:
        items, fp = load_items(task, cfg.split, cfg.files.get(task), seed, cache_dir, "eval.files")
        sources[task] = fp
        for item in select(items, cfg.max_instances, seed, task, "pairs"):
            for name in cfg.variants:
                instances += make_instances(task, item, name, seed, key="eval.variants")
    return Built(instances, sources)


def build_eval_instances(cfg: Any, seed: int, cache_dir: Optional[str] = None) -> list[Instance]:
    """One instance per item per variant for an ``EvalConfig`` (same items under every variant).

    The target of a negated 3+-option item is the seeded gold index (the gold set is what
    evaluation uses). ``cache_dir``: where hub data sets are cached (pass ``recipe.data.cache_dir``).
    """
    return build_eval_dataset(cfg, seed, cache_dir).instances


# --------------------------------------------------------------------------- files


def source_fingerprints(cfg: Any, seed: int = 0) -> dict[str, dict[str, Any]]:
    """Fingerprints of a DataConfig's sources without building (hashes files, or asks the hub)."""
    out = {}
    for task in cfg.tasks:
        spec = get_task(task)
        out[task] = load_rows(spec, cfg.split, cfg.files.get(task), cfg.cache_dir, "data.files").fingerprint
    return out


def counts(instances: Iterable[Instance]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for inst in instances:
        per = out.setdefault(inst.task, {})
        per[inst.variant] = per.get(inst.variant, 0) + 1
    return out


def write_dataset(
    instances: Sequence[Instance],
    out_dir: str | Path,
    recipe: Any,
    sources: Optional[dict[str, dict[str, Any]]] = None,
) -> dict[str, Any]:
    """Write instances.jsonl + manifest.json + recipe.resolved.yaml into ``out_dir`` atomically.

    The directory appears complete or not at all (an existing one is replaced). Returns the
    manifest. ``sources`` defaults to re-fingerprinting ``recipe.data``'s sources.
    """
    from negtune.config import recipe_hash, save_resolved
    from negtune.io import atomic_dir, write_json, write_jsonl

    if not instances:
        raise UserError(f"{out_dir}: nothing to write (no instances)")
    if sources is None:
        sources = source_fingerprints(recipe.data, recipe.seed)
    data = recipe.data
    with atomic_dir(out_dir, "data") as tmp:
        sha = write_jsonl(Path(tmp) / "instances.jsonl", (inst.to_json() for inst in instances))
        manifest = {
            "format": FORMAT,
            "seed": recipe.seed,
            "recipe_sha256": recipe_hash(recipe),
            "tasks": list(data.tasks),
            "variants": list(data.variants),
            "split": data.split,
            "max_instances": data.max_instances,
            "pairs": data.pairs,
            "negated_target": data.negated_target,
            "counts": counts(instances),
            "total": len(instances),
            "sources": sources,
            "instances_sha256": sha,
        }
        write_json(Path(tmp) / "manifest.json", manifest)
        save_resolved(recipe, tmp)
    return manifest


def load_instances(path: str | Path) -> list[Instance]:
    """Read ``instances.jsonl`` (or a directory containing it)."""
    import json

    p = Path(path)
    if p.is_dir():
        p = p / "instances.jsonl"
    if not p.is_file():
        raise UserError(f"{p}: file not found")
    out = []
    with open(p, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                out.append(Instance.from_json(json.loads(line)))
            except (ValueError, KeyError, TypeError) as err:
                raise UserError(f"{p}: row {lineno}: not an instance record ({type(err).__name__}: {err})") from None
    if not out:
        raise UserError(f"{p}: no instances")
    return out


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    from negtune.config import load_recipe
    from negtune.io import check_output_dir, claim_dir

    parser = ArgParser(
        prog="negtune build-data",
        description="Build prompt instances (instances.jsonl + manifest.json) from a recipe's data section.",
    )
    parser.add_argument("recipe", help="recipe YAML file")
    parser.add_argument("overrides", nargs="*", help="key.path=value overrides, e.g. data.max_instances=100")
    parser.add_argument("--out", default=None, help="output directory (default: <output_dir>/data)")
    args = parser.parse_intermixed_args(sys.argv[1:] if argv is None else argv)
    recipe = load_recipe(args.recipe, args.overrides)
    if args.out:
        out = check_output_dir(args.out, "data", "data directory")
    else:  # the data directory of the recipe's run
        out = check_output_dir(recipe.output_dir, "run", "run directory (output_dir)") / "data"
    built = build_dataset(recipe.data, recipe.seed)  # checked first, written after: a bad input writes nothing
    if not args.out:
        claim_dir(recipe.output_dir, "run", "run directory (output_dir)")
    manifest = write_dataset(built.instances, out, recipe, sources=built.sources)
    parts = ", ".join(
        f"{task}: " + "/".join(f"{v} {n}" for v, n in per.items()) for task, per in manifest["counts"].items()
    )
    print(f"wrote {manifest['total']} instances to {out}/instances.jsonl ({parts})")
    return 0


if __name__ == "__main__":
    from negtune.errors import exit_on_user_error

    sys.exit(exit_on_user_error(lambda: main()))
