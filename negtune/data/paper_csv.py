"""The paper's released evaluation format: ``sample_id,prompt,classes,answer_index``.

``classes`` is a Python list literal of the options (each starting with a space), read with
``ast.literal_eval``; ``answer_index`` is an int, or comma-separated ints ("0,1,3") when several
options are correct (negated 4-option tasks). Writing uses the csv module's minimal quoting and
``repr`` of the option list, which reproduces the paper's files byte for byte (those with
``\\n`` line ends) and always round-trips through ``read_paper_csv``.
"""
from __future__ import annotations

import ast
import csv
import io
import re
from pathlib import Path
from typing import Iterable, Optional

from negtune.data.instances import Instance
from negtune.data.tasks import TASKS
from negtune.errors import UserError

COLUMNS = ("sample_id", "prompt", "classes", "answer_index")


def guess_task_from_filename(filename: str) -> Optional[str]:
    """Map a paper CSV name (``ai2_arc_q_a_300.csv``) to a registry task (``arc_easy``)."""
    stem = filename.rsplit("/", 1)[-1].lower()
    best: Optional[tuple[int, str]] = None
    for spec in TASKS.values():
        for prefix in spec.paper_csv_prefix:
            if stem.startswith(prefix) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), spec.name)
    return best[1] if best else None


# The one rule for a negated file's name: "negation" or "negated" in it (the paper's files say
# "negation"; researchers' own files often say "negated"). The set name drops the marker and
# the size suffix: piqa_generate_negated_300.csv -> piqa_generate.
NEGATED_MARK = re.compile(r"[_\-. ]?negat(?:ion|ed)", re.IGNORECASE)
SIZE_SUFFIX = re.compile(r"[_\-]\d+$")


def guess_variant(path: str | Path) -> str:
    return "negated" if NEGATED_MARK.search(Path(path).name) else "original"


def set_name(path: str | Path) -> str:
    """``piqa_generate_negation_300.csv`` -> ``piqa_generate`` (stem minus negation and size)."""
    stem = Path(path).stem
    return SIZE_SUFFIX.sub("", NEGATED_MARK.sub("", stem)) or stem


def _size(path: Path) -> int:
    match = SIZE_SUFFIX.search(path.stem)
    return int(match.group()[1:]) if match else 0


def find_paper_files(directory: str | Path, task: str, key: str = "eval.paper_csv_dir") -> tuple[Path, Path]:
    """The (original, negated) paper CSVs of registry ``task`` in ``directory``.

    The paper's released names (``TaskSpec.paper_files``) first (one of them alone is an error
    naming the other); otherwise the largest
    original file whose name maps to the task (``guess_task_from_filename``; the 300/100-item
    files before the _50 subsets) and the negated file of the same set name and size. A missing
    file is one line naming the directory and the expected name (never a silent fall-back to a
    smaller set: the paper's _50 negation files hold other items than their originals).
    """
    from negtune.data.tasks import get_task

    d = Path(directory)
    if not d.is_dir():
        raise UserError(f"{d}: directory not found (from {key})")
    spec = get_task(task, where=key)
    if not spec.paper_csv_prefix:
        raise UserError(f"{key}: task {task!r} has no paper CSV files (the paper's tasks: "
                        + ", ".join(t.name for t in TASKS.values() if t.paper_csv_prefix) + ")")
    released = [d / name for name in spec.paper_files]
    present = [p.is_file() for p in released]
    if released and all(present):
        return released[0], released[1]
    if any(present):  # half of the released pair: name the other half
        missing = released[present.index(False)]
        kind = "original" if missing == released[0] else "negated"
        raise UserError(f"{d}: no {kind} paper file for task {task!r} (expected {missing.name}; from {key})")
    found = [p for p in sorted(d.glob("*.csv")) if guess_task_from_filename(p.name) == task]
    originals = [p for p in found if not NEGATED_MARK.search(p.name)]
    if not originals:
        expected = spec.paper_files[0] if spec.paper_files else f"a name starting with {spec.paper_csv_prefix[0]!r}"
        raise UserError(f"{d}: no original paper file for task {task!r} (expected {expected}; from {key})")
    sets = sorted({set_name(p) for p in originals})
    if len(sets) > 1:
        raise UserError(f"{d}: task {task!r} has several paper sets ({', '.join(sets)}); "
                        "keep one in the directory, or name the files in eval.csv")
    original = max(originals, key=lambda p: (_size(p), p.name))
    partners = [p for p in found if NEGATED_MARK.search(p.name)
                and set_name(p) == set_name(original) and _size(p) == _size(original)]
    if not partners:
        expected = (spec.paper_files[1] if released and original == released[0]
                    else f"a negated file of set {set_name(original)!r} with {_size(original) or 'no'} size suffix")
        raise UserError(f"{d}: no negated paper file for task {task!r} (expected {expected}; from {key})")
    return original, partners[0]


def parse_answer_set(text: str, n_options: int, where: str) -> tuple[int, ...]:
    raw = str(text).strip()
    try:
        values = [int(part.strip()) for part in raw.split(",")]
    except ValueError:
        raise UserError(f"{where}: malformed answer set {raw!r} (expected an int or '0,1,3')") from None
    if len(set(values)) != len(values):
        raise UserError(f"{where}: malformed answer set {raw!r} (repeats an index)")
    for v in values:
        if not 0 <= v < n_options:
            raise UserError(f"{where}: answer index {v} out of range ({n_options} options)")
    return tuple(values)


def _parse_classes(text: str, where: str) -> tuple[str, ...]:
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise UserError(f"{where}: unparsable option list {text[:60]!r}") from None
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(v, str) for v in value):
        raise UserError(f"{where}: unparsable option list {text[:60]!r} (expected a non-empty list of strings)")
    return tuple(value)


def read_paper_csv(
    path: str | Path, variant: Optional[str] = None, task: Optional[str] = None
) -> list[Instance]:
    """Instances from a paper-format CSV (source_id = sample_id, target = first gold index).

    ``variant`` defaults to "negated" when the file name says "negation" or "negated", else "original";
    ``task`` defaults to the registry task the file name names (``ai2_arc_...`` → arc_easy),
    else the file's stem.
    """
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{p}: file not found")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise UserError(f"{p}: not UTF-8 text") from None
    if not text.strip():
        raise UserError(f"{p}: empty file")
    variant = variant or guess_variant(p)
    task = task or guess_task_from_filename(p.name) or p.stem
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = reader.fieldnames or []
    for col in COLUMNS:
        if col not in header:
            raise UserError(f"{p}: missing column {col!r} (header: {','.join(header)})")
    out: list[Instance] = []
    seen: dict[str, int] = {}
    try:
        for i, row in enumerate(reader, start=1):
            where = f"{p}: row {i}"
            if any(row.get(col) is None for col in COLUMNS):
                raise UserError(f"{where}: fewer cells than columns")
            sid = row["sample_id"].strip()
            if not sid:
                raise UserError(f"{where}: empty sample_id")
            if sid in seen:
                raise UserError(f"{where}: duplicate sample_id {sid!r} (first at row {seen[sid]})")
            seen[sid] = i
            options = _parse_classes(row["classes"], where)
            if len(set(options)) == 1:
                raise UserError(f"{where}: all {len(options)} options are identical ({options[0]!r})")
            gold = parse_answer_set(row["answer_index"], len(options), where)
            out.append(
                Instance(
                    task=task,
                    source_id=sid,
                    variant=variant,
                    prompt=row["prompt"],
                    options=options,
                    target=gold[0],
                    gold=gold,
                )
            )
    except csv.Error as err:
        raise UserError(f"{p}: row {reader.line_num}: malformed CSV ({err})") from None
    if not out:
        raise UserError(f"{p}: no rows")
    return out


def format_answer_set(gold: Iterable[int]) -> str:
    return ",".join(str(int(g)) for g in gold)


def paper_csv_text(instances: Iterable[Instance]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for inst in instances:
        writer.writerow([inst.source_id, inst.prompt, repr(list(inst.options)), format_answer_set(inst.gold)])
    return buf.getvalue()


def write_paper_csv(path: str | Path, instances: Iterable[Instance]) -> None:
    """Write instances in the paper's format, atomically."""
    from negtune.io import write_text

    rows = list(instances)
    if not rows:
        raise UserError(f"{path}: nothing to write (no instances)")
    write_text(path, paper_csv_text(rows))
