"""Training rows and batches: what every loss receives.

Why here and not in the trainer: the loss declares which data it needs (``needs``), and
this module is the one place that turns instances into exactly that, so the trainer never
branches on loss names. Prompt and answer are cut with ``negtune.tokenization.encode_pair``
+ ``truncate_left``, the same functions the evaluator uses, so the tokens trained on are the
tokens scored. (Like TRL's completion-only loss, the prompt/answer boundary is fixed at
tokenization time and the collator turns it into ``-100`` labels; no template search.)

Rows
----
``TrainExamples(instances, needs, tokenizer=None, max_length=None, tokenization="joint")``:

* without ``"paired"``: one row per instance, in the given order;
* with ``"paired"``: one row per *negated* instance, with its original-variant partner (same
  ``pair_key``) attached. Several negated instances of one item (``negated_target:
  all_wrong``) share the same partner; each such row carries ``pair_weight`` = 1/k (k = the
  item's negated rows), so that losses summing over partners count each original instance
  once per item, as a data set holding both variants would (1 under ``seeded``). Instances
  of other variants are not rows (their count is logged). A negated instance with no
  original partner is a ``UserError`` naming it (the recipe's ``data.pairs: true``
  guarantees partners, so a missing one means the data was not built for pairing; silently
  dropping rows would change the training set behind the user's back). If an item has
  several original instances the first one is the partner.

Given a tokenizer, rows are tokenized once up front and ``.lengths`` are exact token counts
(prompt + target answer, after truncation) for a length-grouped sampler. Without one, rows
are tokenized in the collator and ``.lengths`` are character counts (a proxy).

Batches
-------
``Collator(tokenizer, needs, max_length, tokenization)(rows)`` returns a dict of tensors;
padding on the right with ``tokenizer.pad_token_id`` (else ``eos_token_id``):

* ``input_ids``, ``attention_mask`` [B, L]; ``labels`` [B, L] = input_ids with ``-100`` on
  prompt tokens and padding (unshifted: position t's label is token t, as in Hugging Face;
  losses shift); ``n_target_tokens`` (0-d long tensor) = number of non-``-100`` labels.
* with ``"paired"``: ``pair_input_ids``, ``pair_attention_mask``, ``pair_labels`` [B, Lp],
  ``pair_n_target_tokens``: the original partner of each row, same conventions;
  ``pair_weight`` [B] float: the row's partner weight (see Rows).
* with ``"all_options"``: every option of every row, flattened to N = sum of option counts:
  ``opt_input_ids``, ``opt_attention_mask``, ``opt_labels`` [N, Lo]; ``opt_row`` [N] (batch
  row), ``opt_index`` [N] (option index within its instance), ``opt_is_target`` [N] bool,
  ``opt_is_gold`` [N] bool.

Deterministic: no randomness anywhere here.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Iterable, Optional, Sequence

import torch
from torch.utils.data import Dataset

from negtune.data.instances import Instance
from negtune.errors import UserError
from negtune.tokenization import IGNORE_INDEX, encode_truncated
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Encoded:
    """One prompt+answer sequence: ``ids = prompt + answer``; the first ``n_prompt`` are prompt."""

    ids: tuple[int, ...]
    n_prompt: int


def encode_option(tokenizer: Any, prompt: str, option: str, max_length: Optional[int],
                  mode: str = "joint") -> Encoded:
    prompt_ids, option_ids = encode_truncated(tokenizer, prompt, option, max_length, mode)
    return Encoded(tuple(prompt_ids) + tuple(option_ids), len(prompt_ids))


def encode_row(row: dict, tokenizer: Any, needs: Iterable[str], max_length: Optional[int],
               mode: str = "joint") -> dict:
    """Add token features to a raw row ``{"instance": Instance, "pair": Instance|None}``."""
    needs = set(needs)
    inst: Instance = row["instance"]
    out = dict(row)
    if "all_options" in needs:
        options = [encode_option(tokenizer, inst.prompt, o, max_length, mode) for o in inst.options]
        out["options"] = options
        out["target_enc"] = options[inst.target]
    else:
        out["target_enc"] = encode_option(tokenizer, inst.prompt, inst.options[inst.target], max_length, mode)
    if "paired" in needs:
        pair: Instance = row["pair"]
        out["pair_enc"] = encode_option(tokenizer, pair.prompt, pair.options[pair.target], max_length, mode)
    return out


def _check_instance(inst: Instance, i: int) -> None:
    if not 0 <= inst.target < len(inst.options):
        raise UserError(f"training data: row {i} ({inst.uid}): target {inst.target} is not an option index")


class TrainExamples(Dataset):
    """Rows to train on (see module docstring)."""

    def __init__(self, instances: Sequence[Instance], needs: Iterable[str] = (), tokenizer: Any = None,
                 max_length: Optional[int] = None, tokenization: str = "joint"):
        self.needs = frozenset(needs)
        self.tokenization = tokenization
        self.max_length = max_length
        rows: list[dict] = []
        if "paired" in self.needs:
            originals: dict[tuple[str, str], Instance] = {}
            for inst in instances:
                if inst.variant == "original":
                    originals.setdefault(inst.pair_key, inst)
            skipped: dict[str, int] = {}
            for i, inst in enumerate(instances):
                if inst.variant != "negated":
                    if inst.variant != "original":
                        skipped[inst.variant] = skipped.get(inst.variant, 0) + 1
                    continue
                _check_instance(inst, i)
                pair = originals.get(inst.pair_key)
                if pair is None:
                    raise UserError(
                        f"training data: row {i} ({inst.uid}): negated instance has no original-variant "
                        "partner with the same task and source_id; the loss needs pairs: build the data "
                        "with data.variants: [original, negated] and data.pairs: true"
                    )
                rows.append({"instance": inst, "pair": pair})
            if not rows:
                raise UserError("training data: the loss needs original/negated pairs but there is no "
                                "negated instance; set data.variants: [original, negated] and data.pairs: true")
            sharing: dict[tuple[str, str], int] = {}
            for row in rows:
                sharing[row["pair"].pair_key] = sharing.get(row["pair"].pair_key, 0) + 1
            for row in rows:
                row["pair_weight"] = 1.0 / sharing[row["pair"].pair_key]
            n_orig = len(sharing)
            log.info("paired rows: %d negated rows, %d original partners (one shared by k rows weighs 1/k)%s",
                     len(rows), n_orig,
                     "".join(f", {n} {v} instances not used" for v, n in sorted(skipped.items())))
        else:
            for i, inst in enumerate(instances):
                _check_instance(inst, i)
                rows.append({"instance": inst, "pair": None})
        self.tokenizer = tokenizer
        if tokenizer is not None:
            rows = [encode_row(r, tokenizer, self.needs, max_length, tokenization) for r in rows]
            self.lengths = [len(r["target_enc"].ids) for r in rows]
        else:
            self.lengths = [len(r["instance"].prompt) + len(r["instance"].options[r["instance"].target])
                            for r in rows]
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        return self.rows[i]


def _pad(seqs: list[Encoded], pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    width = max(len(s.ids) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    labels = torch.full((len(seqs), width), IGNORE_INDEX, dtype=torch.long)
    for r, s in enumerate(seqs):
        n = len(s.ids)
        row = torch.tensor(s.ids, dtype=torch.long)
        ids[r, :n] = row
        mask[r, :n] = 1
        labels[r, s.n_prompt:n] = row[s.n_prompt:]
    return ids, mask, labels


class Collator:
    """Turn rows of ``TrainExamples`` into a batch dict (see module docstring)."""

    def __init__(self, tokenizer: Any, needs: Iterable[str] = (), max_length: Optional[int] = None,
                 tokenization: str = "joint"):
        self.tokenizer = tokenizer
        self.needs = frozenset(needs)
        self.max_length = max_length
        self.tokenization = tokenization
        pad = getattr(tokenizer, "pad_token_id", None)
        if pad is None:
            pad = getattr(tokenizer, "eos_token_id", None)
        if pad is None:
            raise UserError("tokenizer: has neither a pad token nor an eos token to pad with")
        self.pad_id = int(pad)

    def _encoded(self, row: dict) -> dict:
        have = "target_enc" in row
        if have and "all_options" in self.needs and "options" not in row:
            have = False
        if have and "paired" in self.needs and "pair_enc" not in row:
            have = False
        if have:
            return row
        return encode_row(row, self.tokenizer, self.needs, self.max_length, self.tokenization)

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        if not rows:
            raise ValueError("Collator: empty batch")
        rows = [self._encoded(r) for r in rows]
        batch: dict[str, torch.Tensor] = {}
        ids, mask, labels = _pad([r["target_enc"] for r in rows], self.pad_id)
        batch.update(input_ids=ids, attention_mask=mask, labels=labels,
                     n_target_tokens=(labels != IGNORE_INDEX).sum())
        if "paired" in self.needs:
            ids, mask, labels = _pad([r["pair_enc"] for r in rows], self.pad_id)
            batch.update(pair_input_ids=ids, pair_attention_mask=mask, pair_labels=labels,
                         pair_n_target_tokens=(labels != IGNORE_INDEX).sum(),
                         pair_weight=torch.tensor([r["pair_weight"] for r in rows], dtype=torch.float32))
        if "all_options" in self.needs:
            seqs, row_idx, opt_idx, is_target, is_gold = [], [], [], [], []
            for r, row in enumerate(rows):
                inst: Instance = row["instance"]
                gold = set(inst.gold)
                for k, enc in enumerate(row["options"]):
                    seqs.append(enc)
                    row_idx.append(r)
                    opt_idx.append(k)
                    is_target.append(k == inst.target)
                    is_gold.append(k in gold)
            ids, mask, labels = _pad(seqs, self.pad_id)
            batch.update(
                opt_input_ids=ids, opt_attention_mask=mask, opt_labels=labels,
                opt_row=torch.tensor(row_idx, dtype=torch.long),
                opt_index=torch.tensor(opt_idx, dtype=torch.long),
                opt_is_target=torch.tensor(is_target, dtype=torch.bool),
                opt_is_gold=torch.tensor(is_gold, dtype=torch.bool),
            )
        return batch
