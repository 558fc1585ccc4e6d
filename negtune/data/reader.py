"""Reading a task's items once per build: source rows -> parsed items, duplicates merged.

Why a reader object: one build reads a task's data for several purposes (the training items,
the evaluation items, the QA distractor pool, the overlap check), and the hub or mirror
split must be read once and from one place (``cache_dir``, ``data.hub_mirror``). A
``ItemReader`` memoises each (task, split, files) read; callers copy items before changing
them (option completion writes ``options``/``answer``).

Merging duplicates: TriviaQA's ``rc.nocontext`` holds the rows of the web *and* the
Wikipedia question files, so one ``question_id`` appears in two rows (138,384 train rows for
87,622 questions). Rows with the same id that agree on everything the item is built from
(fields, options, answers) become one item and are counted (``merged``); the same id with a
different question or answer is an error naming both rows.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from negtune.data.instances import Item
from negtune.data.options import OptionRules, answer_pool
from negtune.data.sources import SourceRows, load_hub, read_local
from negtune.data.tasks import TaskSpec, get_task
from negtune.errors import UserError
from negtune.hub import Mirror, hub_mirror


@dataclass
class ReadItems:
    task: str
    split: str  # the split asked for (the hub split may be an alias: see fingerprint)
    items: list[Item]  # in source order; options not yet completed for answer-only tasks
    fingerprint: dict[str, Any]
    rows: int  # source rows read
    merged: int = 0  # rows merged into an earlier row with the same id and content

    def copies(self) -> list[Item]:
        """Items safe to complete: fresh ones for answer-only tasks (option completion writes
        ``options``/``answer``; the memoised items are shared), the items themselves otherwise."""
        if get_task(self.task).complete_options is None:
            return list(self.items)
        return [Item(it.id, it.fields, it.options, it.answer, it.answers, it.where) for it in self.items]


def merge_duplicates(items: list[Item]) -> tuple[list[Item], int]:
    """One item per id: identical repeats merged (and counted), conflicting ones refused."""
    first: dict[str, Item] = {}
    out: list[Item] = []
    merged = 0
    for item in items:
        prev = first.get(item.id)
        if prev is None:
            first[item.id] = item
            out.append(item)
            continue
        same = (prev.fields, prev.options, prev.answer, prev.answers) == (
            item.fields, item.options, item.answer, item.answers)
        if not same:
            what = "question" if prev.fields != item.fields else "answer"
            raise UserError(
                f"{item.where}: duplicate id {item.id!r} with a different {what} than {prev.where}"
            )
        merged += 1
    return out, merged


def describe_source(fp: dict[str, Any]) -> str:
    """One phrase for summaries: ``hub mandarjoshi/trivia_qa [rc.nocontext] train`` or the files."""
    if fp.get("kind") == "hub":
        text = f"hub {fp['id']}" + (f" [{fp['config']}]" if fp.get("config") else "") + f" {fp['split']}"
        if fp.get("mirror"):
            text += f" (mirror {fp['mirror']}" + (f" @ {fp['revision'][:12]}" if fp.get("revision") else "") + ")"
        elif fp.get("revision"):
            text += f" @ {fp['revision']}"
        return text
    files = [f["path"] for f in fp.get("files", [])]
    return ", ".join(files) if len(files) <= 2 else f"{files[0]} (+{len(files) - 1} files)"


@dataclass
class ItemReader:
    """Reads and parses task items; every read is memoised for the reader's lifetime."""

    cache_dir: Optional[str] = None
    mirror: Optional[Mirror] = None
    _memo: dict[tuple, ReadItems] = field(default_factory=dict, repr=False)

    @classmethod
    def for_data(cls, data_cfg: Any, cache_dir: Optional[str] = None) -> "ItemReader":
        """A reader with a DataConfig's hub settings (``cache_dir``, ``hub_mirror``)."""
        return cls(cache_dir=getattr(data_cfg, "cache_dir", None) or cache_dir,
                   mirror=hub_mirror(getattr(data_cfg, "hub_mirror", None)))

    def rows(self, spec: TaskSpec, split: str, files: Any, section: str) -> SourceRows:
        key = f"{section}.files"
        if files:
            return read_local(files, spec.fields, key=f"{key}.{spec.name}")
        if spec.hub is None:
            raise UserError(
                f"{key}.{spec.name}: required: task {spec.name!r} has no hub source; "
                f"point it at local files with fields {spec.schema_doc}"
            )
        hub_split = spec.hub.split_for(split)
        if hub_split in spec.hub.unlabelled_splits:
            raise UserError(
                f"{section}.split: task {spec.name!r}: hub split {hub_split!r} of {spec.hub.path} has no "
                "public labels (hidden as -1, '' or '<unk>'); use a labelled split or local files"
            )
        return load_hub(
            spec.hub.path,
            spec.hub.name,
            hub_split,
            revision=spec.hub.revision,
            cache_dir=self.cache_dir,
            label=spec.name,
            mirror=self.mirror,
            expected_rows=spec.hub.expected_rows.get(hub_split),
        )

    def read(self, task: str, split: str, files: Any, section: str = "data") -> ReadItems:
        """All items of ``task`` from ``files`` (or the hub ``split``), duplicates merged."""
        memo_key = (task, split, tuple(files) if isinstance(files, list) else files)
        if memo_key in self._memo:
            return self._memo[memo_key]
        spec = get_task(task, where=f"{section}.tasks")
        src = self.rows(spec, split, files, section)
        if not src.rows:
            raise UserError(f"{section}.files.{task}: no rows (empty split)")
        parsed = [spec.parse(row, where, i) for i, (where, row) in enumerate(src.rows)]
        items, merged = merge_duplicates(parsed)
        got = ReadItems(task, split, items, src.fingerprint, rows=len(src.rows), merged=merged)
        self._memo[memo_key] = got
        return got

    def reads(self) -> list[ReadItems]:
        """Every read so far (for the build's warnings)."""
        return list(self._memo.values())

    def option_rules(self, task: str, data_cfg: Any, excluded_answers: Any, lambada: str = "paper") -> OptionRules:
        """The option rules for ``task``: for QA tasks the paper's pool, i.e. the gold answers
        of the training data ``data_cfg`` names (its files, else the hub's ``split``) minus
        ``excluded_answers`` (every answer of the recipe's evaluation sets)."""
        spec = get_task(task)
        if not spec.answer_pool:
            return OptionRules(lambada=lambada)  # type: ignore[arg-type]
        split = getattr(data_cfg, "split", "train")
        train = self.read(task, split, (getattr(data_cfg, "files", None) or {}).get(task), "data")
        pool = answer_pool((it.answers[0] for it in train.items), excluded_answers)
        return OptionRules(pool=pool, lambada=lambada, pool_from=describe_source(train.fingerprint))  # type: ignore[arg-type]
