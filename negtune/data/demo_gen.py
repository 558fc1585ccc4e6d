"""Generate the demo data set (data/demo/{train,test}.jsonl) from facts written in this file.

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

SEED = 20240501
TEST_FRACTION = 0.3
LABELS = ("A", "B", "C", "D")

# ----------------------------------------------------------------------------- facts

CAPITALS = [
    ("France", "Paris"), ("Germany", "Berlin"), ("Italy", "Rome"), ("Spain", "Madrid"),
    ("Japan", "Tokyo"), ("China", "Beijing"), ("Russia", "Moscow"), ("England", "London"),
    ("Egypt", "Cairo"), ("Greece", "Athens"), ("Portugal", "Lisbon"), ("Ireland", "Dublin"),
    ("Austria", "Vienna"), ("Norway", "Oslo"), ("Sweden", "Stockholm"), ("Finland", "Helsinki"),
    ("Denmark", "Copenhagen"), ("Poland", "Warsaw"), ("Hungary", "Budapest"), ("Thailand", "Bangkok"),
    ("South Korea", "Seoul"), ("India", "New Delhi"), ("Kenya", "Nairobi"), ("Argentina", "Buenos Aires"),
    ("Peru", "Lima"), ("Mexico", "Mexico City"), ("Canada", "Ottawa"), ("Cuba", "Havana"),
    ("Turkey", "Ankara"), ("Iran", "Tehran"), ("Belgium", "Brussels"), ("the Netherlands", "Amsterdam"),
    ("the Czech Republic", "Prague"), ("Australia", "Canberra"), ("the United States", "Washington"),
    ("Chile", "Santiago"), ("Colombia", "Bogota"), ("Vietnam", "Hanoi"), ("the Philippines", "Manila"),
    ("Indonesia", "Jakarta"), ("Switzerland", "Bern"), ("Scotland", "Edinburgh"), ("Wales", "Cardiff"),
    ("Ukraine", "Kyiv"), ("Romania", "Bucharest"), ("Bulgaria", "Sofia"), ("Serbia", "Belgrade"),
    ("Croatia", "Zagreb"), ("Iceland", "Reykjavik"), ("Estonia", "Tallinn"), ("Latvia", "Riga"),
    ("Lithuania", "Vilnius"), ("Saudi Arabia", "Riyadh"), ("Iraq", "Baghdad"), ("Syria", "Damascus"),
    ("Lebanon", "Beirut"), ("Pakistan", "Islamabad"), ("Afghanistan", "Kabul"), ("Nepal", "Kathmandu"),
    ("Malaysia", "Kuala Lumpur"), ("Singapore", "Singapore"), ("New Zealand", "Wellington"),
    ("Nigeria", "Abuja"), ("Ethiopia", "Addis Ababa"), ("Morocco", "Rabat"), ("Venezuela", "Caracas"),
    ("Uruguay", "Montevideo"), ("Jamaica", "Kingston"),
]

OPPOSITES = [
    ("hot", "cold"), ("big", "small"), ("up", "down"), ("fast", "slow"), ("happy", "sad"),
    ("day", "night"), ("black", "white"), ("open", "closed"), ("old", "young"), ("tall", "short"),
    ("light", "dark"), ("hard", "soft"), ("wet", "dry"), ("full", "empty"), ("rich", "poor"),
    ("early", "late"), ("strong", "weak"), ("thick", "thin"), ("left", "right"), ("in", "out"),
    ("on", "off"), ("yes", "no"), ("good", "bad"), ("push", "pull"), ("win", "lose"),
    ("buy", "sell"), ("first", "last"), ("inside", "outside"), ("above", "below"), ("true", "false"),
    ("loud", "quiet"), ("clean", "dirty"), ("heavy", "light"), ("high", "low"), ("long", "short"),
    ("near", "far"), ("love", "hate"), ("begin", "end"), ("north", "south"), ("east", "west"),
]

PLURALS = [
    ("mouse", "mice"), ("child", "children"), ("foot", "feet"), ("tooth", "teeth"), ("man", "men"),
    ("woman", "women"), ("goose", "geese"), ("person", "people"), ("cat", "cats"), ("dog", "dogs"),
    ("box", "boxes"), ("bus", "buses"), ("baby", "babies"), ("city", "cities"), ("knife", "knives"),
    ("leaf", "leaves"), ("wolf", "wolves"), ("church", "churches"), ("glass", "glasses"), ("fox", "foxes"),
    ("book", "books"), ("tree", "trees"), ("car", "cars"), ("house", "houses"), ("apple", "apples"),
    ("ox", "oxen"), ("potato", "potatoes"), ("tomato", "tomatoes"), ("hero", "heroes"), ("wife", "wives"),
    ("bird", "birds"), ("chair", "chairs"), ("table", "tables"), ("horse", "horses"), ("girl", "girls"),
    ("boy", "boys"), ("flower", "flowers"), ("river", "rivers"), ("party", "parties"), ("story", "stories"),
    ("lady", "ladies"), ("dish", "dishes"), ("brush", "brushes"), ("watch", "watches"), ("half", "halves"),
    ("shelf", "shelves"), ("loaf", "loaves"), ("louse", "lice"), ("cactus", "cacti"), ("day", "days"),
]

# (thing, colour). Questions read "What color is {thing}?"
COLOURS = [
    ("the sky on a clear day", "blue"), ("grass", "green"), ("a banana", "yellow"), ("snow", "white"),
    ("coal", "black"), ("a ripe tomato", "red"), ("an orange", "orange"), ("a lemon", "yellow"),
    ("milk", "white"), ("blood", "red"), ("a carrot", "orange"), ("the sea", "blue"),
    ("a leaf in summer", "green"), ("a strawberry", "red"), ("chocolate", "brown"), ("a crow", "black"),
    ("a fire truck", "red"), ("a polar bear", "white"), ("a frog", "green"),
    ("a cucumber", "green"), ("charcoal", "black"), ("a cloud", "white"), ("a lime", "green"),
    ("a pumpkin", "orange"), ("an eggplant", "purple"), ("wood", "brown"),
]
COLOUR_NAMES = ["red", "blue", "green", "yellow", "white", "black", "orange", "brown", "purple", "pink"]

SOUNDS = [
    ("dog", "bark"), ("cat", "meow"), ("cow", "moo"), ("duck", "quack"), ("sheep", "baa"),
    ("lion", "roar"), ("snake", "hiss"), ("horse", "neigh"), ("pig", "oink"), ("owl", "hoot"),
    ("bee", "buzz"), ("frog", "croak"), ("mouse", "squeak"), ("wolf", "howl"), ("rooster", "crow"),
    ("bird", "chirp"), ("donkey", "bray"), ("turkey", "gobble"),
]

DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]
NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
                "eleven", "twelve"]

PAST_TENSE = [
    ("go", "went"), ("eat", "ate"), ("see", "saw"), ("run", "ran"), ("take", "took"), ("give", "gave"),
    ("write", "wrote"), ("drink", "drank"), ("swim", "swam"), ("sing", "sang"), ("buy", "bought"),
    ("think", "thought"), ("catch", "caught"), ("teach", "taught"), ("fly", "flew"), ("drive", "drove"),
    ("speak", "spoke"), ("break", "broke"), ("sleep", "slept"), ("come", "came"), ("make", "made"),
    ("say", "said"), ("find", "found"), ("know", "knew"), ("fall", "fell"), ("begin", "began"),
    ("bring", "brought"), ("build", "built"), ("choose", "chose"), ("draw", "drew"), ("feel", "felt"),
    ("forget", "forgot"), ("grow", "grew"), ("hear", "heard"), ("hold", "held"), ("keep", "kept"),
    ("leave", "left"), ("lose", "lost"), ("meet", "met"), ("pay", "paid"), ("ride", "rode"),
    ("sell", "sold"), ("send", "sent"), ("sit", "sat"), ("stand", "stood"), ("tell", "told"),
    ("win", "won"), ("wear", "wore"), ("throw", "threw"), ("steal", "stole"), ("walk", "walked"),
]

# (category noun, members, non-members); questions read "Which of these is a {noun}?"
KINDS = {
    "fruit": (["apple", "banana", "orange", "pear", "grape", "peach", "cherry", "mango", "lemon", "plum"],
              ["chair", "hammer", "shoe", "window", "pencil", "car", "spoon", "brick", "shirt", "cloud"]),
    "animal": (["dog", "cat", "horse", "lion", "tiger", "rabbit", "elephant", "monkey", "bear", "sheep"],
               ["table", "rock", "spoon", "cup", "door", "lamp", "book", "bottle", "coin", "sock"]),
    "color": (["red", "blue", "green", "yellow", "purple", "pink", "brown", "orange", "black", "white"],
              ["table", "river", "dog", "bread", "music", "sleep", "paper", "chair", "stone", "shoe"]),
    "vehicle": (["car", "bus", "truck", "train", "bicycle", "boat", "plane", "taxi", "tram", "ship"],
                ["apple", "pillow", "tree", "cup", "soup", "flower", "pencil", "cat", "carpet", "cheese"]),
    "musical instrument": (["piano", "guitar", "violin", "drum", "flute", "trumpet", "harp", "cello"],
                           ["spoon", "carrot", "shoe", "pillow", "window", "bread", "lamp", "sock"]),
}

LANGUAGES = [
    ("France", "French"), ("Germany", "German"), ("Italy", "Italian"), ("Spain", "Spanish"),
    ("Japan", "Japanese"), ("China", "Chinese"), ("Russia", "Russian"), ("Greece", "Greek"),
    ("Portugal", "Portuguese"), ("Poland", "Polish"), ("Turkey", "Turkish"), ("Sweden", "Swedish"),
    ("Finland", "Finnish"), ("Korea", "Korean"), ("Thailand", "Thai"), ("Vietnam", "Vietnamese"),
    ("the Netherlands", "Dutch"), ("Hungary", "Hungarian"), ("Denmark", "Danish"), ("Norway", "Norwegian"),
    ("Israel", "Hebrew"), ("Brazil", "Portuguese"), ("Mexico", "Spanish"), ("England", "English"),
    ("Argentina", "Spanish"), ("Austria", "German"), ("Iran", "Persian"), ("Ukraine", "Ukrainian"),
    ("Egypt", "Arabic"), ("Saudi Arabia", "Arabic"), ("Czechia", "Czech"), ("Romania", "Romanian"),
    ("Indonesia", "Indonesian"), ("Australia", "English"), ("Peru", "Spanish"), ("Iceland", "Icelandic"),
    ("Bulgaria", "Bulgarian"), ("Croatia", "Croatian"), ("Serbia", "Serbian"), ("Canada", "English"),
]

FEMININE = [
    ("king", "queen"), ("prince", "princess"), ("actor", "actress"), ("husband", "wife"),
    ("father", "mother"), ("brother", "sister"), ("uncle", "aunt"), ("son", "daughter"), ("boy", "girl"),
    ("man", "woman"), ("nephew", "niece"), ("grandfather", "grandmother"), ("waiter", "waitress"),
    ("emperor", "empress"), ("gentleman", "lady"), ("lion", "lioness"), ("duke", "duchess"),
    ("god", "goddess"), ("host", "hostess"), ("groom", "bride"),
]

COMPARATIVES = [
    ("good", "better"), ("bad", "worse"), ("big", "bigger"), ("small", "smaller"), ("fast", "faster"),
    ("slow", "slower"), ("happy", "happier"), ("tall", "taller"), ("old", "older"), ("young", "younger"),
    ("long", "longer"), ("short", "shorter"), ("hot", "hotter"), ("cold", "colder"), ("easy", "easier"),
    ("far", "farther"), ("strong", "stronger"), ("heavy", "heavier"), ("rich", "richer"), ("funny", "funnier"),
]

BABIES = [
    ("dog", "puppy"), ("cat", "kitten"), ("cow", "calf"), ("sheep", "lamb"), ("horse", "foal"),
    ("duck", "duckling"), ("frog", "tadpole"), ("bear", "cub"), ("pig", "piglet"), ("kangaroo", "joey"),
    ("goose", "gosling"), ("swan", "cygnet"), ("owl", "owlet"), ("deer", "fawn"), ("hen", "chick"),
]

# (animal, home)
HOMES = [
    ("bird", "nest"), ("bee", "hive"), ("dog", "kennel"), ("horse", "stable"), ("pig", "sty"),
    ("spider", "web"), ("rabbit", "burrow"), ("fish", "water"), ("bear", "den"),
]


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
