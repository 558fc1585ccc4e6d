"""Few-shot (in-context) demonstrations: where they come from, and which ones each item gets.

Why here and not in the scorer: choosing demonstrations is data work (sources, exclusions,
seeds); rendering them into the context is ``negtune.evaluation.prompting``; running a shared
demonstration prefix once is the scorer's job. This module only attaches to every evaluated
``Instance`` the demonstrations it will be shown (``meta["demos"]``: ``[prompt, answer]``
pairs, and ``meta["demo_ids"]``).

Rules (the paper's ICL setting, with lm-evaluation-harness's conventions where it has one):

* A pool of demonstration items per evaluated set comes from ``eval.fewshot.source``:
  ``train`` (the registry task's training split: ``eval.fewshot.files``, else ``data.files``,
  else the hub), ``eval`` (the evaluation set itself) or ``csv`` (paper-format files given
  per set in ``eval.fewshot.csv``). A paper CSV set uses the registry task its file name names
  (``piqa_generate`` -> ``piqa``), whose templates render its prompts exactly.
* A demonstration is rendered with the *same variant* as the evaluated prompt. Its answer is
  the option a model following that instruction gives: the gold option under ``original``,
  and under ``negated`` a wrong option (the seeded one of the gold set, as in training), so
  the demonstrations show the negated instruction being followed.
* Never the evaluated item itself (same id in the same collection) nor any item whose
  question text (the prompt minus its instruction template, whitespace and case folded)
  equals the evaluated item's.
* Selection is a pure function of ``(seed, task, item id)`` through sha256
  (``negtune.data.seeded``): ``fixed`` ranks the pool once per task and gives every item the
  first k eligible demonstrations (so nearly all items share one prefix; an item that would
  be shown itself gets the next eligible one); ``per_item`` draws for each item. The original
  and the negated prompt of an item get the same demonstration items.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from negtune.data.instances import Instance
from negtune.data.seeded import seeded_int
from negtune.data.tasks import TASKS
from negtune.errors import UserError

VARIANT_ORDER = ("original", "negated", "instruction_free")


@dataclass(frozen=True)
class Demo:
    id: str
    question: str  # normalised question text, for the exclusion rule
    prompts: dict[str, str]  # variant -> rendered prompt
    answers: dict[str, str]  # variant -> the option that follows that variant's instruction


@dataclass
class Pool:
    demos: list[Demo]
    same_collection: bool  # demo ids are evaluation ids (so the evaluated item must be skipped by id)
    origin: str  # described in errors and in the results file


def registry_task(name: str) -> Optional[str]:
    """The registry task of an evaluated set: itself, or the task a paper CSV set's name names."""
    from negtune.data.paper_csv import guess_task_from_filename

    return name if name in TASKS else guess_task_from_filename(name)


def question_text(task: Optional[str], variant: str, prompt: str) -> str:
    """The prompt minus the literal text of the variant's template around its fields, with
    whitespace collapsed and case folded: what two prompts of the same question share."""
    body = prompt
    spec = TASKS.get(task) if task else None
    template = spec.variants[variant].template if spec and variant in spec.variants else None
    if template and "{" in template:
        prefix, suffix = template[: template.find("{")], template[template.rfind("}") + 1:]
        if prefix and body.startswith(prefix):
            body = body[len(prefix):]
        if suffix and body.endswith(suffix):
            body = body[: -len(suffix)]
    return " ".join(body.split()).casefold()


def _answer(options: Sequence[str], gold: Sequence[int], seed: int, task: str, item_id: str) -> str:
    from negtune.data.build import seeded_target

    return options[seeded_target(tuple(gold), seed, task, item_id)]


# --------------------------------------------------------------------------- pools


def pool_from_instances(instances: Sequence[Instance], seed: int, task: Optional[str]) -> list[Demo]:
    """Demonstrations from rendered instances (paired variants share a source_id)."""
    by_id: dict[str, dict[str, Instance]] = {}
    for inst in instances:
        by_id.setdefault(inst.source_id, {})[inst.variant] = inst
    demos = []
    for sid, per in by_id.items():
        first = next(v for v in VARIANT_ORDER + tuple(per) if v in per)
        demos.append(Demo(
            id=sid, question=question_text(task, first, per[first].prompt),
            prompts={v: i.prompt for v, i in per.items()},
            answers={v: _answer(i.options, i.gold, seed, i.task, sid) for v, i in per.items()}))
    return demos


def _pool_from_split(task: str, split: str, files: Any, seed: int, cache_dir: Optional[str],
                     variants: Sequence[str]) -> tuple[list[Demo], str]:
    from negtune.data.build import gold_indices, load_items
    from negtune.data.tasks import get_variant

    items, fp = load_items(task, split, files, seed, cache_dir, key="eval.fewshot.files")
    demos = []
    for item in items:
        prompts, answers = {}, {}
        for name in variants:
            variant = get_variant(task, name, where="eval.variants")
            prompts[name] = variant.render(item.fields)
            answers[name] = _answer(item.options, gold_indices(item, variant), seed, task, item.id)
        first = next(v for v in VARIANT_ORDER + tuple(variants) if v in prompts)
        demos.append(Demo(item.id, question_text(task, first, prompts[first]), prompts, answers))
    where = "local files" if fp.get("kind") == "local" else "the hub"
    return demos, f"{task} {split} split ({where}, {len(demos)} items)"


def build_pools(instances: Sequence[Instance], fewshot: Any, *, eval_split: str = "validation",
                data_files: Optional[dict[str, Any]] = None, cache_dir: Optional[str] = None) -> dict[str, Pool]:
    """One demonstration pool per evaluated set (``Instance.task``), per ``eval.fewshot``."""
    from negtune.evaluation.csv_sets import load_csv_set

    pools: dict[str, Pool] = {}
    by_task: dict[str, list[Instance]] = {}
    for inst in instances:
        by_task.setdefault(inst.task, []).append(inst)
    for name, rows in by_task.items():
        reg = registry_task(name)
        variants = list(dict.fromkeys(i.variant for i in rows))
        if fewshot.source == "eval":
            pools[name] = Pool(pool_from_instances(rows, fewshot.seed, reg), True, f"{name} (the evaluation set)")
        elif fewshot.source == "csv":
            files = fewshot.csv.get(name)
            if not files:
                raise UserError(f"eval.fewshot.csv: no demonstration files for set {name!r} "
                                f"(sets: {', '.join(fewshot.csv) or 'none'})")
            eval_files = {str(Path(i.meta["file"]).resolve()) for i in rows if i.meta.get("file")}
            same = any(str(Path(f).resolve()) in eval_files for f in files.values())
            demo_rows = load_csv_set(name, dict(files))
            pools[name] = Pool(pool_from_instances(demo_rows, fewshot.seed, reg), same,
                               f"{name} demonstration files ({', '.join(files.values())})")
        else:
            if reg is None:
                raise UserError(f"eval.fewshot.source: set {name!r} is not a registry task, so it has no training "
                                "split; use source eval (its own items) or csv (demonstration files)")
            files = (fewshot.files or {}).get(reg) or (fewshot.files or {}).get(name) or (data_files or {}).get(reg)
            demos, origin = _pool_from_split(reg, fewshot.split, files, fewshot.seed, cache_dir, variants)
            pools[name] = Pool(demos, name == reg and fewshot.split == eval_split, origin)
    return pools


# --------------------------------------------------------------------------- selection


def _ranked(n: int, key: Callable[[int], int]) -> list[int]:
    return sorted(range(n), key=lambda j: (key(j), j))


def _draw(pool: Pool, k: int, eligible: Callable[[Demo], bool], seed: int, task: str, item: str) -> list[Demo]:
    """k eligible demonstrations in a seeded order that depends on (seed, task, item) only."""
    demos = pool.demos
    n = len(demos)
    if n > 4 * k + 16:  # large pools: hash a counter instead of ranking every demonstration
        chosen: list[Demo] = []
        seen: set[int] = set()
        for t in range(20 * k + 100):
            j = seeded_int(seed, task, "fewshot", item, t) % n
            if j not in seen:
                seen.add(j)
                if eligible(demos[j]):
                    chosen.append(demos[j])
                    if len(chosen) == k:
                        return chosen
    order = _ranked(n, lambda j: seeded_int(seed, task, "fewshot", item, demos[j].id))
    return list(islice((demos[j] for j in order if eligible(demos[j])), k))


def attach_demos(instances: Sequence[Instance], pools: dict[str, Pool], k: int, sampling: str,
                 seed: int) -> list[Instance]:
    """Each instance with its k demonstrations in ``meta["demos"]`` / ``meta["demo_ids"]``."""
    if k <= 0:
        return list(instances)
    fixed_order: dict[str, list[Demo]] = {}
    out = []
    for inst in instances:
        pool = pools[inst.task]
        reg = registry_task(inst.task)
        question = question_text(reg, inst.variant, inst.prompt)

        def eligible(d: Demo) -> bool:
            return (inst.variant in d.prompts and d.question != question
                    and not (pool.same_collection and d.id == inst.source_id))

        if not any(inst.variant in d.prompts for d in pool.demos[:1]):
            raise UserError(f"eval.fewshot: set {inst.task}: the demonstration pool ({pool.origin}) has no "
                            f"{inst.variant} prompts")
        if sampling == "fixed":
            if inst.task not in fixed_order:
                fixed_order[inst.task] = [pool.demos[j] for j in _ranked(
                    len(pool.demos), lambda j: seeded_int(seed, inst.task, "fewshot", "fixed", pool.demos[j].id))]
            chosen = list(islice((d for d in fixed_order[inst.task] if eligible(d)), k))
        else:
            chosen = _draw(pool, k, eligible, seed, inst.task, inst.source_id)
        if len(chosen) < k:
            raise UserError(f"eval.fewshot.k: {k} demonstrations requested for {inst.task} item {inst.source_id}, "
                            f"but the pool ({pool.origin}) has only {len(chosen)} other usable items")
        meta = dict(inst.meta, demo_ids=[d.id for d in chosen],
                    demos=[[d.prompts[inst.variant], d.answers[inst.variant]] for d in chosen])
        out.append(replace(inst, meta=meta))
    return out


def add_fewshot(instances: Sequence[Instance], fewshot: Any, *, pool_instances: Optional[Sequence[Instance]] = None,
                eval_split: str = "validation", data_files: Optional[dict[str, Any]] = None,
                cache_dir: Optional[str] = None) -> list[Instance]:
    """``instances`` with their demonstrations attached per ``eval.fewshot`` (unchanged when k is 0).

    ``pool_instances``: the whole evaluation set when ``instances`` is a ``--limit`` of it, so
    that ``source: eval`` draws from the same pool (and the same demonstrations) whatever the limit.
    """
    if fewshot is None or fewshot.k == 0:
        return list(instances)
    source = pool_instances if fewshot.source == "eval" and pool_instances is not None else instances
    pools = build_pools(source, fewshot, eval_split=eval_split, data_files=data_files, cache_dir=cache_dir)
    return attach_demos(instances, pools, fewshot.k, fewshot.sampling, fewshot.seed)


def describe(fewshot: Any) -> str:
    """One line for the results file: where the demonstrations came from."""
    if fewshot.source == "csv":
        return "csv: " + "; ".join(f"{n}: " + ", ".join(f"{v}={p}" for v, p in f.items())
                                   for n, f in fewshot.csv.items())
    if fewshot.source == "train":
        return f"train: split {fewshot.split}"
    return "eval: the evaluation set itself"
