"""The results file as typed data: the one writer and the one reader.

Why one package: ``negtune eval`` writes a results JSON (``--out``, or
``RUN_DIR/eval/<checkpoint>.json``), and the run summaries, the report, the demo, the trainer's
epoch-end log line and ``negtune compare`` all read it. Parsing it by hand in each of them
lets the readers drift from the writer; here the file is a tree of dataclasses with one
``to_json`` and one ``from_json`` (a malformed file is a one-line ``UserError`` naming the
path and key), the way lm-evaluation-harness keeps its result objects in one place.

Import from here (``from negtune.results import Results``); the parts live in
``results.file`` (``Results``: read/write), ``results.scores`` (the numbers),
``results.run_info`` (how they were made), ``results.fields`` (checking one JSON value) and
``results.formatting`` (how tables print a metric).

Layout of the JSON (keys sorted when written)::

    {"format": "negtune-results/1",
     "model", "adapter", "checkpoint", "label", "run", "loss", "recipe_hash", "step", "epoch",
     "inputs": [...], "tokenization", "versions": {...},
     "settings": {"limit", "dtype", "tokenization", "method", "max_length", "prompting", "sets_sha256"},
     "scoring": {"method", "batch_size", "dtype", "seconds", "n_instances", "n_options", "max_length",
                 "n_truncated", "architecture", "processes"},
     "n_params", "model_type",
     "prompting": {"chat_template", "system_prompt", "fewshot_k", "fewshot_sampling", "fewshot_seed",
                   "fewshot_source", "n_fewshot_reduced", "min_fewshot_used"},
     "tasks": {TASK: {VARIANT: {"acc", "acc_tok_mean", "chance", "n", "ci": [low, high]}, ...,
                      "n_pairs", "mean", "both_correct", "flip_rate", "instruction_free_agreement",
                      "ci": {"mean": [low, high], "both_correct": [...], "flip_rate": [...]},
                      "tok_mean": {"mean", "both_correct", "flip_rate", "instruction_free_agreement"},
                      "items": {VARIANT: {"id": [...], "pred": [...], "correct": [0|1, ...],
                                          "hash": [...], "pred_hash": [...]}}}},
     "summary": {"original_acc", "negated_acc", "mean", "both_correct", "flip_rate",
                 "instruction_free_agreement", "original_acc_tok_mean", "negated_acc_tok_mean",
                 "mean_tok_mean", "n_tasks", "ci": {METRIC: [low, high]}},
     "intervals": {"level", "accuracy", "paired", "macro", "resamples", "seed"}}

The metrics are defined in ``negtune.evaluation.metrics``, the intervals (95%: Wilson for a
variant's accuracy, a paired bootstrap over items for the pair metrics and the macro numbers)
in ``negtune.evaluation.stats``. ``items`` holds one record per item and variant, so that
``negtune compare`` can pair two models item by item; files written before it existed load
with empty ``items`` and ``ci`` (compare then refuses them).
"""
from __future__ import annotations

# The public names, re-exported: ``from negtune.results import X`` is the import path.
from negtune.results.fields import Bounds  # noqa: F401
from negtune.results.file import FORMAT, Results  # noqa: F401
from negtune.results.formatting import finite_or_none, format_metric  # noqa: F401
from negtune.results.run_info import EvalSettings, IntervalInfo, PromptInfo, ScoringInfo  # noqa: F401
from negtune.results.scores import PAIR_KEYS, SUMMARY_KEYS, ItemRecords, PairScores, Summary  # noqa: F401
from negtune.results.scores import TaskResult, VariantScore  # noqa: F401
