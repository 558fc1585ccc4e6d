"""Build prompt instances from a recipe's data section; ``negtune build-data``.

Pipeline per task: read rows (local files, the hub, or a hub mirror: ``negtune.data.sources``)
-> parse each row into an ``Item`` (the task entry's ``parse``) and merge repeated ids
(``negtune.data.reader``) -> drop the items an evaluation set of the recipe also holds
(``negtune.data.overlap``, ``data.on_overlap``) -> complete options where the task's source
gives answers only (its ``complete_options`` rule, ``negtune.data.options``; the QA pool is the
training answers minus every evaluation answer) -> sample at most ``max_instances`` items
(seeded) -> render each requested prompt variant -> ``Instance`` records.

What was read and kept is reported per task (``Built.report``, the manifest's ``report``, the
printed summary): source, split, revision, rows read, duplicates merged, overlaps dropped,
items, items sampled, instances written; plus warnings (a hub split whose size differs from
its dataset card's).

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

from negtune.data.instances import Instance, Item
from negtune.data.options import OptionRules
from negtune.data.overlap import EvalRefs, collect_eval_refs, drop_overlaps
from negtune.data.reader import ItemReader, ReadItems, describe_source
from negtune.data.seeded import seeded_int
from negtune.data.tasks import check_names, get_task, get_variant
from negtune.data.variants import Variant
from negtune.errors import ArgParser, UserError

FORMAT = "negtune-instances/1"


# --------------------------------------------------------------------------- loading items


def complete(task: str, items: list[Item], seed: int, rules: OptionRules) -> None:
    """Add the options of answer-only tasks (LAMBADA, QA) in place."""
    spec = get_task(task)
    if spec.complete_options is not None:
        spec.complete_options(items, seed, spec.name, rules)
    for item in items:
        if len(set(item.options)) == 1:  # nothing to rank: every answer would count as the model's pick
            raise UserError(f"{item.where}: all {len(item.options)} options are identical ({item.options[0]!r})")


@dataclass
class _TrainingData:
    """Where a QA pool's training answers come from when no DataConfig is given."""

    split: str = "train"
    files: dict[str, Any] = field(default_factory=dict)


def _lambada(data: Any) -> Any:
    return getattr(data, "lambada_distractors", "paper")


def load_items(
    task: str,
    split: str,
    files: Any,
    seed: int,
    cache_dir: Optional[str] = None,
    key: str = "data.files",
    data: Any = None,
) -> tuple[list[Item], dict[str, Any]]:
    """All items of ``task`` (in source order, options complete) and the source fingerprint.

    QA distractors come from the training answers of ``data`` (a DataConfig); without one,
    training items (``key`` under ``data``) draw from their own split's answers and evaluation
    items from the hub's train split. No evaluation answers are removed here (no recipe names
    them): ``build_dataset`` / ``build_eval_dataset`` do that.
    """
    section = key.rsplit(".", 1)[0]
    reader = ItemReader.for_data(data, cache_dir)
    got = reader.read(task, split, files, section)
    items = got.copies()
    if data is None and section == "data":
        data = _TrainingData(split, {task: files} if files else {})
    complete(task, items, seed, reader.option_rules(task, data, (), _lambada(data)))
    return items, got.fingerprint


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
    report: dict[str, dict[str, Any]] = field(default_factory=dict)  # task -> what was read and kept
    warnings: list[str] = field(default_factory=list)


def _report(got: ReadItems, dropped: int, items: int, sampled: int, instances: int,
            compared: list[str]) -> dict[str, Any]:
    fp = got.fingerprint
    return {
        "source": describe_source(fp),
        "split": fp.get("split", got.split) if fp.get("kind") == "hub" else got.split,
        "revision": fp.get("revision"),
        "rows": got.rows,
        "duplicates_merged": got.merged,
        "overlaps_dropped": dropped,
        "items": items,
        "sampled": sampled,
        "instances": instances,
        "compared_with": compared,
    }


def _warnings(reader: ItemReader) -> list[str]:
    return [w for w in dict.fromkeys(r.fingerprint.get("warning") for r in reader.reads()) if w]


def build_dataset(cfg: Any, seed: int, eval_cfg: Any = None) -> Built:
    """Training instances for a ``DataConfig`` plus what was read, per task.

    ``eval_cfg`` (the recipe's ``eval`` section) names the evaluation sets: training items they
    hold are dropped or refused (``cfg.on_overlap``) and their answers leave the QA pool.
    """
    check_names(cfg.tasks, cfg.variants, "data")
    reader = ItemReader.for_data(cfg)
    refs = collect_eval_refs(eval_cfg, reader, cfg.tasks)
    instances: list[Instance] = []
    sources: dict[str, dict[str, Any]] = {}
    report: dict[str, dict[str, Any]] = {}
    all_wrong = cfg.negated_target == "all_wrong"
    for task in cfg.tasks:
        got = reader.read(task, cfg.split, cfg.files.get(task), "data")
        items, dropped = drop_overlaps(task, got.copies(), refs, getattr(cfg, "on_overlap", "drop"))
        complete(task, items, seed, reader.option_rules(task, cfg, refs.answers.get(task, ()), _lambada(cfg)))
        sources[task] = got.fingerprint
        before = len(instances)
        used: set[str] = set()
        if cfg.pairs:
            for item in select(items, cfg.max_instances, seed, task, "pairs"):
                used.add(item.id)
                for name in cfg.variants:
                    instances += make_instances(task, item, name, seed, all_wrong)
        else:
            for name in cfg.variants:
                for item in select(items, cfg.max_instances, seed, task, name):
                    used.add(item.id)
                    instances += make_instances(task, item, name, seed, all_wrong)
        report[task] = _report(got, dropped, len(items), len(used), len(instances) - before,
                               refs.sets.get(task, []))
    return Built(instances, sources, report, _warnings(reader))


def build_instances(cfg: Any, seed: int, eval_cfg: Any = None) -> list[Instance]:
    """Training instances for a ``DataConfig``, in a deterministic order (task, then item/variant)."""
    return build_dataset(cfg, seed, eval_cfg).instances


def build_eval_dataset(cfg: Any, seed: int, cache_dir: Optional[str] = None, data: Any = None) -> Built:
    """Evaluation instances of ``cfg.tasks`` from ``cfg.split`` / ``cfg.files``.

    ``data`` (the recipe's DataConfig) is where QA distractors come from (its training answers
    minus every answer of the evaluation sets ``cfg`` names: the paper's rule; None: the hub's
    train split) and the hub settings (``cache_dir``, ``hub_mirror``) and LAMBADA rule.
    """
    check_names(cfg.tasks, cfg.variants, "eval")
    reader = ItemReader.for_data(data, cache_dir)
    qa = [t for t in cfg.tasks if get_task(t).answer_pool]
    refs = collect_eval_refs(cfg, reader, qa) if qa else EvalRefs()
    instances: list[Instance] = []
    sources: dict[str, dict[str, Any]] = {}
    report: dict[str, dict[str, Any]] = {}
    for task in cfg.tasks:
        got = reader.read(task, cfg.split, cfg.files.get(task), "eval")
        items = got.copies()
        complete(task, items, seed, reader.option_rules(task, data, refs.answers.get(task, ()), _lambada(data)))
        sources[task] = got.fingerprint
        before = len(instances)
        chosen = select(items, cfg.max_instances, seed, task, "pairs")
        for item in chosen:
            for name in cfg.variants:
                instances += make_instances(task, item, name, seed, key="eval.variants")
        report[task] = _report(got, 0, len(items), len(chosen), len(instances) - before, [])
    return Built(instances, sources, report, _warnings(reader))


def build_eval_instances(cfg: Any, seed: int, cache_dir: Optional[str] = None, data: Any = None) -> list[Instance]:
    """One instance per item per variant for an ``EvalConfig`` (same items under every variant).

    The target of a negated 3+-option item is the seeded gold index (the gold set is what
    evaluation uses). ``cache_dir``: where hub data sets are cached (pass ``recipe.data.cache_dir``);
    ``data``: the recipe's DataConfig (see ``build_eval_dataset``).
    """
    return build_eval_dataset(cfg, seed, cache_dir, data).instances


# --------------------------------------------------------------------------- files


def source_fingerprints(cfg: Any, seed: int = 0) -> dict[str, dict[str, Any]]:
    """Fingerprints of a DataConfig's sources without building (hashes files, or asks the hub)."""
    reader = ItemReader.for_data(cfg)
    return {task: reader.rows(get_task(task), cfg.split, cfg.files.get(task), "data").fingerprint
            for task in cfg.tasks}


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
    report: Optional[dict[str, dict[str, Any]]] = None,
    warnings: Sequence[str] = (),
) -> dict[str, Any]:
    """Write instances.jsonl + manifest.json + recipe.resolved.yaml into ``out_dir`` atomically.

    The directory appears complete or not at all (an existing one is replaced). Returns the
    manifest. ``sources`` defaults to re-fingerprinting ``recipe.data``'s sources; ``report``
    and ``warnings`` are ``Built.report`` / ``Built.warnings`` (what was read and kept per task).
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
            "on_overlap": getattr(data, "on_overlap", "drop"),
            "lambada_distractors": getattr(data, "lambada_distractors", "paper"),
            "counts": counts(instances),
            "total": len(instances),
            "sources": sources,
            "report": report or {},
            "warnings": list(warnings),
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
    built = build_dataset(recipe.data, recipe.seed, recipe.eval)  # checked first, written after: bad input writes nothing
    if not args.out:
        claim_dir(recipe.output_dir, "run", "run directory (output_dir)")
    manifest = write_dataset(built.instances, out, recipe, sources=built.sources, report=built.report,
                             warnings=built.warnings)
    for line in summary_lines(built):
        print(line)
    parts = ", ".join(
        f"{task}: " + "/".join(f"{v} {n}" for v, n in per.items()) for task, per in manifest["counts"].items()
    )
    print(f"wrote {manifest['total']} instances to {out}/instances.jsonl ({parts})")
    return 0


def summary_lines(built: Built) -> list[str]:
    """One line per task: what was read and kept (warnings went to stderr when read)."""
    lines = []
    for task, r in built.report.items():
        lines.append(
            f"{task}: {r['source']}: {r['rows']} rows, {r['duplicates_merged']} duplicates merged, "
            f"{r['overlaps_dropped']} overlaps dropped, {r['items']} items, {r['sampled']} sampled, "
            f"{r['instances']} instances"
        )
    return lines


if __name__ == "__main__":
    from negtune.errors import exit_on_user_error

    sys.exit(exit_on_user_error(lambda: main()))
