"""What the model reads for one item: demonstrations, chat template, tokens, length limit.

Why one module: plain, few-shot, chat and encoder-decoder scoring differ only in how an
item becomes ``(prompt_ids, option_ids)`` per option; the scorer after that is the same.

Context formats (``PromptFormat``):

* plain (default): ``demo_1 + "\\n\\n" + ... + demo_k + "\\n\\n" + prompt``, each demonstration
  being its prompt followed directly by its answer option. Options carry their own leading
  space (" Paris"), so this is lm-evaluation-harness's ``doc_to_text + " " + choice`` with
  ``fewshot_delimiter`` "\\n\\n".
* chat template (``eval.chat_template: true``): ``tokenizer.apply_chat_template(messages,
  add_generation_prompt=True, tokenize=False)`` with the prompt as the user turn and each
  demonstration as a user turn plus an assistant turn (lm-evaluation-harness's
  ``fewshot_as_multiturn``); an optional system turn first (``eval.system_prompt``; without
  one the template's own default applies, e.g. SmolLM2's "You are a helpful AI assistant...").
  An option is the assistant's reply, so its leading space is dropped (" Paris" -> "Paris",
  as lm-evaluation-harness sets the target delimiter to "" under a chat template). The
  rendered text already holds the template's special tokens, so it is encoded with
  ``add_special_tokens=False`` (no doubled BOS). Under ``joint`` tokenization the whitespace
  that ends the template (ChatML's "\\n" after "assistant") moves onto the option and is
  scored with it, as in lm-evaluation-harness's ``_encode_pair``: the same token for every
  option of an item, so it never changes which option wins by sum.
* encoder-decoder models: the context is the encoder input, encoded with the tokenizer's
  defaults (T5 appends ``</s>``); the option is the decoder target, encoded without special
  tokens (no EOS is scored). ``joint`` moves the context's trailing whitespace onto the option.

Length: when an item does not fit ``max_length`` (``negtune.tokenization.effective_max_length``),
whole demonstrations are dropped from the left (the earliest first) until it fits, so the item
itself is never cut while any demonstration is left; only an item that does not fit alone is
cut from the left token-wise (a leading BOS is kept; the option never). Both are recorded per
item (``n_demos``, ``truncated``) and counted in the results.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

from negtune.data.instances import Instance
from negtune.errors import UserError
from negtune.tokenization import encode_pair, truncate_left

FEWSHOT_DELIMITER = "\n\n"


@dataclass(frozen=True)
class PromptFormat:
    chat_template: bool = False
    system_prompt: Optional[str] = None


@dataclass
class EncodedItem:
    pairs: list[tuple[list[int], list[int]]]  # per option: (prompt_ids, option_ids)
    truncated: bool  # the item's own prompt lost tokens from the left
    n_demos: int  # demonstrations kept (fewer than given when they did not fit)


def demos_of(inst: Instance) -> list[list[str]]:
    return list(inst.meta.get("demos") or [])


def has_chat_template(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def chat_messages(inst: Instance, demos: Sequence[Sequence[str]], system_prompt: Optional[str]) -> list[dict]:
    messages = [{"role": "system", "content": system_prompt}] if system_prompt is not None else []
    for prompt, answer in demos:
        messages += [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer.lstrip()}]
    return messages + [{"role": "user", "content": inst.prompt}]


def render(inst: Instance, fmt: PromptFormat, tokenizer: Any, n_demos: int) -> tuple[str, list[str], bool]:
    """``(context, options, add_special_tokens)`` with the last ``n_demos`` demonstrations."""
    demos = demos_of(inst)
    demos = demos[len(demos) - n_demos:] if n_demos else []
    if not fmt.chat_template:
        context = "".join(p + a + FEWSHOT_DELIMITER for p, a in demos) + inst.prompt
        return context, list(inst.options), True
    if not has_chat_template(tokenizer):
        raise UserError("eval.chat_template: true, but the model's tokenizer has no chat template "
                        "(tokenizer_config.json: chat_template)")
    context = tokenizer.apply_chat_template(chat_messages(inst, demos, fmt.system_prompt), tokenize=False,
                                            add_generation_prompt=True)
    return context, [o.lstrip() or o for o in inst.options], False


def _encode_seq2seq(tokenizer: Any, context: str, option: str, mode: str, special: bool) -> tuple[list[int], list[int]]:
    if mode == "joint":
        stripped = context.rstrip()
        context, option = stripped, context[len(stripped):] + option
    prompt_ids = list(tokenizer(context, add_special_tokens=special)["input_ids"])
    option_ids = list(tokenizer(option, add_special_tokens=False)["input_ids"])
    if not option_ids:
        raise UserError(f"tokenization: option {option!r} encodes to no tokens")
    return prompt_ids, option_ids


def encode_item(tokenizer: Any, inst: Instance, tokenization: str, max_length: Optional[int],
                fmt: PromptFormat, seq2seq: bool = False) -> EncodedItem:
    """Encode every option of ``inst``; drop demonstrations, then cut, to fit ``max_length``."""
    def fits(prompt: list[int], option: list[int]) -> bool:
        return max_length is None or len(prompt) + (0 if seq2seq else len(option)) <= max_length

    n = len(demos_of(inst))
    while True:
        context, options, special = render(inst, fmt, tokenizer, n)
        if seq2seq:
            pairs = [_encode_seq2seq(tokenizer, context, o, tokenization, special) for o in options]
        else:
            pairs = [encode_pair(tokenizer, context, o, tokenization, special)  # type: ignore[arg-type]
                     for o in options]
        if all(fits(p, o) for p, o in pairs) or n == 0:
            break
        n -= 1
    bos = getattr(tokenizer, "bos_token_id", None)
    out, truncated = [], False
    for prompt_ids, option_ids in pairs:
        cut = truncate_left(prompt_ids, [] if seq2seq else option_ids, max_length, bos)
        truncated |= len(cut) < len(prompt_ids)
        if not cut:
            raise UserError(f"{inst.task}: item {inst.source_id}: prompt encodes to no tokens; "
                            "nothing to condition the option on")
        out.append((cut, option_ids))
    return EncodedItem(out, truncated, n)


def encode_items(tokenizer: Any, instances: Sequence[Instance], tokenization: str = "joint",
                 max_length: Optional[int] = None, fmt: Optional[PromptFormat] = None,
                 seq2seq: bool = False) -> list[EncodedItem]:
    fmt = fmt or PromptFormat()
    return [encode_item(tokenizer, inst, tokenization, max_length, fmt, seq2seq) for inst in instances]
