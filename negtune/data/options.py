"""Option completion for tasks whose sources give answers, not options (LAMBADA and QA).

Why seeded rules: the paper's multiple-choice versions of LAMBADA, WebQuestions, NQ and
TriviaQA add distractors the sources do not hold. Each rule below is a pure function of
``(seed, task, item id)`` (``negtune.data.seeded``), so a build is reproducible and raising
the cap only adds items. A task entry names its rule as ``TaskSpec.complete_options``;
the builder calls it without knowing which rule it is.

* ``complete_lambada``: 3 distinct words of the passage other than the target
  (case-insensitive), drawn with ``random.Random(seeded_int(seed, task, "lambada", id))``; the
  4 options are then shuffled by the same generator; each word capitalised (" Cutter").
* ``complete_qa``: one distractor from the split's other gold answers, skipping any that
  normalise (lower-case, no punctuation/articles/extra spaces) to one of this question's
  answers; gold first or second by ``random.Random(seeded_int(seed, task, "distractor", id))``.
"""
from __future__ import annotations

import random
import re
import string
from negtune.data.fields import cap_first, fmt_option
from negtune.data.instances import Item
from negtune.data.seeded import seeded_int
from negtune.errors import UserError

_PUNCT = set(string.punctuation) | set("“”‘’«»…–—")
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_NO_PUNCT = str.maketrans("", "", "".join(sorted(_PUNCT)))
_WORD_STRIP = "".join(sorted(_PUNCT))


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


def complete_lambada(items: list[Item], seed: int, task: str) -> None:
    """Four options per passage: the target word and three other words of the passage."""
    for item in items:
        gold = item.answers[0]
        pool = [w for w in passage_words(item.fields["context"]) if w.lower() != gold.lower()]
        # Different spellings of one word (e.g. "Cutter"/"cutter") were merged above.
        if len(pool) < 3:
            raise UserError(f"{item.where}: passage has fewer than 3 distinct words besides the target {gold!r}")
        rng = random.Random(seeded_int(seed, task, "lambada", item.id))
        words = [gold] + rng.sample(pool, 3)
        order = list(range(4))
        rng.shuffle(order)
        item.options = tuple(" " + cap_first(words[i]) for i in order)
        item.answer = order.index(0)


def complete_qa(items: list[Item], seed: int, task: str) -> None:
    """Two options per question: its first answer and one other question's answer."""
    pool_by_norm: dict[str, str] = {}
    for item in items:
        norm = normalize_answer(item.answers[0])
        pool_by_norm.setdefault(norm, item.answers[0])
    pool_keys = sorted(pool_by_norm)  # independent of item order
    pool_opts = [fmt_option(pool_by_norm[k]) for k in pool_keys]
    for item in items:
        banned = {normalize_answer(a) for a in item.answers}
        gold_opt = fmt_option(item.answers[0])
        rng = random.Random(seeded_int(seed, task, "distractor", item.id))
        start = rng.randrange(len(pool_keys))
        distractor = None
        for step in range(len(pool_keys)):
            k = (start + step) % len(pool_keys)
            if pool_keys[k] not in banned and pool_opts[k] != gold_opt:
                distractor = pool_opts[k]
                break
        if distractor is None:
            raise UserError(
                f"{item.where}: no distractor: every other answer in the split is an alias of this one "
                "(the split needs at least two questions with different answers)"
            )
        if rng.random() < 0.5:
            item.options, item.answer = (gold_opt, distractor), 0
        else:
            item.options, item.answer = (distractor, gold_opt), 1
