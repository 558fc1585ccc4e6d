"""Build prompt instances from a recipe's data section; ``negtune build-data``.

Pipeline per task: read rows (local files or hub, ``negtune.data.sources``) → parse each
row into an ``Item`` (``negtune.data.tasks``) → complete options for QA tasks and LAMBADA
(seeded) → sample at most ``max_instances`` items (seeded) → render each requested prompt
variant (``negtune.data.variants``) → ``Instance`` records.

Every random choice is a pure function of ``(seed, task, item id, purpose)`` through
sha256 (``seeded_int``), never of the item's position or of the cap, so the same recipe and
seed give byte-identical files and raising the cap only adds items:

- cap: items are ranked by ``seeded_int(seed, task, "sample", salt, id)`` and the lowest
  ``max_instances`` are kept, then emitted in source order (salt: "pairs" when pairing,
  else the variant name, so unpaired variants draw different items);
- negated training target on 3+-option tasks: ``wrong[seeded_int(seed, task, id) % len(wrong)]``
  (``negated_target: all_wrong`` emits one instance per wrong option instead);
- LAMBADA: 3 distinct words of the passage other than the target (case-insensitive) drawn
  with ``random.Random(seeded_int(seed, task, "lambada", id))``, then the 4 options shuffled
  by the same generator; each word capitalised (" Cutter");
- QA: one distractor from the split's other gold answers, skipping any that normalise
  (lower-case, no punctuation/articles/extra spaces) to one of this question's answers;
  gold first or second by the same seeded generator.
"""
from __future__ import annotations

import argparse
import hashlib
import random
import re
import string
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

from negtune.data.instances import Instance
from negtune.data.sources import SourceRows, load_hub, read_local
from negtune.data.tasks import Item, TaskSpec, cap_first, fmt_option, get_task
from negtune.data.variants import Variant, get_variant
from negtune.errors import UserError

FORMAT = "negtune-instances/1"


def seeded_int(*parts: Any) -> int:
    """A 64-bit integer that depends only on ``parts`` (stable across runs and machines)."""
    text = "\x1f".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


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


_PUNCT = set(string.punctuation) | set("“”‘’«»…–—")
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_NO_PUNCT = str.maketrans("", "", "".join(sorted(_PUNCT)))


def normalize_answer(text: str) -> str:
    """SQuAD-style answer normalisation: lower-case, no punctuation, articles or extra spaces."""
    text = text.lower().translate(_NO_PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


_WORD_STRIP = "".join(sorted(_PUNCT))


def passage_words(context: str) -> list[str]:
    """Distinct (case-insensitive) words of a passage, first spelling kept, in passage order.

    A word is a whitespace token with its surrounding punctuation stripped that contains a
    letter; clitics of the tokenised LAMBADA text ('s, 'll, n't) are not words.
    """
    seen: dict[str, str] = {}
    for token in context.split():
        if token[0] in "'’" or token.lower() in ("n't", "n’t"):  # clitics of tokenised text: 's 'll n't
            continue
        word = token.strip(_WORD_STRIP)
        if word and any(ch.isalpha() for ch in word) and word.lower() not in seen:
            seen[word.lower()] = word
    return list(seen.values())


def _complete_lambada(items: list[Item], seed: int, task: str) -> None:
    for item in items:
        gold = item.answers[0]
        pool = [w for w in passage_words(item.fields["context"]) if w.lower() != gold.lower()]
        # Different spellings of one word (e.g. "Cutter"/"cutter") were merged above.
        if len(pool) < 3:
            raise UserError(f"{item.where}: passage has fewer than 3 distinct words besides the target {gold!r}")
        rng = random.Random(seeded_int(seed, task, "lambada", item.id))
        words = [gold] + rng.sample(pool, 3)
        order = list(range(4))
        rng.shuffle(order)
        item.options = tuple(" " + cap_first(words[i]) for i in order)
        item.answer = order.index(0)


def _complete_qa(items: list[Item], seed: int, task: str) -> None:
    pool_by_norm: dict[str, str] = {}
    for item in items:
        norm = normalize_answer(item.answers[0])
        pool_by_norm.setdefault(norm, item.answers[0])
    pool_keys = sorted(pool_by_norm)  # independent of item order
    pool_opts = [fmt_option(pool_by_norm[k]) for k in pool_keys]
    for item in items:
        banned = {normalize_answer(a) for a in item.answers}
        gold_opt = fmt_option(item.answers[0])
        rng = random.Random(seeded_int(seed, task, "distractor", item.id))
        start = rng.randrange(len(pool_keys))
        distractor = None
        for step in range(len(pool_keys)):
            k = (start + step) % len(pool_keys)
            if pool_keys[k] not in banned and pool_opts[k] != gold_opt:
                distractor = pool_opts[k]
                break
        if distractor is None:
            raise UserError(
                f"{item.where}: no distractor: every other answer in the split is an alias of this one "
                "(the split needs at least two questions with different answers)"
            )
        if rng.random() < 0.5:
            item.options, item.answer = (gold_opt, distractor), 0
        else:
            item.options, item.answer = (distractor, gold_opt), 1


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
    if spec.kind == "lambada":
        _complete_lambada(items, seed, spec.name)
    elif spec.kind == "qa":
        _complete_qa(items, seed, spec.name)
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


def check_names(tasks: list[str], variants: list[str], section: str, prefix: str = "") -> None:
    """Every task is registered and defines every variant. Recipe loading calls this, so a
    typo fails before anything is loaded; the builders call it again for direct API use."""
    for i, task in enumerate(tasks):
        get_task(task, where=f"{prefix}{section}.tasks[{i}]")
        for j, name in enumerate(variants):
            get_variant(task, name, where=f"{prefix}{section}.variants[{j}]")
    if len(set(tasks)) != len(tasks):
        raise UserError(f"{prefix}{section}.tasks: lists a task twice")


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
    with atomic_dir(out_dir) as tmp:
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

    parser = argparse.ArgumentParser(
        prog="negtune build-data",
        description="Build prompt instances (instances.jsonl + manifest.json) from a recipe's data section.",
    )
    parser.add_argument("recipe", help="recipe YAML file")
    parser.add_argument("overrides", nargs="*", help="key.path=value overrides, e.g. data.max_instances=100")
    parser.add_argument("--out", default=None, help="output directory (default: <output_dir>/data)")
    args = parser.parse_intermixed_args(sys.argv[1:] if argv is None else argv)
    recipe = load_recipe(args.recipe, args.overrides)
    out = Path(args.out) if args.out else Path(recipe.output_dir) / "data"
    built = build_dataset(recipe.data, recipe.seed)
    manifest = write_dataset(built.instances, out, recipe, sources=built.sources)
    parts = ", ".join(
        f"{task}: " + "/".join(f"{v} {n}" for v, n in per.items()) for task, per in manifest["counts"].items()
    )
    print(f"wrote {manifest['total']} instances to {out}/instances.jsonl ({parts})")
    return 0


if __name__ == "__main__":
    from negtune.errors import exit_on_user_error

    sys.exit(exit_on_user_error(lambda: main()))
