"""The offline hub mirrors load through ``datasets.load_dataset`` with the real schemas.

Each mirror (``hub_mirror.build_hub_mirror``) is a local copy of a hub dataset repository in its
real layout. Loading it by directory runs the same packaged parquet builder, README ``configs:``
resolution and split-size verification as loading the repo id from the hub, so these tests pin:
row counts, config names, split names, column names, nested types and label dtypes (written
below independently, in ``datasets`` terms), plus the quirks negtune's parsers must survive.
"""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import pathlib  # noqa: E402

import datasets  # noqa: E402
import pytest  # noqa: E402
from datasets import ClassLabel, Features, List, Value  # noqa: E402
from datasets.info import DatasetInfosDict  # noqa: E402

from fixtures import hub_mirror as hm  # noqa: E402

S = Value("string")

ARC = Features({"id": S, "question": S, "choices": {"text": List(S), "label": List(S)}, "answerKey": S})
TRIVIA = Features({
    "question": S, "question_id": S, "question_source": S,
    "entity_pages": {"doc_source": List(S), "filename": List(S), "title": List(S), "wiki_context": List(S)},
    "search_results": {"description": List(S), "filename": List(S), "rank": List(Value("int32")),
                       "title": List(S), "url": List(S), "search_context": List(S)},
    "answer": {"aliases": List(S), "normalized_aliases": List(S), "matched_wiki_entity_name": S,
               "normalized_matched_wiki_entity_name": S, "normalized_value": S, "type": S, "value": S},
})

# (repo, config) -> the real schema, as datasets 5.x presents it.
EXPECTED_FEATURES = {
    ("baber/piqa", None): Features({"goal": S, "sol1": S, "sol2": S, "label": ClassLabel(names=["0", "1"])}),
    ("allenai/ai2_arc", "ARC-Easy"): ARC,
    ("allenai/ai2_arc", "ARC-Challenge"): ARC,
    ("aps/super_glue", "copa"): Features({
        "premise": S, "choice1": S, "choice2": S, "question": S, "idx": Value("int32"),
        "label": ClassLabel(names=["choice1", "choice2"]),
    }),
    ("aps/super_glue", "cb"): Features({
        "premise": S, "hypothesis": S, "idx": Value("int32"),
        "label": ClassLabel(names=["entailment", "contradiction", "neutral"]),
    }),
    ("Rowan/hellaswag", None): Features({
        "ind": Value("int32"), "activity_label": S, "ctx_a": S, "ctx_b": S, "ctx": S, "endings": List(S),
        "source_id": S, "split": S, "split_type": S, "label": S,
    }),
    ("cimec/lambada", "plain_text"): Features({"text": S, "domain": S}),
    ("stanfordnlp/web_questions", None): Features({"url": S, "question": S, "answers": List(S)}),
    ("google-research-datasets/nq_open", "nq_open"): Features({"question": S, "answer": List(S)}),
    ("mandarjoshi/trivia_qa", "rc.nocontext"): TRIVIA,
    ("mandarjoshi/trivia_qa", "unfiltered.nocontext"): TRIVIA,
}

# Files each mirror must hold (the real repository's tree, trimmed to the configs mirrored).
EXPECTED_FILES = {
    "baber/piqa": [".gitattributes", "piqa_test.parquet", "piqa_train.parquet", "piqa_validation.parquet"],
    "allenai/ai2_arc": [".gitattributes", "README.md"] + [
        f"{c}/{s}-00000-of-00001.parquet" for c in ("ARC-Challenge", "ARC-Easy") for s in ("test", "train", "validation")],
    "aps/super_glue": [".gitattributes", "README.md"] + [
        f"{c}/{s}-00000-of-00001.parquet" for c in ("cb", "copa") for s in ("test", "train", "validation")],
    "Rowan/hellaswag": [".gitattributes", "README.md", "data/test-00000-of-00001.parquet",
                        "data/train-00000-of-00001.parquet", "data/validation-00000-of-00001.parquet",
                        "dataset_infos.json"],
    "cimec/lambada": [".gitattributes", "README.md", "plain_text/test-00000-of-00001.parquet",
                      "plain_text/train-00000-of-00002.parquet", "plain_text/train-00001-of-00002.parquet",
                      "plain_text/validation-00000-of-00001.parquet"],
    "stanfordnlp/web_questions": [".gitattributes", "README.md", "data/test-00000-of-00001.parquet",
                                  "data/train-00000-of-00001.parquet"],
    "google-research-datasets/nq_open": [".gitattributes", "README.md", "nq_open/train-00000-of-00001.parquet",
                                         "nq_open/validation-00000-of-00001.parquet"],
    "mandarjoshi/trivia_qa": [".gitattributes", "README.md"] + [
        f"{c}/{s}-00000-of-00001.parquet" for c in ("rc.nocontext", "unfiltered.nocontext")
        for s in ("test", "train", "validation")],
}


@pytest.fixture(scope="module")
def mirror(tmp_path_factory) -> pathlib.Path:
    return hm.build_hub_mirror(tmp_path_factory.mktemp("hub_mirror"))


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("hf_cache"))


@pytest.fixture(scope="module")
def load(mirror, cache):
    """``load_dataset`` on a mirrored repo, offline, cached under tmp; memoised per split."""
    assert datasets.config.HF_HUB_OFFLINE, "run with HF_HUB_OFFLINE=1"
    seen: dict = {}

    def _load(repo: str, name, split: str):
        key = (repo, name, split)
        if key not in seen:
            seen[key] = datasets.load_dataset(str(mirror / repo), name, split=split, cache_dir=cache)
        return seen[key]

    return _load


# ------------------------------------------------------------------------ layout and schema


def test_every_task_has_a_mirror_and_a_recommendation():
    tasks = {"piqa", "arc_easy", "copa", "hellaswag", "lambada", "web_questions", "nq_open", "trivia_qa"}
    assert set(hm.RECOMMENDED_HUB_SOURCES) == tasks
    assert set(hm.REPOS) == set(hm.REAL) == set(EXPECTED_FILES)
    for repo, info in hm.REAL.items():
        # the recommended config/splits are mirrored, and the real counts are recorded for each
        assert all((repo, info["config"], s) in hm.EXPECTED_ROWS for s in info["splits"]), repo
        assert all(n > 0 for n in info["splits"].values())


@pytest.mark.parametrize("repo", sorted(EXPECTED_FILES))
def test_repository_tree(mirror, repo):
    files = sorted(p.relative_to(mirror / repo).as_posix() for p in (mirror / repo).rglob("*") if p.is_file())
    assert files == sorted(EXPECTED_FILES[repo])


@pytest.mark.parametrize("key", sorted(hm.EXPECTED_ROWS, key=str), ids=lambda k: "/".join(map(str, k)))
def test_split_loads_with_real_schema(load, key):
    repo, name, split = key
    ds = load(repo, name, split)
    assert len(ds) == hm.EXPECTED_ROWS[key]
    assert ds.features == EXPECTED_FEATURES[(repo, name)]
    assert ds.split == split


@pytest.mark.parametrize("repo", [r for r in hm.REPOS if hm.REPOS[r]["readme"]])
def test_card_features_and_configs_parse(mirror, repo):
    """The README front matter alone yields the real features (not only the parquet metadata)."""
    infos = DatasetInfosDict.from_directory(str(mirror / repo))
    for cfg in hm.REPOS[repo]["configs"]:
        assert infos[cfg].features == EXPECTED_FEATURES[(repo, None if cfg == "default" else cfg)]
    names = datasets.get_dataset_config_names(str(mirror / repo))
    assert sorted(names) == sorted(hm.REPOS[repo]["configs"])


def test_multi_config_repos_need_the_config_name(mirror, cache):
    for repo in ("allenai/ai2_arc", "aps/super_glue", "mandarjoshi/trivia_qa"):
        with pytest.raises(ValueError, match="Config name is missing"):
            datasets.load_dataset(str(mirror / repo), split="train", cache_dir=cache)
    # single-config repos also load without the name (negtune's current cimec/lambada, nq_open)
    assert len(datasets.load_dataset(str(mirror / "cimec/lambada"), split="test", cache_dir=cache)) == 6
    assert len(datasets.load_dataset(str(mirror / "google-research-datasets/nq_open"), split="validation",
                                     cache_dir=cache)) == 6


@pytest.mark.parametrize("repo, name, split", [
    ("stanfordnlp/web_questions", None, "validation"),
    ("google-research-datasets/nq_open", "nq_open", "test"),
])
def test_missing_splits_are_missing(mirror, cache, repo, name, split):
    with pytest.raises(ValueError, match="Unknown split"):
        datasets.load_dataset(str(mirror / repo), name, split=split, cache_dir=cache)


# ---------------------------------------------------------------------------------- quirks


def test_piqa_and_copa_int_labels_hidden_test_labels(load):
    assert set(load("baber/piqa", None, "train")["label"]) == {0, 1}
    assert set(load("baber/piqa", None, "test")["label"]) == {-1}
    assert set(load("aps/super_glue", "copa", "validation")["label"]) == {0, 1}
    assert set(load("aps/super_glue", "copa", "test")["label"]) == {-1}
    assert set(load("aps/super_glue", "copa", "train")["question"]) == {"cause", "effect"}


def test_arc_numeric_keys_and_option_counts(load):
    rows = load("allenai/ai2_arc", "ARC-Easy", "train").to_list()
    assert any(r["answerKey"].isdigit() and r["choices"]["label"] == ["1", "2", "3", "4"] for r in rows)
    assert {len(r["choices"]["text"]) for r in rows} >= {3, 4, 5}
    assert all(r["answerKey"] in r["choices"]["label"] for r in rows)
    assert all(len(r["choices"]["text"]) == len(r["choices"]["label"]) for r in rows)


def test_hellaswag_string_labels(load):
    train = load("Rowan/hellaswag", None, "train").to_list()
    assert {r["label"] for r in train} <= {"0", "1", "2", "3"}
    assert all(isinstance(r["label"], str) and len(r["endings"]) == 4 for r in train)
    assert any(r["ctx_b"] == "" for r in train)
    assert all(r["ctx"] == (f"{r['ctx_a']} {r['ctx_b']}" if r["ctx_b"] else r["ctx_a"]) for r in train)
    assert set(load("Rowan/hellaswag", None, "test")["label"]) == {""}


def test_lambada_passages_and_novels(load):
    novels = load("cimec/lambada", "plain_text", "train")  # read from two shards
    assert all(d for d in novels["domain"])
    for split in ("validation", "test"):
        ds = load("cimec/lambada", "plain_text", split)
        assert set(ds["domain"]) == {None}
        for text in ds["text"]:
            *context, last = text.split()
            assert len({w for w in context if w.isalpha()} - {last}) >= 3


def test_qa_answer_lists(load):
    for repo, name, split, field in [("stanfordnlp/web_questions", None, "train", "answers"),
                                     ("google-research-datasets/nq_open", "nq_open", "validation", "answer")]:
        rows = load(repo, name, split).to_list()
        assert all(isinstance(r[field], list) and r[field] for r in rows)
        assert len({r[field][0] for r in rows}) == len(rows)  # distinct gold answers for distractors
    assert all(u.startswith("http://www.freebase.com/view/en/") for u in load("stanfordnlp/web_questions", None, "test")["url"])


def test_trivia_qa_repeated_ids_and_nested_answer(load):
    rows = load("mandarjoshi/trivia_qa", "rc.nocontext", "train").to_list()
    by_id: dict = {}
    for r in rows:
        by_id.setdefault(r["question_id"], []).append(r)
    repeated = [rs for rs in by_id.values() if len(rs) > 1]
    assert repeated and len(by_id) < len(rows)
    assert all(all(x["question"] == rs[0]["question"] and x["answer"] == rs[0]["answer"] for x in rs) for rs in repeated)
    answer = rows[0]["answer"]
    assert answer["value"] in answer["aliases"] and answer["normalized_value"] in answer["normalized_aliases"]
    assert rows[0]["entity_pages"]["title"] == [] and rows[0]["search_results"]["rank"] == []
    test = load("mandarjoshi/trivia_qa", "rc.nocontext", "test").to_list()
    assert {r["answer"]["value"] for r in test} == {"<unk>"} and all(r["answer"]["aliases"] == [] for r in test)


# ------------------------------------------------- the old COPA pin and build determinism


def test_parquet_export_branch_has_no_copa_config(tmp_path, cache):
    """negtune's old pin: revision="refs/convert/parquet" has copa/<split>/0000.parquet and no
    README ``configs:``, so datasets>=4 infers a single 'default' config."""
    export = hm.build_parquet_export_variant(tmp_path / "export")
    assert datasets.get_dataset_config_names(str(export)) == ["default"]
    with pytest.raises(ValueError, match=r"BuilderConfig 'copa' not found\. Available: \['default'\]"):
        datasets.load_dataset(str(export), "copa", split="train", revision="refs/convert/parquet", cache_dir=cache)
    # selecting the directory instead of a config works on that branch
    ds = datasets.load_dataset(str(export), data_dir="copa", split="validation", cache_dir=cache)
    assert len(ds) == hm.EXPECTED_ROWS[("aps/super_glue", "copa", "validation")]


def test_builds_are_byte_identical(tmp_path):
    a, b = hm.build_hub_mirror(tmp_path / "a"), hm.build_hub_mirror(tmp_path / "b")
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
