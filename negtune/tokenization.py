"""How a (prompt, option) pair becomes tokens: one convention shared by scoring and training.

Why one module: the evaluator's log-likelihoods and the trainer's target tokens must cut
prompt from answer at the same place, or fine-tuning optimises something the evaluator
does not measure.

The scored (and trained) sequence is always ``prompt_ids + option_ids``:

* ``joint`` (default): the prompt is encoded with the tokenizer's own special tokens (BOS
  for OPT). Trailing whitespace of the prompt is moved to the start of the option (as
  lm-evaluation-harness does), and the option's tokens are what the encoding of
  ``prompt + option`` adds after the prompt's tokens. BPE merges across the boundary are
  therefore seen the way the model saw them in pre-training text.
* ``separate`` (the paper's convention): prompt and option are encoded independently, the
  option without special tokens.

Because ``prompt_ids`` never depends on the option, every option of an item shares the
same prompt prefix, which is what lets the scorer run the prompt once.

Length: one rule for training and scoring. A sequence is cut at the *effective* max length,
``min(model.max_length from the recipe, the model's own limit)`` (``effective_max_length``);
without a recipe (``negtune eval --model``) it is the model's limit. Longer prompts lose
tokens from the left (a leading BOS is kept); the option is never cut. So a model is scored
on exactly the prompts it was trained on, and the results record the length and how many
items were cut.
"""
from __future__ import annotations

from typing import Any, Literal

from negtune.errors import UserError

Mode = Literal["joint", "separate"]
MODES = ("joint", "separate")
IGNORE_INDEX = -100  # label of tokens that are not trained on (prompt, padding), as in transformers


def _split_trailing_space(prompt: str, option: str) -> tuple[str, str]:
    stripped = prompt.rstrip()
    return stripped, prompt[len(stripped):] + option


def encode_pair(tokenizer: Any, prompt: str, option: str, mode: Mode = "joint",
                add_special_tokens: bool = True) -> tuple[list[int], list[int]]:
    """Return ``(prompt_ids, option_ids)`` for one prompt and one answer option.

    ``add_special_tokens=False`` for a prompt that already carries them (a rendered chat
    template starts with its own markers; adding BOS again would double it).
    """
    if mode not in MODES:
        raise UserError(f"tokenization: unknown mode {mode!r} (use joint or separate)")
    if mode == "separate":
        prompt_ids = list(tokenizer(prompt, add_special_tokens=add_special_tokens)["input_ids"])
        option_ids = list(tokenizer(option, add_special_tokens=False)["input_ids"])
    else:
        context, continuation = _split_trailing_space(prompt, option)
        prompt_ids = list(tokenizer(context, add_special_tokens=add_special_tokens)["input_ids"])
        whole = list(tokenizer(context + continuation, add_special_tokens=add_special_tokens)["input_ids"])
        option_ids = whole[len(prompt_ids):]
    if not option_ids:
        raise UserError(f"tokenization: option {option!r} encodes to no tokens after prompt {prompt[-40:]!r}")
    return prompt_ids, option_ids


def truncate_left(prompt_ids: list[int], option_ids: list[int], max_length: int | None,
                  bos_token_id: int | None = None) -> list[int]:
    """Trim the prompt from the left so that prompt+option fits ``max_length``.

    The option is never cut (it is what is scored or trained); a leading BOS is kept.
    """
    if max_length is None or len(prompt_ids) + len(option_ids) <= max_length:
        return prompt_ids
    keep_bos = bool(prompt_ids) and bos_token_id is not None and prompt_ids[0] == bos_token_id
    room = max_length - len(option_ids) - (1 if keep_bos else 0)
    if room < 1:
        raise UserError(f"tokenization: option of {len(option_ids)} tokens does not fit max_length {max_length}")
    body = prompt_ids[1:] if keep_bos else prompt_ids
    return ([prompt_ids[0]] if keep_bos else []) + body[-room:]


def encode_truncated(tokenizer: Any, prompt: str, option: str, max_length: int | None,
                     mode: Mode = "joint") -> tuple[list[int], list[int]]:
    """``encode_pair`` then ``truncate_left``: exactly what the scorer scores and the trainer trains."""
    prompt_ids, option_ids = encode_pair(tokenizer, prompt, option, mode)
    prompt_ids = truncate_left(prompt_ids, option_ids, max_length, getattr(tokenizer, "bos_token_id", None))
    return prompt_ids, option_ids


def model_max_length(model: Any, tokenizer: Any = None) -> int | None:
    """The longest sequence the model can take: position table size or tokenizer limit."""
    cfg = getattr(model, "config", None)
    limits = []
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(cfg, key, None)
        if isinstance(value, int) and value > 0:
            limits.append(value)
            break
    tok_max = getattr(tokenizer, "model_max_length", None)
    if isinstance(tok_max, int) and 0 < tok_max < 1_000_000:
        limits.append(tok_max)
    return min(limits) if limits else None


def effective_max_length(model: Any, tokenizer: Any, requested: int | None) -> int | None:
    """``min(requested, the model's limit)``, the one length rule of training and scoring."""
    limit = model_max_length(model, tokenizer)
    if requested is None:
        return limit
    return requested if limit is None else min(requested, limit)
