"""The paper's CSV files as paired evaluation sets (``--csv``, ``eval.csv``, ``eval.paper_csv_dir``).

Why pairing is its own job: the paired metrics (both_correct, flip_rate) need each negated item
matched to its original. The files say which item is which by ``sample_id``, except where
they do not (WebQuestions' negated file numbers its items differently), and then the prompt
minus the instruction shared by the whole file identifies the question.

* ``load_csv_set(name, files, pair_by, limit)``: one set, its variants paired item by item;
* ``parse_csv_args(specs)``: ``--csv [[NAME:]VARIANT=]FILE`` arguments -> sets.
"""
from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Callable, Optional, Sequence

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


def parse_csv_args(specs: Sequence[str], pair_by: str = "sample_id",
                   warn: Callable[[str], None] = lambda m: print(f"negtune: note: {m}", file=sys.stderr),
                   ) -> list[tuple[str, dict[str, str], str]]:
    """``--csv`` arguments -> [(set name, {variant: file}, pair_by)] in first-seen order.

    Forms: ``FILE`` (variant from the name: "negation"/"negated" -> negated; set = the name
    without that marker and the size), ``VARIANT=FILE`` (joins the previous argument's set
    when that set lacks this variant, so ``--csv original=A.csv --csv negated=B.csv`` pair
    whatever the names; else a set of its own), ``NAME:VARIANT=FILE`` (set NAME). A set with
    a negated file and no original one gets a one-line note: its paired metrics are absent.
    """
    sets: dict[str, dict[str, str]] = {}
    previous: Optional[str] = None
    for spec in specs:
        label, sep, path = spec.partition("=")
        if not sep:
            label, path = "", spec
        name, _, variant = label.rpartition(":")
        if not path or (sep and not variant):
            raise UserError(f"--csv {spec!r}: expected [[NAME:]VARIANT=]FILE")
        if not Path(path).is_file():
            raise UserError(f"{path}: file not found")
        explicit = bool(variant)
        variant = variant or guess_variant(path)
        if variant not in ("original", "negated", "instruction_free"):
            raise UserError(f"--csv {spec!r}: unknown variant {variant!r} (original, negated, instruction_free)")
        if not name:
            follows = explicit and previous is not None and variant not in sets[previous]
            name = previous if follows else set_name(path)
        files = sets.setdefault(name, {})
        if variant in files:
            raise UserError(f"--csv {path}: set {name!r} already has a {variant} file ({files[variant]})")
        files[variant] = path
        previous = name
    for name, files in sets.items():
        if "negated" in files and "original" not in files:
            warn(f"--csv: set {name!r} has a negated file ({files['negated']}) but no original one, so its paired "
                 "metrics are not computed; give the pair consecutively or as NAME:original=... NAME:negated=...")
    return [(name, files, pair_by) for name, files in sets.items()]
