"""Recipe schema, YAML loading, ``key.path=value`` overrides and the one-line errors.

Why: a recipe mistake must be reported before any model or data set is touched, with the
file and the exact key path (``recipes/x.yaml: train.lr: must be > 0``). The schema is a
tree of plain dataclasses; ``negtune.schema`` validates it using the type hints and the
``metadata`` of each field (``gt``, ``ge``, ``le``). This module imports only the standard
library, PyYAML and the task registry, so validation is instant.

The ``loss`` section is free-form here (a name plus arguments); the loss registry checks
it (see ``negtune.losses.resolve_loss``), still before anything heavy is loaded.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional, Union

import yaml

from negtune.data.tasks import check_names, get_task  # the registry is standard-library only
from negtune.errors import UserError
from negtune.schema import build_dataclass, meta


@dataclass
class DataConfig:
    """What the model is trained on. See docs/data.md."""

    tasks: list[str] = field(default_factory=lambda: ["piqa"])
    # Prompt variants to emit per item, e.g. [negated] (the paper's FT) or [original, negated].
    variants: list[str] = field(default_factory=lambda: ["negated"])
    split: str = "train"
    # Per-task cap, sampled with the recipe seed; a task with fewer items uses all of them.
    max_instances: Optional[int] = field(default=10000, metadata=meta(gt=0))
    # 4-option tasks under negation: "seeded" trains on one wrong option chosen by a seeded
    # rule; "all_wrong" emits one instance per wrong option.
    negated_target: Literal["seeded", "all_wrong"] = "seeded"
    # Keep only items present under every requested variant, adjacent in the output, so
    # that losses needing original/negated pairs can find them.
    pairs: bool = False
    # Local files per task in the source's own schema: {piqa: data/samples/piqa/train.jsonl}
    # (a list of files is allowed). Tasks without an entry load from the Hugging Face hub.
    files: dict[str, Union[str, list[str]]] = field(default_factory=dict)
    # Where hub data sets are cached (None: the datasets library default).
    cache_dir: Optional[str] = None
    # Local clones of hub dataset repositories, DIR/<owner>/<name>: load_dataset reads them
    # instead of the hub (None: $NEGTUNE_HUB_MIRROR if set, else the hub). See negtune.hub.
    hub_mirror: Optional[str] = None
    # Training items that an evaluation set of this recipe also holds: "drop" (counted in the
    # manifest) or "error". See negtune.data.overlap.
    on_overlap: Literal["drop", "error"] = "drop"
    # LAMBADA distractors: "paper" (any passage token, punctuation and clitics included: the
    # paper's rule) or "words" (letters-only words, clitics skipped). See negtune.data.options.
    lambada_distractors: Literal["paper", "words"] = "paper"


@dataclass
class LoraConfig:
    r: int = field(default=8, metadata=meta(gt=0))
    alpha: float = field(default=16.0, metadata=meta(gt=0))
    dropout: float = field(default=0.05, metadata=meta(ge=0, lt=1))
    # None: chosen per architecture (negtune.models.LORA_TARGETS).
    target_modules: Optional[list[str]] = None


@dataclass
class ModelConfig:
    # Required. Hub id, local directory, or a named offline source (smollm2-135m-instruct).
    name_or_path: str = field(default="", metadata=meta(required=True))
    revision: Optional[str] = None
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    peft: Literal["none", "lora", "qlora"] = "none"
    lora: LoraConfig = field(default_factory=LoraConfig)
    gradient_checkpointing: bool = False
    # Falls back to the tokenizer's model_max_length when None.
    max_length: Optional[int] = field(default=512, metadata=meta(gt=0))


@dataclass
class TrainConfig:
    lr: float = field(default=1e-3, metadata=meta(gt=0))
    scheduler: Literal["constant", "linear", "cosine"] = "constant"
    warmup_steps: int = field(default=0, metadata=meta(ge=0))
    epochs: int = field(default=5, metadata=meta(gt=0))
    per_device_batch_size: int = field(default=8, metadata=meta(gt=0))
    grad_accum: int = field(default=1, metadata=meta(gt=0))
    # If set, grad_accum is derived so that per_device x processes x grad_accum equals it,
    # which keeps the optimisation identical when the process count changes.
    global_batch_size: Optional[int] = field(default=None, metadata=meta(gt=0))
    optimizer: Literal["adamw", "sgd"] = "adamw"
    weight_decay: float = field(default=0.0, metadata=meta(ge=0))
    max_grad_norm: Optional[float] = field(default=1.0, metadata=meta(gt=0))
    group_by_length: bool = True
    save_every_steps: Optional[int] = field(default=None, metadata=meta(gt=0))
    keep_last: int = field(default=2, metadata=meta(gt=0))
    # None: start fresh; "auto": continue from the newest complete checkpoint in output_dir;
    # or a path to a checkpoint directory.
    resume: Optional[str] = None
    eval_at_epoch_end: bool = False
    log_every_steps: int = field(default=10, metadata=meta(gt=0))
    trackers: list[Literal["tensorboard", "wandb"]] = field(default_factory=lambda: ["tensorboard"])
    # Stop after this many optimizer steps (for smoke runs); None: run all epochs.
    max_steps: Optional[int] = field(default=None, metadata=meta(gt=0))


@dataclass
class EvalCsvPair:
    """A paper-format evaluation set: files per variant, e.g. {original: a.csv, negated: b.csv}."""

    name: str = ""
    files: dict[str, str] = field(default_factory=dict)
    # How the negated file's items are matched to the original's: by sample_id (default;
    # mismatching ids are an error) or by the prompt text minus the file-wide instruction
    # (needed for WebQ, whose negated file numbers its items differently).
    pair_by: Literal["sample_id", "prompt"] = "sample_id"


@dataclass
class FewshotConfig:
    """In-context demonstrations before each evaluated prompt (``negtune.evaluation.fewshot``)."""

    k: int = field(default=0, metadata=meta(ge=0))  # 0: zero-shot
    # fixed: one demonstration set per task (its prefix is run once and its key/value cache
    # reused); per_item: a new set for every item. Both are seeded per (seed, task, item).
    sampling: Literal["fixed", "per_item"] = "fixed"
    seed: int = 1234
    # train: each task's training split (fewshot.files, else data.files, else the hub);
    # eval: the evaluation set itself, minus the evaluated item; csv: paper-format files (fewshot.csv).
    source: Literal["train", "eval", "csv"] = "train"
    split: str = "train"
    files: dict[str, Union[str, list[str]]] = field(default_factory=dict)
    # source csv: per set name, paper-format files per variant: {piqa_generate: {original: a.csv, negated: b.csv}}
    csv: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass
class EvalConfig:
    # Registry tasks built with the data builder from `split` (local `files` or the hub).
    tasks: list[str] = field(default_factory=list)
    variants: list[str] = field(default_factory=lambda: ["original", "negated"])
    split: str = "validation"
    files: dict[str, Union[str, list[str]]] = field(default_factory=dict)
    max_instances: Optional[int] = field(default=None, metadata=meta(gt=0))
    # Paper-format CSV sets.
    csv: list[EvalCsvPair] = field(default_factory=list)
    # A directory of the paper's released CSVs: each of `tasks` is evaluated on its original and
    # negated file found there by name (instead of `split`/`files`), as in the paper.
    paper_csv_dir: Optional[str] = None
    batch_size: int = field(default=16, metadata=meta(gt=0))
    # "joint": option tokens are what prompt+option adds after the prompt (default);
    # "separate": prompt and option encoded separately (the paper's convention).
    tokenization: Literal["joint", "separate"] = "joint"
    limit: Optional[int] = field(default=None, metadata=meta(gt=0))
    fewshot: FewshotConfig = field(default_factory=FewshotConfig)
    # Score each option as the assistant's reply to the prompt (the user turn), rendered with
    # the tokenizer's chat template; system_prompt: null keeps the template's own default.
    chat_template: bool = False
    system_prompt: Optional[str] = None


@dataclass
class Recipe:
    seed: int = 42
    output_dir: str = "runs/default"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    # {name: ce, ...arguments}; validated by negtune.losses.
    loss: dict[str, Any] = field(default_factory=lambda: {"name": "ce"})
    eval: EvalConfig = field(default_factory=EvalConfig)
    # Where the recipe came from (not part of the schema; filled by load_recipe).
    source: str = field(default="<defaults>", metadata=meta(internal=True))


def _check_semantics(recipe: Recipe, src: str) -> None:
    """Cross-field rules that types alone cannot express."""
    if not recipe.output_dir.strip():
        raise UserError(f"{src}: output_dir: empty; name the run directory (e.g. runs/my-run)")
    if not recipe.data.tasks:
        raise UserError(f"{src}: data.tasks: must name at least one task")
    if not recipe.data.variants:
        raise UserError(f"{src}: data.variants: must name at least one variant")
    if len(set(recipe.data.variants)) != len(recipe.data.variants):
        raise UserError(f"{src}: data.variants: lists a variant twice")
    if recipe.data.pairs and len(recipe.data.variants) < 2:
        raise UserError(f"{src}: data.pairs: needs at least two data.variants to pair")
    for section in ("data", "eval"):
        cfg = getattr(recipe, section)
        for task in cfg.files:
            if task not in cfg.tasks:
                raise UserError(f"{src}: {section}.files.{task}: task is not listed in {section}.tasks")
    check_names(recipe.data.tasks, recipe.data.variants, "data", prefix=f"{src}: ")
    check_names(recipe.eval.tasks, recipe.eval.variants, "eval", prefix=f"{src}: ")
    loss = recipe.loss
    if not isinstance(loss.get("name"), str) or not loss["name"]:
        raise UserError(f"{src}: loss.name: required, a registered loss or 'module.path:function'")
    if recipe.eval.paper_csv_dir:
        _check_paper_csv_dir(recipe.eval, src)
    for i, pair in enumerate(recipe.eval.csv):
        if not pair.files:
            raise UserError(f"{src}: eval.csv[{i}].files: must map a variant to a CSV file")
    check_fewshot(recipe.eval.fewshot, src)
    if recipe.model.peft == "none" and recipe.model.dtype == "float16":
        # Full fp16 fine-tuning with AdamW diverges without loss scaling; say so up front.
        raise UserError(
            f"{src}: model.dtype: float16 full fine-tuning is unsupported; use bfloat16 or float32"
        )


def _check_paper_csv_dir(cfg: EvalConfig, src: str) -> None:
    if not cfg.tasks:
        raise UserError(f"{src}: eval.paper_csv_dir: list the tasks to evaluate in eval.tasks")
    if cfg.files:
        task = next(iter(cfg.files))
        raise UserError(f"{src}: eval.files.{task}: conflicts with eval.paper_csv_dir (the paper's files are the evaluation set)")
    for i, task in enumerate(cfg.tasks):
        if not get_task(task).paper_files:
            raise UserError(f"{src}: eval.tasks[{i}]: task {task!r} has no paper CSV files (eval.paper_csv_dir)")


def check_fewshot(fs: FewshotConfig, src: str) -> None:
    """Few-shot rules beyond types (recipes and `negtune eval` flags share them)."""
    if fs.source == "csv" and fs.k > 0 and not fs.csv:
        raise UserError(f"{src}: eval.fewshot.csv: source csv needs demonstration files per set "
                        "({SET: {original: a.csv, negated: b.csv}})")
    for name, files in fs.csv.items():
        if not files:
            raise UserError(f"{src}: eval.fewshot.csv.{name}: must map a variant to a CSV file")
        for variant in files:
            if variant not in ("original", "negated", "instruction_free"):
                raise UserError(f"{src}: eval.fewshot.csv.{name}.{variant}: unknown variant "
                                "(original, negated, instruction_free)")


# --------------------------------------------------------------------------- loading


def parse_overrides(overrides: list[str]) -> list[tuple[list[str], Any]]:
    """Parse ``a.b.c=value`` strings; the value is read as YAML (``1e-3``, ``[a, b]``, ``null``)."""
    parsed = []
    for item in overrides:
        if "=" not in item:
            hint = " (a checkpoint to resume from is given as --resume=PATH)" if "/" in item else ""
            raise UserError(f"override {item!r}: expected key.path=value{hint}")
        key, _, text = item.partition("=")
        if not key or any(not part for part in key.split(".")):
            raise UserError(f"override {item!r}: malformed key path")
        try:
            value = yaml.safe_load(text) if text != "" else ""
        except yaml.YAMLError:
            value = text
        parsed.append((key.split("."), value))
    return parsed


def _apply_override(raw: dict[str, Any], path: list[str], value: Any) -> None:
    node = raw
    for part in path[:-1]:
        nxt = node.get(part)
        if nxt is None:
            nxt = node[part] = {}
        if not isinstance(nxt, dict):
            raise UserError(f"override {'.'.join(path)}: {part} is not a mapping")
        node = nxt
    node[path[-1]] = value


def recipe_from_dict(raw: Any, source: str = "<dict>", overrides: list[str] | None = None) -> Recipe:
    """Validate a raw mapping (plus overrides) into a Recipe; raise UserError on any problem."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise UserError(f"{source}: top level: expected a mapping, got {type(raw).__name__}")
    _check_size(raw, source)
    raw = json.loads(json.dumps(raw, default=str))  # deep copy; our overrides must not leak
    for path, value in parse_overrides(overrides or []):
        _apply_override(raw, path, value)
    raw.setdefault("model", {})
    recipe = build_dataclass(Recipe, raw, "", source)
    recipe.source = source
    _check_semantics(recipe, source)
    return recipe


MAX_RECIPE_BYTES = 1 << 20
MAX_RECIPE_NODES = 100_000  # values after expanding YAML aliases; a real recipe has a few hundred


class _RecipeLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing duplicate keys (the last one would silently win)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def _check_size(raw: Any, source: str) -> None:
    """Refuse a recipe whose expanded size is absurd (a YAML alias bomb: a few lines whose
    aliases expand to billions of values). Counts with memoisation, so the check is cheap."""
    sizes: dict[int, int] = {}

    def size(value: Any) -> int:
        key = id(value)
        if key in sizes:
            return sizes[key]
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        total = 1
        for child in children:
            total += size(child)
            if total > MAX_RECIPE_NODES:
                break
        sizes[key] = total
        return total

    if size(raw) > MAX_RECIPE_NODES:
        raise UserError(f"{source}: recipe expands to more than {MAX_RECIPE_NODES} values (YAML aliases?); refusing it")


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> Recipe:
    """Read and validate a recipe file. Relative paths inside it stay relative to the CWD."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{path}: recipe file not found")
    data = p.read_bytes()
    if len(data) > MAX_RECIPE_BYTES:
        raise UserError(f"{path}: {len(data)} bytes; a recipe is a small YAML file (at most {MAX_RECIPE_BYTES})")
    try:
        text = data.decode("utf-8")
        if "\x00" in text:
            raise UnicodeDecodeError("utf-8", data, 0, 1, "NUL byte")
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a text file; a recipe is YAML") from None
    try:
        raw = yaml.load(text, Loader=_RecipeLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or "invalid YAML"
        raise UserError(f"{path}:{line}: {problem}") from None
    return recipe_from_dict(raw, str(path), overrides)


def recipe_to_dict(recipe: Recipe) -> dict[str, Any]:
    out = dataclasses.asdict(recipe)
    out.pop("source", None)
    return out


def recipe_hash(recipe: Recipe) -> str:
    """sha256 of the resolved recipe in canonical JSON: names a run's exact settings."""
    text = json.dumps(recipe_to_dict(recipe), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


RESOLVED_HEADER = "# resolved from "


def dump_recipe(recipe: Recipe) -> str:
    header = f"{RESOLVED_HEADER}{recipe.source}; sha256 {recipe_hash(recipe)}\n"
    return header + yaml.safe_dump(recipe_to_dict(recipe), sort_keys=False)


def save_resolved(recipe: Recipe, directory: str | Path) -> Path:
    """Write ``recipe.resolved.yaml`` beside an output, atomically."""
    from negtune.io import write_text

    target = Path(directory) / "recipe.resolved.yaml"
    write_text(target, dump_recipe(recipe))
    return target
