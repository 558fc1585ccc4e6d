"""Option completion for tasks whose sources give answers, not options (LAMBADA and QA).

Why seeded rules: the paper's multiple-choice versions of LAMBADA, WebQuestions, NQ and
TriviaQA add distractors the sources do not hold. Each rule below is a pure function of
``(seed, task, item id)`` (``negtune.data.seeded``) and of its pool, so a build is
reproducible and raising the cap only adds items. A task entry names its rule as
``TaskSpec.complete_options``; the builder calls it with an ``OptionRules`` and without
knowing which rule it is.

* ``complete_lambada``: 3 distinct passage tokens other than the target (case-insensitive),
  drawn with ``random.Random(seeded_int(seed, task, "lambada", id))``; the 4 options are then
  shuffled by the same generator; each capitalised (" Cutter"). Two token rules
  (``data.lambada_distractors``):

  - ``paper`` (default): the paper's rule, "a random word from the given input instance":
    any whitespace token of the tokenised passage, punctuation tokens (``.``, ``''``) and
    clitics (``'s``, ``n't``) included. The paper's 350 released items (300 + 50 files, 1,050
    distractors) hold 82 punctuation tokens and 34 clitics, are distinct within an item, never
    equal the target, and are drawn uniformly over the passage's distinct tokens (their mean
    passage frequency is 0.0198, against 0.0202 expected for that and 0.0294 for a draw by
    occurrence).
  - ``words``: negtune's earlier, cleaner rule: tokens with surrounding punctuation stripped
    that contain a letter; clitics skipped.

* ``complete_qa``: the paper's rule: the distractor comes "from the answer candidate list from
  the training set that did not overlap with any of the answer candidates from the test set".
  The builder passes that pool (``OptionRules.pool``: the training split's gold answers minus
  every answer of the recipe's evaluation sets, see ``negtune.data.reader``) to training *and*
  evaluation instances alike. Per question: a seeded start in the pool (deduplicated after
  normalisation and sorted), skipping any entry that normalises (lower-case, no
  punctuation/articles/extra spaces) to one of this question's answers; gold first or second
  by ``random.Random(seeded_int(seed, task, "distractor", id))``.
"""
from __future__ import annotations

import random
import re
import string
from dataclasses import dataclass
from typing import Iterable, Literal, Optional

from negtune.data.fields import cap_first, fmt_option
from negtune.data.instances import Item
from negtune.data.seeded import seeded_int
from negtune.errors import UserError

_PUNCT = set(string.punctuation) | set("“”‘’«»…–—")
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_NO_PUNCT = str.maketrans("", "", "".join(sorted(_PUNCT)))
_WORD_STRIP = "".join(sorted(_PUNCT))

LambadaRule = Literal["paper", "words"]
LAMBADA_RULES = ("paper", "words")


@dataclass(frozen=True)
class OptionRules:
    """What the option rules need beyond the items: the QA distractor pool (answers from the
    training split, evaluation answers removed) and the LAMBADA token rule."""

    pool: Optional[tuple[str, ...]] = None
    lambada: LambadaRule = "paper"
    pool_from: str = ""  # where the pool came from, for error messages


def normalize_answer(text: str) -> str:
    """SQuAD-style answer normalisation: lower-case, no punctuation, articles or extra spaces."""
    text = text.lower().translate(_NO_PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def passage_words(context: str) -> list[str]:
    """Distinct (case-insensitive) words of a passage, first spelling kept, in passage order.

    A word is a whitespace token with its surrounding punctuation stripped that contains a
    letter; clitics of the tokenised LAMBADA text ('s, 'll, n't) are not words.
    """
    seen: dict[str, str] = {}
    for token in context.split():
        if token[0] in "'’" or token.lower() in ("n't", "n’t"):  # clitics of tokenised text: 's 'll n't
            continue
        word = token.strip(_WORD_STRIP)
        if word and any(ch.isalpha() for ch in word) and word.lower() not in seen:
            seen[word.lower()] = word
    return list(seen.values())


def passage_tokens(context: str) -> list[str]:
    """Distinct (case-insensitive) whitespace tokens of a passage, in passage order: the paper's
    "random word from the given input instance", punctuation tokens and clitics included."""
    seen: dict[str, str] = {}
    for token in context.split():
        seen.setdefault(token.lower(), token)
    return list(seen.values())


def complete_lambada(items: list[Item], seed: int, task: str, rules: OptionRules = OptionRules()) -> None:
    """Four options per passage: the target and three other tokens of the passage."""
    if rules.lambada not in LAMBADA_RULES:
        raise UserError(f"data.lambada_distractors: unknown rule {rules.lambada!r} (use {', '.join(LAMBADA_RULES)})")
    candidates = passage_tokens if rules.lambada == "paper" else passage_words
    what = "paper" if rules.lambada == "paper" else "words"
    for item in items:
        gold = item.answers[0]
        # Different spellings of one token (e.g. "Cutter"/"cutter") were merged above.
        pool = [w for w in candidates(item.fields["context"]) if w.lower() != gold.lower()]
        if len(pool) < 3:
            raise UserError(f"{item.where}: passage has fewer than 3 distinct words besides the target {gold!r} ({what} rule)")
        rng = random.Random(seeded_int(seed, task, "lambada", item.id))
        words = [gold] + rng.sample(pool, 3)
        order = list(range(4))
        rng.shuffle(order)
        item.options = tuple(" " + cap_first(words[i]) for i in order)
        item.answer = order.index(0)


def answer_pool(train_answers: Iterable[str], excluded: Iterable[str]) -> tuple[str, ...]:
    """The paper's QA distractor pool: training answers (one spelling per normalised form,
    sorted by that form) minus any that normalise to an evaluation answer."""
    banned = {normalize_answer(a) for a in excluded}
    by_norm: dict[str, str] = {}
    for answer in train_answers:
        norm = normalize_answer(answer)
        if norm and norm not in banned:
            by_norm.setdefault(norm, answer)
    return tuple(by_norm[k] for k in sorted(by_norm))


def complete_qa(items: list[Item], seed: int, task: str, rules: OptionRules = OptionRules()) -> None:
    """Two options per question: its first answer and one answer from the training pool."""
    if rules.pool is None:
        raise UserError(f"{task}: no distractor pool (the builder passes the training answers)")
    pool_keys = [normalize_answer(a) for a in rules.pool]
    pool_opts = [fmt_option(a) for a in rules.pool]
    for item in items:
        banned = {normalize_answer(a) for a in item.answers}
        gold_opt = fmt_option(item.answers[0])
        rng = random.Random(seeded_int(seed, task, "distractor", item.id))
        distractor = None
        if pool_keys:
            start = rng.randrange(len(pool_keys))
            for step in range(len(pool_keys)):
                k = (start + step) % len(pool_keys)
                if pool_keys[k] not in banned and pool_opts[k] != gold_opt:
                    distractor = pool_opts[k]
                    break
        if distractor is None:
            source = f" ({rules.pool_from})" if rules.pool_from else ""
            raise UserError(
                f"{item.where}: no distractor: the training answers{source} hold no answer that is "
                "neither an alias of this one nor an answer of an evaluation set"
            )
        if rng.random() < 0.5:
            item.options, item.answer = (gold_opt, distractor), 0
        else:
            item.options, item.answer = (distractor, gold_opt), 1
