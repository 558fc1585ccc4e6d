"""Train/evaluation overlap: the evaluation items a recipe names, and the training items they hold.

Why: nothing stopped a recipe from training on the items it evaluates on. LAMBADA trains on
one hub split and evaluates on another; StoryCloze has labels only in its validation and test
files, and the paper's own StoryCloze items come from them. The builder therefore compares
every training item with every evaluation set the recipe names (``eval.tasks`` from their
split or ``eval.files``, the paper's files under ``eval.paper_csv_dir``, ``eval.csv`` sets)
and drops (``data.on_overlap: drop``, the default) or refuses (``error``) the matches.

What identifies an item across sources: the text a template shows, not an id (a paper CSV row
numbers items 0..299, a hub row has its own id or none). The key is the item's template fields
(``{question}``, ``{goal}``, ``{premise}`` + ``{connector}``, ``{ctx}``, ``{story}``,
``{context}``) joined in template order, lower-cased, with punctuation and runs of spaces
folded (``norm_text``). A rendered prompt (a CSV row) is read back into its fields with the
task's templates (``Variant.parse``). A prompt no template of the task matches (an
``eval.csv`` file in its own wording) is kept whole, folded, and a training item matches it
when the item's key (of 3 words or more) appears in it as a run of whole words: the instruction
around it is unknown, so containment is the test (conservative: it may also drop a training
item whose whole question is quoted inside another prompt).

The same pass collects every evaluation answer per task: the paper's QA distractor pool
excludes them (``negtune.data.options.complete_qa``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

from negtune.data.instances import Instance, Item
from negtune.data.paper_csv import find_paper_files, guess_task_from_filename, read_paper_csv
from negtune.data.reader import ItemReader, describe_source
from negtune.data.tasks import TASKS, TaskSpec, get_task
from negtune.errors import UserError

ON_OVERLAP = ("drop", "error")
_FOLD = re.compile(r"[\W_]+")


def norm_text(text: str) -> str:
    """Lower-case, punctuation and whitespace runs folded to one space."""
    return " ".join(_FOLD.sub(" ", text.lower()).split())


def item_key(spec: TaskSpec, fields: dict[str, str]) -> str:
    """An item's identity across sources: its template fields, in template order, folded."""
    names = spec.variants["original"].field_names if "original" in spec.variants else tuple(sorted(fields))
    return norm_text(" ".join(fields.get(name, "") for name in names))


def prompt_fields(spec: TaskSpec, prompt: str) -> Optional[dict[str, str]]:
    """The fields a rendered prompt shows under one of the task's templates, or None."""
    for variant in spec.variants.values():
        if variant.has_instruction:
            found = variant.parse(prompt)
            if found is not None:
                return found
    return None


@dataclass(frozen=True)
class EvalRef:
    key: str
    where: str  # "file: row N" or "hub:...: row N"


@dataclass
class EvalRefs:
    """Per task: evaluation items by key, every evaluation answer, and the sets compared."""

    keys: dict[str, dict[str, EvalRef]] = field(default_factory=dict)
    answers: dict[str, set[str]] = field(default_factory=dict)
    sets: dict[str, list[str]] = field(default_factory=dict)
    # Prompts in a wording no template matches: folded whole, matched by containment.
    loose: dict[str, list[EvalRef]] = field(default_factory=dict)

    def add(self, task: str, key: str, where: str, answers: Iterable[str], loose: bool = False) -> None:
        if loose:
            self.loose.setdefault(task, []).append(EvalRef(key, where))
        elif key:
            self.keys.setdefault(task, {}).setdefault(key, EvalRef(key, where))
        self.answers.setdefault(task, set()).update(a.strip() for a in answers if a.strip())

    def find(self, task: str, key: str) -> Optional[EvalRef]:
        """The evaluation item with this key: equal keys, else a loose prompt containing it."""
        ref = self.keys.get(task, {}).get(key)
        if ref is not None or not key or len(key.split()) < 3:
            return ref
        padded = f" {key} "
        return next((r for r in self.loose.get(task, ()) if padded in f" {r.key} "), None)

    def described(self, task: str, text: str) -> None:
        self.sets.setdefault(task, [])
        if text not in self.sets[task]:
            self.sets[task].append(text)


def _item_answers(item: Item) -> tuple[str, ...]:
    if item.answers:
        return item.answers
    return (item.options[item.answer],) if item.options and item.answer >= 0 else ()


def _row_answers(inst: Instance) -> list[str]:
    """The correct answer(s) of the item a CSV row shows (a negated row's gold is the wrong ones)."""
    if inst.variant == "negated":
        return [o for k, o in enumerate(inst.options) if k not in inst.gold]
    return [inst.options[k] for k in inst.gold]


def _add_csv(refs: EvalRefs, tasks: list[str], path: Any, variant: Optional[str] = None) -> None:
    """Keys and answers of one paper-format CSV, for each of ``tasks`` it may belong to."""
    for inst in read_paper_csv(path, variant=variant):
        where = f"{path}: sample_id {inst.source_id}"
        matched = False
        for task in tasks:
            spec = get_task(task)
            found = prompt_fields(spec, inst.prompt)
            if found is not None:
                refs.add(task, item_key(spec, found), where, _row_answers(inst))
                matched = True
        if not matched:  # a wording no registry template has: matched by containment
            for task in tasks:
                refs.add(task, norm_text(inst.prompt), where, _row_answers(inst), loose=True)
    for task in tasks:
        refs.described(task, f"{path}")


def collect_eval_refs(eval_cfg: Any, reader: ItemReader, tasks: Iterable[str]) -> EvalRefs:
    """Every evaluation item and answer the ``eval`` section names, for the given tasks."""
    wanted = list(dict.fromkeys(tasks))
    refs = EvalRefs()
    if eval_cfg is None:
        return refs
    paper_dir = getattr(eval_cfg, "paper_csv_dir", None)
    for task in eval_cfg.tasks:
        if task not in wanted:
            continue
        if paper_dir:
            original, negated = find_paper_files(paper_dir, task)
            _add_csv(refs, [task], original, "original")
            _add_csv(refs, [task], negated, "negated")
            continue
        got = reader.read(task, eval_cfg.split, eval_cfg.files.get(task), "eval")
        spec = get_task(task)
        for item in got.items:
            refs.add(task, item_key(spec, item.fields), item.where, _item_answers(item))
        refs.described(task, f"eval {describe_source(got.fingerprint)}")
    for pair in getattr(eval_cfg, "csv", []):
        paths = list(pair.files.items())
        task = pair.name if pair.name in TASKS else guess_task_from_filename(str(paths[0][1]))
        if task is not None and task not in wanted:
            continue
        candidates = [task] if task is not None else wanted
        for variant, path in paths:
            _add_csv(refs, candidates, path, variant)
    return refs


def drop_overlaps(task: str, items: list[Item], refs: EvalRefs, on_overlap: str = "drop") -> tuple[list[Item], int]:
    """``items`` minus those an evaluation set holds; ``on_overlap: error`` refuses instead."""
    if on_overlap not in ON_OVERLAP:
        raise UserError(f"data.on_overlap: {on_overlap!r}: use drop or error")
    if not refs.keys.get(task) and not refs.loose.get(task):
        return list(items), 0
    spec = get_task(task)
    kept: list[Item] = []
    first: Optional[tuple[Item, EvalRef]] = None
    dropped = 0
    for item in items:
        ref = refs.find(task, item_key(spec, item.fields))
        if ref is None:
            kept.append(item)
            continue
        dropped += 1
        first = first or (item, ref)
    if dropped and on_overlap == "error":
        item, ref = first  # type: ignore[misc]
        raise UserError(
            f"data.on_overlap: error: {dropped} training item(s) of task {task!r} are in an evaluation set, "
            f"e.g. {item.where} = {ref.where}; set data.on_overlap: drop to train without them"
        )
    if not kept:
        item, ref = first  # type: ignore[misc]
        raise UserError(
            f"data.tasks: task {task!r}: all {dropped} training items are in an evaluation set "
            f"(e.g. {item.where} = {ref.where}); train on another split or files"
        )
    return kept, dropped
