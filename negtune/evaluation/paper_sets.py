"""The paper's released evaluation sets as a recipe's evaluation: ``eval.paper_csv_dir``.

Why: numbers measured on hub validation splits with negtune's own distractors cannot be put
next to the paper's figures. The paper evaluated on fixed files (300 items per task, COPA
100), original and negated, with its own distractors. With ``eval.paper_csv_dir: DIR`` each
task of ``eval.tasks`` is evaluated on exactly those files:

* the files are found by name (``negtune.data.paper_csv.find_paper_files``: the released names,
  else the largest original/negated pair whose name maps to the task; the _50 subsets only
  when nothing larger is there); a missing one is one line naming the directory and the name;
* the negated file is paired with the original item by item: by ``sample_id`` when both files
  number the same items, else by the prompt minus the file's instruction (WebQuestions'
  negated file numbers its items 0, 2, 4, ... and swaps some options);
* the set is named after the task (``piqa``, not ``piqa_generate``), so results line up with
  runs evaluated on hub splits and with ``negtune report``;
* a variant the paper did not release (``instruction_free``, or a variant added to the
  registry) is rendered from the original file's items: the prompt is read back into its
  fields with the task's original template (``Variant.parse``) and rendered with the other.

``eval.max_instances`` does not apply (the paper's sets are used whole); ``eval.limit`` keeps
the first N items of each original file, as for ``eval.csv`` sets.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Optional

from negtune.data.build import make_instances
from negtune.data.instances import Instance, Item
from negtune.data.paper_csv import find_paper_files, read_paper_csv
from negtune.data.tasks import get_task, get_variant
from negtune.errors import UserError
from negtune.evaluation.csv_sets import load_csv_set

RELEASED = ("original", "negated")


def pair_by_for(original: Any, negated: Any) -> str:
    """``sample_id`` when both files number the same items, else ``prompt``."""
    ids = [i.source_id for i in read_paper_csv(original)]
    neg_ids = [i.source_id for i in read_paper_csv(negated)]
    return "sample_id" if sorted(ids) == sorted(neg_ids) else "prompt"


def derived_variant(task: str, name: str, originals: list[Instance], seed: int) -> list[Instance]:
    """``name`` rendered from the items of the paper's original file."""
    spec = get_task(task)
    get_variant(task, name, where="eval.variants")
    template = spec.variants["original"]
    out: list[Instance] = []
    for inst in originals:
        fields = template.parse(inst.prompt)
        if fields is None or len(inst.gold) != 1:
            raise UserError(
                f"{inst.meta.get('file')}: sample_id {inst.meta.get('sample_id', inst.source_id)}: the prompt is not "
                f"task {task!r}'s original template; cannot render variant {name!r} from it"
            )
        item = Item(id=inst.source_id, fields=fields, options=inst.options, answer=inst.gold[0])
        for made in make_instances(task, item, name, seed, key="eval.variants"):
            out.append(replace(made, meta=dict(inst.meta, derived_from="original")))
    return out


def paper_eval_sets(cfg: Any, seed: int, limit: Optional[int] = None) -> list[Instance]:
    """Instances of ``cfg.tasks`` from the paper's files in ``cfg.paper_csv_dir``."""
    out: list[Instance] = []
    for task in cfg.tasks:
        original, negated = find_paper_files(cfg.paper_csv_dir, task)
        files = {"original": str(original), "negated": str(negated)}
        rows = load_csv_set(task, files, pair_by_for(original, negated), limit)
        originals = [i for i in rows if i.variant == "original"]
        for name in cfg.variants:
            if name in RELEASED:
                out += [i for i in rows if i.variant == name]
            else:
                out += derived_variant(task, name, originals, seed)
    return out
