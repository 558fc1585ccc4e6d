"""Generate the demo data set (data/demo/{train,test}.jsonl) from the facts in ``demo_facts``.

Why made up here: the demo must run offline from a fresh clone, so its data cannot come from
the hub, and it must contain no third-party text. The items are 4-option multiple-choice
questions a small pretrained model mostly answers correctly under the *original* prompt
(capitals, opposites, small sums, plurals, colours, animal sounds, order of days, months
and letters, ...), with 1-3 token answers so that training and scoring are cheap. That is
the situation the paper studies: the model knows the answer, and the question is whether it
still picks it when asked for an *incorrect* one.

Categories were chosen by measuring SmolLM2-135M-Instruct's accuracy per category under the
ARC-Easy original template; categories it does poorly on were
dropped as a whole. Individual items are never filtered by the model's answers.

Deterministic: fixed lists, one ``random.Random(seed)`` per category for distractors, option
order and the train/test split, and canonical JSON lines. ``python -m negtune.data.demo_gen``
rewrites byte-identical files (a test checks this). The split is by item, stratified by
category (every category appears in both files; no question text appears in both).

Schema: ai2_arc: ``{"id", "question", "choices": {"text": [...], "label": ["A","B","C","D"]},
"answerKey"}`` plus ``"category"`` (ignored by the loader, useful for analysis).
"""
from __future__ import annotations

import argparse
import random
from pathlib import Path
from typing import Callable, Iterable

from negtune.data.demo_facts import (BABIES, CAPITALS, COLOUR_NAMES, COLOURS, COMPARATIVES, DAYS, FEMININE,
                                     HOMES, KINDS, LANGUAGES, MONTHS, NUMBER_WORDS, OPPOSITES, PAST_TENSE,
                                     PLURALS, SOUNDS)

SEED = 20240501
TEST_FRACTION = 0.3
LABELS = ("A", "B", "C", "D")


# ----------------------------------------------------------------------------- item builders

def _item(category: str, key: str, question: str, answer: str, pool: Iterable[str],
          rng: random.Random) -> dict:
    pool = sorted({p for p in pool if p.lower() != answer.lower()})
    distractors = rng.sample(pool, 3)
    options = distractors + [answer]
    rng.shuffle(options)
    return {
        "id": f"demo-{category}-{key}",
        "category": category,
        "question": question,
        "choices": {"text": options, "label": list(LABELS)},
        "answerKey": LABELS[options.index(answer)],
    }


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text.lower()).strip("_")


def capitals(rng: random.Random) -> list[dict]:
    cities = [c for _, c in CAPITALS]
    return [_item("capital", _slug(country), f"What is the capital of {country}?", city, cities, rng)
            for country, city in CAPITALS]


def opposites(rng: random.Random) -> list[dict]:
    words = [w for pair in OPPOSITES for w in pair]
    # Every word's opposites over all pairs ("light": dark and heavy), so no distractor is also right.
    related: dict[str, set[str]] = {}
    for x, y in OPPOSITES:
        related.setdefault(x, set()).add(y)
        related.setdefault(y, set()).add(x)
    out = []
    for a, b in OPPOSITES:
        pool = [w for w in words if w != a and w not in related[a]]
        out.append(_item("opposite", _slug(a), f"What is the opposite of {a}?", b, pool, rng))
    return out


def plurals(rng: random.Random) -> list[dict]:
    plural_forms = [p for _, p in PLURALS]
    return [_item("plural", _slug(s), f"What is the plural of {s}?", p, plural_forms, rng) for s, p in PLURALS]


def colours(rng: random.Random) -> list[dict]:
    return [_item("color", _slug(t), f"What color is {t}?", c, COLOUR_NAMES, rng) for t, c in COLOURS]


def sounds(rng: random.Random) -> list[dict]:
    noises = [s for _, s in SOUNDS]
    return [_item("sound", a, f"What sound does a {a} make?", s, noises, rng) for a, s in SOUNDS]


def _sequence(category: str, names: list[str], what: str, rng: random.Random) -> list[dict]:
    out = []
    n = len(names)
    for i, name in enumerate(names):
        after, before = names[(i + 1) % n], names[(i - 1) % n]
        out.append(_item(category, f"after_{_slug(name)}", f"Which {what} comes after {name}?", after,
                         [x for x in names if x != name], rng))
        out.append(_item(category, f"before_{_slug(name)}", f"Which {what} comes before {name}?", before,
                         [x for x in names if x != name], rng))
    return out


def days(rng: random.Random) -> list[dict]:
    return _sequence("day", DAYS, "day", rng)


def months(rng: random.Random) -> list[dict]:
    return _sequence("month", MONTHS, "month", rng)


def letters(rng: random.Random) -> list[dict]:
    alphabet = [chr(c) for c in range(ord("A"), ord("Z") + 1)]
    out = []
    for i in range(len(alphabet) - 1):
        a, b = alphabet[i], alphabet[i + 1]
        out.append(_item("letter", a, f"Which letter comes after {a} in the alphabet?", b,
                         [x for x in alphabet if x != a], rng))
    return out


def addition(rng: random.Random) -> list[dict]:
    out = []
    for a in range(1, 10):
        for b in range(1, 10):
            ans = a + b
            pool = [str(x) for x in range(max(0, ans - 5), ans + 6) if x != ans]
            out.append(_item("addition", f"{a}_plus_{b}", f"What is {a} + {b}?", str(ans), pool, rng))
    return out


def counting(rng: random.Random) -> list[dict]:
    out = []
    for i in range(0, len(NUMBER_WORDS) - 1):
        out.append(_item("number", f"after_{i}", f"Which number comes after {NUMBER_WORDS[i]}?",
                         NUMBER_WORDS[i + 1], [w for w in NUMBER_WORDS if w != NUMBER_WORDS[i]], rng))
    for i in range(1, len(NUMBER_WORDS)):
        out.append(_item("number", f"word_{i}", f"How do you write {i} in words?", NUMBER_WORDS[i],
                         NUMBER_WORDS, rng))
    return out


def past_tense(rng: random.Random) -> list[dict]:
    forms = [p for _, p in PAST_TENSE]
    return [_item("past_tense", v, f"What is the past tense of {v}?", p, forms, rng) for v, p in PAST_TENSE]


def kinds(rng: random.Random) -> list[dict]:
    out = []
    for noun, (members, others) in KINDS.items():
        article = "an" if noun[0] in "aeiou" else "a"
        for m in members:
            wrong = rng.sample(sorted(others), 3)
            options = wrong + [m]
            rng.shuffle(options)
            out.append({
                "id": f"demo-kind-{_slug(noun)}-{_slug(m)}",
                "category": "kind",
                "question": f"Which of these is {article} {noun}?",
                "choices": {"text": options, "label": list(LABELS)},
                "answerKey": LABELS[options.index(m)],
            })
    return out


def homes(rng: random.Random) -> list[dict]:
    places = [h for _, h in HOMES]
    return [_item("home", a, f"Where does a {a} live?", h, places, rng) for a, h in HOMES]


def languages(rng: random.Random) -> list[dict]:
    names = sorted({l for _, l in LANGUAGES})
    return [_item("language", _slug(c), f"What language is spoken in {c}?", l, names, rng) for c, l in LANGUAGES]


def feminine(rng: random.Random) -> list[dict]:
    forms = [f for _, f in FEMININE]
    return [_item("feminine", m, f"What is the female form of {m}?", f, forms, rng) for m, f in FEMININE]


def comparatives(rng: random.Random) -> list[dict]:
    forms = [c for _, c in COMPARATIVES]
    return [_item("comparative", a, f"What is the comparative form of {a}?", c, forms, rng)
            for a, c in COMPARATIVES]


def babies(rng: random.Random) -> list[dict]:
    young = [b for _, b in BABIES]
    return [_item("baby", a, f"What is a baby {a} called?", b, young, rng) for a, b in BABIES]


# Category -> builder. This is the demo's data set: the categories on which SmolLM2-135M-Instruct
# scored >= 0.6 under the original ARC prompt (measured on all items of each category).
CATEGORIES: dict[str, Callable[[random.Random], list[dict]]] = {
    "capital": capitals,
    "language": languages,
    "plural": plurals,
    "past_tense": past_tense,
    "addition": addition,
    "opposite": opposites,
}

# Measured and left out (original-prompt accuracy of SmolLM2-135M-Instruct in brackets): a model
# that does not know the answer cannot show the paper's effect. Kept so the measurement can be
# repeated: ``generate(categories=[...])`` accepts these names too.
DROPPED_CATEGORIES: dict[str, Callable[[random.Random], list[dict]]] = {
    "kind": kinds,  # 0.52
    "comparative": comparatives,  # 0.45
    "feminine": feminine,  # 0.45
    "month": months,  # 0.42
    "number": counting,  # 0.33
    "baby": babies,  # 0.33
    "home": homes,  # 0.33
    "day": days,  # 0.29
    "sound": sounds,  # 0.28
    "color": colours,  # 0.27
    "letter": letters,  # 0.12
}
ALL_CATEGORIES = {**CATEGORIES, **DROPPED_CATEGORIES}


def generate(seed: int = SEED, categories: Iterable[str] | None = None,
             test_fraction: float = TEST_FRACTION) -> tuple[list[dict], list[dict]]:
    """(train, test) rows; deterministic for a given seed and category list."""
    train: list[dict] = []
    test: list[dict] = []
    for index, name in enumerate(categories or CATEGORIES):
        rng = random.Random(f"{seed}:{name}")
        items = ALL_CATEGORIES[name](rng)
        order = list(range(len(items)))
        rng.shuffle(order)
        n_test = max(1, round(len(items) * test_fraction))
        test_idx = set(order[:n_test])
        for i, item in enumerate(items):
            (test if i in test_idx else train).append(item)
    _check(train, test)
    return train, test


def _check(train: list[dict], test: list[dict]) -> None:
    ids = [r["id"] for r in train + test]
    assert len(ids) == len(set(ids)), "duplicate ids"
    q_train = {(r["question"], r["choices"]["text"][LABELS.index(r["answerKey"])]) for r in train}
    for r in test:
        assert (r["question"], r["choices"]["text"][LABELS.index(r["answerKey"])]) not in q_train
    for r in train + test:
        texts = r["choices"]["text"]
        assert len(texts) == 4 and len(set(t.lower() for t in texts)) == 4, r


def write(out_dir: str | Path = "data/demo", seed: int = SEED) -> dict[str, Path]:
    from negtune.io import write_jsonl

    train, test = generate(seed)
    out = Path(out_dir)
    paths = {"train": out / "train.jsonl", "test": out / "test.jsonl"}
    write_jsonl(paths["train"], train)
    write_jsonl(paths["test"], test)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m negtune.data.demo_gen", description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="data/demo", help="output directory (default: data/demo)")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    paths = write(args.out, args.seed)
    for split, path in paths.items():
        n = sum(1 for _ in path.open())
        print(f"{split}: {n} items -> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
