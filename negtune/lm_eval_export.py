"""Write negtune evaluation sets as an lm-evaluation-harness task directory
(``export_lm_eval``; the command ``negtune export lm-eval`` is ``negtune.lm_eval_cli``).

Why: a number is more credible when an independent harness reproduces it. The exported
tasks make ``lm_eval`` score exactly what ``negtune eval`` scores (tokenization "joint"):
the same prompt and option strings, cut at the same place, summed over the same tokens,
so both give the same per-option log-likelihoods, predictions and accuracies
(``tests/evaluation/test_lm_eval_export.py`` checks this item for item).

How the cut is made to agree. For a ``multiple_choice`` task lm-eval scores
``log p(target_delimiter + choice | context)`` with context = ``doc_to_text`` (zero-shot,
no description). Like negtune it moves the context's trailing whitespace onto the
continuation and takes the continuation's tokens from the encoding of the whole string.
negtune options already carry their leading space (" Paris"), so the choices are exported
verbatim with ``target_delimiter: ""``. The BOS token: lm-eval 0.4.13's HF model encodes
with the tokenizer's default special tokens when ``add_bos_token`` is not given, as negtune
does, so the command in the README leaves it unset (see the README for older versions).

Layout (every name is lowercase ``[a-z0-9_]``; ``G`` = ``group``, ``S`` = slug of a set's
name, ``V`` = variant):

    OUT/README.md                 what was exported and the exact lm_eval command
    OUT/manifest.json             task -> set, variant, items (and marks OUT as an export)
    OUT/_G.yaml                   group G: the set groups (all tasks)
    OUT/S/_G_S.yaml               group G_S: one set's variants
    OUT/S/G_S_V.yaml, .jsonl      task G_S_V and its items
    OUT/_G_V.yaml                 group G_V: one variant across all sets

Two views of the same tasks, run one at a time (lm-eval refuses a task that two requested
groups share): ``--tasks G`` (per set, then everything) or ``--tasks G_original,G_negated``
(per variant). Groups report the unweighted mean over their tasks: a set's group is negtune's
``mean`` for the set, ``G_original`` / ``G_negated`` negtune's macro ``original_acc`` /
``negated_acc``.
The YAML files name their data by absolute path (lm-eval resolves relative paths against
its working directory): move the directory, export again.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from negtune.data.instances import Instance
from negtune.errors import UserError

MANIFEST = "manifest.json"
FORMAT = "negtune-lm-eval-export/1"
VARIANT_ORDER = ("original", "negated", "instruction_free")
TESTED_LM_EVAL = "0.4.13"
_SLUG_RE = re.compile(r"^[a-z][a-z0-9_]*$")


def slug(name: str) -> str:
    """``hellaswag_Open-ended_completion`` -> ``hellaswag_open_ended_completion``.

    Why: lm-eval reads ``--tasks`` as a comma list that may hold glob patterns and puts task
    names into output file names, so names keep to letters, digits and ``_``.
    """
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _variants(rows: Sequence[Instance]) -> list[str]:
    seen = list(dict.fromkeys(i.variant for i in rows))
    return sorted(seen, key=lambda v: (VARIANT_ORDER.index(v) if v in VARIANT_ORDER else len(VARIANT_ORDER), v))


def _doc(inst: Instance, where: str) -> dict[str, Any]:
    """One JSON line: the fields the task YAML names, plus ids to join results back."""
    if not inst.options:
        raise UserError(f"{where}: no options")
    if not inst.gold or any(not 0 <= g < len(inst.options) for g in inst.gold):
        raise UserError(f"{where}: gold {list(inst.gold)} out of range ({len(inst.options)} options)")
    if inst.target not in inst.gold:
        raise UserError(f"{where}: target {inst.target} is not in gold {list(inst.gold)}")
    return {
        "source_id": inst.source_id,
        "sample_id": str(inst.meta.get("sample_id", inst.source_id)),
        "prompt": inst.prompt,
        "options": list(inst.options),
        "gold": list(inst.gold),
        "target": inst.target,
    }


def _metrics() -> list[dict[str, Any]]:
    # acc = negtune's acc. acc_norm divides by the choice's length in characters, and the
    # exported choices include their leading space (one more character than lm-eval's own
    # tasks, whose delimiter carries the space).
    return [{"metric": m, "aggregation": "mean", "higher_is_better": True} for m in ("acc", "acc_norm")]


def _task_config(name: str, data_file: Path, multi_gold: bool, set_name: str, variant: str,
                 n: int) -> dict[str, Any]:
    return {
        "task": name,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(data_file)}},
        "test_split": "test",
        # Few-shot demonstrations (only with --num_fewshot) come from the same items; naming
        # the split makes lm-eval leave the evaluated item out of its own demonstrations.
        "fewshot_split": "test",
        "output_type": "multiple_choice",
        "doc_to_text": "prompt",
        "doc_to_choice": "options",
        # A list target counts a prediction anywhere in it as correct. lm-eval decides list
        # or int from the task's first item, so a task uses one form for all its items.
        "doc_to_target": "gold" if multi_gold else "target",
        "target_delimiter": "",
        # A demonstration shows one correct option (lm-eval cannot render a list target).
        "fewshot_config": {"sampler": "default", "doc_to_target": "target"},
        "metric_list": _metrics(),
        "metadata": {"version": 1.0, "negtune_set": set_name, "negtune_variant": variant, "num_items": n},
    }


def _group_config(name: str, members: list[str]) -> dict[str, Any]:
    return {
        "group": name,
        "task": members,
        # Unweighted: each task counts once whatever its size, as in negtune's summaries.
        "aggregate_metric_list": [{"metric": m, "aggregation": "mean", "weight_by_size": False}
                                  for m in ("acc", "acc_norm")],
        "metadata": {"version": 1.0},
    }


def _yaml(config: dict[str, Any]) -> str:
    import yaml

    head = "# Written by `negtune export lm-eval`; export again rather than editing.\n"
    return head + yaml.safe_dump(config, sort_keys=False, allow_unicode=True, width=1000)


def export_lm_eval(sets: Mapping[str, Sequence[Instance]], out_dir: str | Path, group: str = "negtune",
                   run: RunHint | None = None) -> list[str]:
    """Write one lm-eval task per (set, variant) plus the groups; return the task names.

    ``sets`` maps a set name to its instances (any variants; within a variant each
    ``source_id`` once). Task ``{group}_{slug(set)}_{variant}``, set group
    ``{group}_{slug(set)}``, variant group ``{group}_{variant}``, all set groups: ``{group}``.
    ``out_dir`` is replaced whole, and only if it is empty or an earlier export. ``run``
    fills the README's commands (model, dtype, length limit; default: placeholders).
    """
    run = run or RunHint()
    from negtune.io import atomic_dir, check_output_dir, write_json, write_jsonl, write_text

    if not _SLUG_RE.match(group):
        raise UserError(f"group {group!r}: use lowercase letters, digits and _ (starting with a letter)")
    if not sets:
        raise UserError("export: no evaluation sets to export")
    out = Path(out_dir).expanduser().resolve()
    check_output_dir(out, "lm-eval-export", "export directory")

    owner: dict[str, str] = {group: "the group of all sets"}

    def claim(name: str, what: str) -> str:
        if name in owner:
            raise UserError(f"export: name {name!r} of {what} is already used by {owner[name]}; rename a set")
        owner[name] = what
        return name

    plan: list[dict[str, Any]] = []  # one entry per set
    by_variant: dict[str, list[str]] = {}
    for set_name, rows in sets.items():
        s = slug(set_name)
        if not s:
            raise UserError(f"export: set name {set_name!r} has no letters or digits")
        if not rows:
            raise UserError(f"export: set {set_name!r} has no instances")
        tasks = []
        for variant in _variants(rows):
            v = slug(variant)
            if not v:
                raise UserError(f"export: set {set_name!r}: variant {variant!r} has no letters or digits")
            items = [i for i in rows if i.variant == variant]
            seen: set[str] = set()
            docs = []
            for inst in items:
                where = f"set {set_name!r}: item {inst.source_id} ({variant})"
                if inst.source_id in seen:
                    raise UserError(f"{where}: appears twice")
                seen.add(inst.source_id)
                docs.append(_doc(inst, where))
            name = claim(f"{group}_{s}_{v}", f"set {set_name!r} variant {variant!r}")
            tasks.append({"name": name, "variant": variant, "docs": docs,
                          "multi_gold": any(len(d["gold"]) > 1 for d in docs)})
            by_variant.setdefault(v, []).append(name)
        plan.append({"set": set_name, "slug": s, "group": claim(f"{group}_{s}", f"set {set_name!r}"),
                     "tasks": tasks})
    variant_groups = {v: claim(f"{group}_{v}", f"the {v} group") for v in by_variant}

    manifest: dict[str, Any] = {"format": FORMAT, "group": group, "tested_lm_eval": TESTED_LM_EVAL,
                                "set_groups": [p["group"] for p in plan],
                                "variant_groups": list(variant_groups.values()), "tasks": {}}
    with atomic_dir(out, "lm-eval-export") as tmp:
        for p in plan:
            for t in p["tasks"]:
                final = out / p["slug"] / f"{t['name']}.jsonl"  # what the YAML names: the path after rename
                write_jsonl(tmp / p["slug"] / f"{t['name']}.jsonl", t["docs"])
                cfg = _task_config(t["name"], final, t["multi_gold"], p["set"], t["variant"], len(t["docs"]))
                write_text(tmp / p["slug"] / f"{t['name']}.yaml", _yaml(cfg))
                files = sorted({str(i.meta["file"]) for i in sets[p["set"]]
                                if i.variant == t["variant"] and i.meta.get("file")})
                manifest["tasks"][t["name"]] = {"set": p["set"], "variant": t["variant"], "group": p["group"],
                                                "items": len(t["docs"]), "multi_gold": t["multi_gold"],
                                                "files": files}
            write_text(tmp / p["slug"] / f"_{p['group']}.yaml",
                       _yaml(_group_config(p["group"], [t["name"] for t in p["tasks"]])))
        for v, name in variant_groups.items():
            write_text(tmp / f"_{name}.yaml", _yaml(_group_config(name, by_variant[v])))
        write_text(tmp / f"_{group}.yaml", _yaml(_group_config(group, [p["group"] for p in plan])))
        write_json(tmp / MANIFEST, manifest)
        write_text(tmp / "README.md", readme(out, group, manifest, run))
    return list(manifest["tasks"])


@dataclass(frozen=True)
class RunHint:
    """What the README's two commands name: the model, its dtype and length limit, and the
    ``negtune eval`` inputs that score the same instances."""

    model: str = "MODEL"
    dtype: str = "float32"
    max_length: int | None = None
    negtune_inputs: str = "--csv FILE ..."
    note: str = ""


def lm_eval_command(out_dir: str | Path, tasks: str, run: RunHint | None = None) -> str:
    """The command line that reproduces ``negtune eval`` on an export (``run``: model etc.).

    ``max_length`` is passed when negtune cuts there too (a recipe's ``model.max_length``):
    both harnesses then cut the prompt at the same length (see the README for the BOS).
    """
    run = run or RunHint()
    args = f"pretrained={run.model},dtype={run.dtype}" + (f",max_length={run.max_length}" if run.max_length else "")
    return (f"lm_eval --model hf --model_args {args} "
            f"--include_path {out_dir} --tasks {tasks} --batch_size 16 --log_samples --output_path lm_eval_out")


def readme(out: Path, group: str, manifest: dict[str, Any], run: RunHint | None = None) -> str:
    run = run or RunHint()
    rows = "\n".join(f"| `{name}` | {t['set']} | {t['variant']} | {t['items']} | "
                     f"{'several' if t['multi_gold'] else 'one'} |" for name, t in manifest["tasks"].items())
    return f"""# negtune evaluation sets for lm-evaluation-harness

Written by `negtune export lm-eval` (tested with lm-eval {TESTED_LM_EVAL}). Per set, then all:

    {lm_eval_command(out, group, run)}

Per variant (a second run: lm-eval refuses a task that two requested groups share):

    {lm_eval_command(out, ",".join(manifest["variant_groups"]), run)}

Both give the same per-option log-likelihoods, predictions and `acc` as

    negtune eval --model {run.model} {run.negtune_inputs} --dtype {run.dtype} --scores scores.jsonl

(`manifest.json` lists each task's files), tokenization `joint` (the default).{run.note}

| task | set | variant | items | correct options |
| --- | --- | --- | --- | --- |
{rows}

## How the two harnesses are made to agree

- Context = the prompt, continuation = the option as negtune stores it (with its leading
  space), `target_delimiter: ""`. Both harnesses move trailing whitespace of the prompt onto
  the option and take the option's tokens from the encoding of prompt + option.
- BOS: lm-eval 0.4.13 encodes with the tokenizer's default special tokens when
  `add_bos_token` is not given, exactly like negtune (OPT and Llama tokenizers add a BOS,
  GPT-2 and SmolLM2 add none), so leave `add_bos_token` out of `--model_args`. lm-eval
  before 0.4.9.2 added no special tokens for causal models unless told: there pass
  `add_bos_token=True` for a model whose tokenizer adds a BOS (OPT, Llama) and nothing for
  one that adds none. Check with `--log_samples` against `negtune eval --scores`.
- Several correct options (negated 4-option items): the target is the list of gold
  indices; lm-eval counts a prediction anywhere in the list as correct, like negtune.
- `acc` matches negtune's `acc`. `acc_norm` (log-likelihood divided by the option's length
  in characters, leading space included) has no negtune counterpart; negtune's
  `acc_tok_mean` divides by tokens instead.
- Groups average their tasks unweighted: a set's group is negtune's `mean` for that set,
  `{group}_original` / `{group}_negated` its macro `original_acc` / `negated_acc`, and
  `{group}` the mean over all tasks (negtune's macro `mean` when every set has exactly an
  original and a negated variant).
- Prompt + option longer than the model's context: both harnesses cut the prompt from the
  left, but negtune keeps the BOS token and lm-eval does not (and sees one more prompt
  token), so such options get different scores.
- Do not add `--apply_chat_template` or `--num_fewshot` when comparing: negtune scores the
  plain prompt, zero-shot. (With `--num_fewshot` the demonstrations are other items of the
  same task, each shown with one correct option.)
- The task YAML files name their data by absolute path: after moving this directory,
  export again.
"""
