"""Every hub task builds from its real-layout mirror through ``datasets.load_dataset``.

The mirror (``fixtures/hub_mirror.py``) holds each hub repository in its real layout and
schema with invented rows. ``data.hub_mirror`` makes negtune call ``load_dataset`` on the
clone with the registry's config and split names, so these tests run the code a user with
hub access runs. Expected items, options and gold sets are computed here from the fixture's
rows (the source's own schema), not with negtune's parsers.
"""
from __future__ import annotations

import json
import pathlib

import datasets
import pytest
import yaml

from fixtures import hub_mirror as hm
from negtune import cli
from negtune.config import recipe_from_dict
from negtune.data.build import build_dataset, load_instances
from negtune.data.options import normalize_answer
from negtune.data.tasks import TASKS
from negtune.evaluation.sets import build_eval_sets

HUB_TASKS = ["piqa", "arc_easy", "copa", "hellaswag", "lambada", "web_questions", "nq_open", "trivia_qa"]
REPO_OF = {info["task"]: repo for repo, info in hm.REAL.items()}


@pytest.fixture(scope="module")
def mirror(tmp_path_factory) -> pathlib.Path:
    return hm.build_hub_mirror(tmp_path_factory.mktemp("mirror"))


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("hf_cache"))


def recipe(mirror, cache, tmp_path, data=None, eval_=None, **top):
    raw = {"seed": 3, "output_dir": str(tmp_path / "run"), "model": {"name_or_path": "x"},
           "data": {"tasks": HUB_TASKS, "variants": ["original", "negated"], "pairs": True,
                    "hub_mirror": str(mirror), "cache_dir": cache, **(data or {})},
           "eval": {"tasks": HUB_TASKS, "split": "validation", **(eval_ or {})}, **top}
    return raw


def cap(text: str) -> str:
    return " " + text.strip()[:1].upper() + text.strip()[1:]


# Per task, from the fixture rows: (hub split read for "train", item text, options, answer index)
def expected_mc(task: str, split: str) -> list[tuple[str, tuple[str, ...], int]]:
    if task == "piqa":
        return [(r["goal"], (cap(r["sol1"]), cap(r["sol2"])), r["label"]) for r in hm.PIQA_ROWS[split]]
    if task == "arc_easy":
        return [(r["question"], tuple(cap(t) for t in r["choices"]["text"]),
                 r["choices"]["label"].index(r["answerKey"])) for r in hm.ARC_EASY_ROWS[split]]
    if task == "copa":
        conn = {"cause": "because", "effect": "so"}
        return [(f"{r['premise']}  {conn[r['question']]}...", (cap(r["choice1"]), cap(r["choice2"])), r["label"])
                for r in hm.COPA_ROWS[split]]
    if task == "hellaswag":
        return [(r["ctx"], tuple(cap(e) for e in r["endings"]), int(r["label"])) for r in hm.HELLASWAG_ROWS[split]]
    raise AssertionError(task)


def by_variant(instances, task):
    out: dict = {}
    for inst in instances:
        if inst.task == task:
            out.setdefault(inst.source_id, {})[inst.variant] = inst
    return out


# ------------------------------------------------------------------ the build, end to end


@pytest.fixture(scope="module")
def built(mirror, cache, tmp_path_factory):
    """``negtune build-data`` on all 8 hub tasks from the mirror (eval: their validation splits)."""
    tmp = tmp_path_factory.mktemp("build")
    path = tmp / "r.yaml"
    path.write_text(yaml.safe_dump(recipe(mirror, cache, tmp)))
    out = tmp / "out"
    assert cli.main(["build-data", str(path), "--out", str(out)]) == 0
    return load_instances(out), json.loads((out / "manifest.json").read_text())


@pytest.mark.parametrize("task", ["piqa", "arc_easy", "copa", "hellaswag"])
def test_option_tasks_build_items_options_gold(built, task):
    instances, _ = built
    pairs = by_variant(instances, task)
    want = expected_mc(task, "train")
    assert len(pairs) == len(want)
    for text, options, answer in want:
        [pair] = [p for p in pairs.values() if text in p["original"].prompt]
        orig, neg = pair["original"], pair["negated"]
        assert orig.options == neg.options == options
        assert orig.gold == (answer,) and orig.target == answer
        assert neg.gold == tuple(k for k in range(len(options)) if k != answer)
        assert neg.target in neg.gold
        assert orig.prompt.startswith(TASKS[task].variants["original"].template.split("{")[0])
        assert neg.prompt.startswith(TASKS[task].variants["negated"].template.split("{")[0])


def test_arc_numeric_keys_and_option_counts(built):
    instances, _ = built
    arc = by_variant(instances, "arc_easy")
    assert {len(p["original"].options) for p in arc.values()} == {3, 4, 5}
    numeric = arc["NYSEDREGENTS_2010_8_12"]["original"]
    assert numeric.options[numeric.gold[0]] == " Elastic potential"  # answerKey "3" -> index 2


def test_lambada_reads_validation_passages_with_paper_distractors(built):
    instances, manifest = built
    lam = by_variant(instances, "lambada")
    assert manifest["sources"]["lambada"]["split"] == "validation"  # the hub train split is novels
    assert len(lam) == len(hm.LAMBADA_ROWS["validation"])
    texts = {r["text"].rsplit(" ", 1)[0]: r["text"].rsplit(" ", 1)[1] for r in hm.LAMBADA_ROWS["validation"]}
    for pair in lam.values():
        orig = pair["original"]
        context = orig.prompt.split("\n\n", 1)[1]
        target = texts[context]
        assert orig.options[orig.gold[0]] == cap(target)
        tokens = {t.lower() for t in context.split()}
        assert len({o.lower() for o in orig.options}) == 4
        assert all(o[1:].lower() in tokens for k, o in enumerate(orig.options) if k != orig.gold[0])
        assert set(pair["negated"].gold) == set(range(4)) - {orig.gold[0]}


@pytest.mark.parametrize("task, field, eval_split", [
    ("web_questions", "answers", "test"), ("nq_open", "answer", "validation"), ("trivia_qa", None, "validation")])
def test_qa_tasks_gold_and_paper_distractors(built, task, field, eval_split):
    instances, _ = built
    rows = {"web_questions": hm.WEB_QUESTIONS_ROWS, "nq_open": hm.NQ_OPEN_ROWS, "trivia_qa": hm.TRIVIA_QA_ROWS}[task]

    def answers(r):
        return [r["answer"]["value"], *r["answer"]["aliases"]] if field is None else r[field]

    train_gold = {normalize_answer(answers(r)[0]) for r in rows["train"]}
    eval_answers = {normalize_answer(a) for r in rows[eval_split] for a in answers(r)}
    pairs = by_variant(instances, task)
    assert len(pairs) == len({r["question"] for r in rows["train"]})
    for r in rows["train"]:
        [pair] = [p for p in pairs.values() if r["question"] in p["original"].prompt]
        orig, neg = pair["original"], pair["negated"]
        assert orig.options[orig.gold[0]] == cap(answers(r)[0])
        distractor = orig.options[1 - orig.gold[0]]
        assert normalize_answer(distractor) in train_gold  # from the training answers ...
        assert normalize_answer(distractor) not in eval_answers  # ... never an evaluation answer
        assert normalize_answer(distractor) not in {normalize_answer(a) for a in answers(r)}
        assert neg.options == orig.options and neg.gold == (1 - orig.gold[0],)


def test_trivia_qa_repeated_ids_merge_and_are_counted(built):
    """Fault 1: rc.nocontext repeats a question_id (web + Wikipedia rows); the build merged
    them into one item each and counts the merges (it stopped with "duplicate id" before)."""
    instances, manifest = built
    ids = [i.source_id for i in instances if i.task == "trivia_qa" and i.variant == "original"]
    assert sorted(ids) == sorted({r["question_id"] for r in hm.TRIVIA_QA_ROWS["train"]})
    report = manifest["report"]["trivia_qa"]
    assert (report["rows"], report["duplicates_merged"], report["items"]) == (8, 2, 6)


def test_manifest_reports_what_was_read(built, mirror):
    _, manifest = built
    for task in HUB_TASKS:
        r = manifest["report"][task]
        assert set(r) >= {"source", "split", "revision", "rows", "duplicates_merged", "overlaps_dropped",
                          "items", "sampled", "instances", "compared_with"}
        assert r["instances"] == manifest["counts"][task]["original"] * 2
        assert r["source"].startswith(f"hub {REPO_OF[task]}") and str(mirror) in r["source"]
        src = manifest["sources"][task]
        assert src["mirror"] == str(mirror / REPO_OF[task]) and src["id"] == REPO_OF[task]
        assert src["config"] == hm.REAL[REPO_OF[task]]["config"]
        # the fixture's splits are tiny: every split read differs from its dataset card
        assert src["expected_rows"] == hm.REAL[REPO_OF[task]]["splits"][src["split"]]
        assert any(f"dataset card states {src['expected_rows']}" in w for w in manifest["warnings"])
        assert r["compared_with"] and r["compared_with"][0].startswith("eval hub ")


def test_build_is_deterministic(mirror, cache, tmp_path, built):
    _, manifest = built
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe(mirror, cache, tmp_path)))
    assert cli.main(["build-data", str(path), "--out", str(tmp_path / "again")]) == 0
    again = json.loads((tmp_path / "again" / "manifest.json").read_text())
    assert again["instances_sha256"] == manifest["instances_sha256"]


def test_row_count_warning_is_one_stderr_line(mirror, cache, tmp_path, capsys):
    raw = recipe(mirror, cache, tmp_path, data={"tasks": ["copa"]}, eval_={"tasks": []})
    build_dataset(recipe_from_dict(raw).data, 0)
    err = capsys.readouterr().err.splitlines()
    warn = [line for line in err if line.startswith("negtune: warning: ")]
    assert warn == [f"negtune: warning: {mirror / 'aps/super_glue'} [copa] split 'train': 6 rows, but its dataset "
                    "card states 400 (changed upstream, or a partial copy): the sample differs from the registry's"]


def test_mirror_from_environment_variable(mirror, cache, tmp_path, monkeypatch):
    monkeypatch.setenv("NEGTUNE_HUB_MIRROR", str(mirror))
    raw = recipe(mirror, cache, tmp_path, data={"tasks": ["piqa"], "hub_mirror": None}, eval_={"tasks": []})
    built = build_dataset(recipe_from_dict(raw).data, 0)
    assert built.sources["piqa"]["mirror"] == str(mirror / "baber/piqa")
    assert len(built.instances) == 2 * len(hm.PIQA_ROWS["train"])


def test_a_changed_clone_is_read_again(cache, tmp_path):
    """datasets caches a directory whose README lists ``configs:`` under the directory's name
    and a hash of the README and the data-file patterns, not of the files: a clone whose data
    changed (a git pull, another revision in another directory) must not be served from the
    first copy's cache (it was, before negtune keyed the cache by the clone's files)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    raw = {"model": {"name_or_path": "x"}, "data": {"tasks": ["copa"], "variants": ["original"], "cache_dir": cache}}
    prompts = []
    for k in range(2):
        root = tmp_path / f"clone{k}"
        hm.build_repo(root, "aps/super_glue")
        part = root / "aps/super_glue/copa/train-00000-of-00001.parquet"
        table = pq.read_table(part)
        rows = table.to_pylist()
        rows[0] = {**rows[0], "premise": f"Clone {k} wrote this premise."}
        pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), part)
        raw["data"]["hub_mirror"] = str(root)
        prompts.append(build_dataset(recipe_from_dict(raw).data, 0).instances[0].prompt)
    assert "Clone 0 wrote" in prompts[0] and "Clone 1 wrote" in prompts[1]


# ------------------------------------------------------------------ evaluation sets from the mirror


def test_eval_sets_from_mirror_use_aliases_and_training_distractors(mirror, cache, tmp_path):
    """Fault 3 on the evaluation side: hub evaluation items get their distractor from the
    training answers (they drew it from the evaluation split's own answers before)."""
    r = recipe_from_dict(recipe(mirror, cache, tmp_path))
    sets = build_eval_sets(r)
    web = by_variant(sets, "web_questions")
    assert len(web) == len(hm.WEB_QUESTIONS_ROWS["test"])  # validation -> the hub's test split
    train = {normalize_answer(r["answers"][0]) for r in hm.WEB_QUESTIONS_ROWS["train"]}
    for pair in web.values():
        orig = pair["original"]
        assert normalize_answer(orig.options[1 - orig.gold[0]]) in train
    tqa = by_variant(sets, "trivia_qa")
    assert len(tqa) == len({r["question_id"] for r in hm.TRIVIA_QA_ROWS["validation"]})  # repeats merged


def test_hidden_test_labels_are_refused(mirror, cache, tmp_path, capsys):
    """TriviaQA's test answers are "<unk>" (PIQA/COPA: label -1, HellaSwag: ""): never gold."""
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe(mirror, cache, tmp_path, data={"tasks": ["trivia_qa"]},
                                          eval_={"tasks": ["trivia_qa"], "split": "test"})))
    msg = run_error(path, tmp_path, capsys)
    assert msg == ("negtune: error: eval.split: task 'trivia_qa': hub split 'test' of mandarjoshi/trivia_qa has no "
                   "public labels (hidden as -1, '' or '<unk>'); use a labelled split or local files")


# ------------------------------------------------------------------ bad input: one line, exit 2, nothing written


def run_error(path: pathlib.Path, tmp_path: pathlib.Path, capsys) -> str:
    out = tmp_path / "out"
    rc = cli.main(["build-data", str(path), "--out", str(out)])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("negtune: error: ")]
    assert rc == 2 and len(errors) == 1, err
    assert "Traceback" not in err
    assert not out.exists() and not (tmp_path / "run").exists()
    return errors[0]


def test_missing_mirror_repository_is_one_line(mirror, cache, tmp_path, capsys):
    partial = tmp_path / "partial"
    hm.build_repo(partial, "baber/piqa")
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe(partial, cache, tmp_path, data={"tasks": ["piqa", "copa"]},
                                          eval_={"tasks": []})))
    msg = run_error(path, tmp_path, capsys)
    assert msg == (f"negtune: error: {partial / 'aps/super_glue'}: not found: the hub mirror has no copy of "
                   f"aps/super_glue (git clone https://huggingface.co/datasets/aps/super_glue {partial / 'aps/super_glue'})")
    path.write_text(yaml.safe_dump(recipe(tmp_path / "nowhere", cache, tmp_path, eval_={"tasks": []})))
    assert run_error(path, tmp_path, capsys) == (
        f"negtune: error: {tmp_path / 'nowhere'}: hub mirror directory not found (from data.hub_mirror)")


def test_conflicting_repeated_id_names_both_rows(mirror, cache, tmp_path, capsys):
    """The same question_id with another answer is still an error naming both rows."""
    bad = tmp_path / "bad"
    hm.build_repo(bad, "mandarjoshi/trivia_qa")
    import pyarrow.parquet as pq

    part = bad / "mandarjoshi/trivia_qa/rc.nocontext/train-00000-of-00001.parquet"
    table = pq.read_table(part)
    rows = table.to_pylist()
    rows[5] = {**rows[5], "answer": {**rows[5]["answer"], "value": "Somewhere else"}}  # the repeat of row 1
    import pyarrow as pa

    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), part)
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe(bad, cache, tmp_path, data={"tasks": ["trivia_qa"]}, eval_={"tasks": []})))
    where = f"{bad / 'mandarjoshi/trivia_qa'}/rc.nocontext/train"
    assert run_error(path, tmp_path, capsys) == (
        f"negtune: error: {where}: row 6: duplicate id 'qz_4401' with a different answer than {where}: row 1")


# ------------------------------------------------------------------ the registry's hub ids, revisions and configs


@pytest.fixture
def fake_hub(mirror, tmp_path, monkeypatch):
    """``datasets.load_dataset(repo_id, ..., revision=...)`` served from local trees: the main
    branch from the mirror, ``refs/convert/parquet`` from the parquet-export layout. The
    registry's HubSource is then exercised exactly as on the hub, without data.hub_mirror."""
    export = tmp_path / "export"
    hm.build_parquet_export_variant(export)
    real = datasets.load_dataset
    calls = []

    def load(path, name=None, split=None, revision=None, cache_dir=None, **kw):
        calls.append((path, name, split, revision))
        root = export if revision == "refs/convert/parquet" else mirror
        return real(str(root / path), name, split=split, revision=revision, cache_dir=cache_dir, **kw)

    monkeypatch.setattr(datasets, "load_dataset", load)
    monkeypatch.delenv("NEGTUNE_HUB_MIRROR", raising=False)
    return calls


def test_trivia_qa_from_the_hub_layout_merges_repeated_ids(fake_hub, cache, tmp_path):
    """Fault 1 through the plain hub path (no mirror key): rc.nocontext's repeated
    question_ids used to stop the build with "duplicate id"."""
    raw = {"model": {"name_or_path": "x"},
           "data": {"tasks": ["trivia_qa"], "variants": ["original"], "cache_dir": cache}}
    built = build_dataset(recipe_from_dict(raw).data, 0)
    ids = [i.source_id for i in built.instances]
    assert sorted(ids) == sorted({r["question_id"] for r in hm.TRIVIA_QA_ROWS["train"]})


def test_registry_sources_load_from_the_hub_layout(fake_hub, cache, tmp_path):
    """Fault 2: COPA loads (the old refs/convert/parquet pin only exposes a 'default' config:
    "BuilderConfig 'copa' not found"), and every task's id/config/split loads as registered."""
    raw = {"model": {"name_or_path": "x"}, "data": {"tasks": HUB_TASKS, "variants": ["original"], "cache_dir": cache}}
    built = build_dataset(recipe_from_dict(raw).data, 0)
    assert {i.task for i in built.instances} == set(HUB_TASKS)
    copa = [c for c in fake_hub if c[0] == "aps/super_glue"]
    assert copa == [("aps/super_glue", "copa", "train", None)]
    assert built.report["copa"]["items"] == len(hm.COPA_ROWS["train"])
    for task in HUB_TASKS:
        hub = TASKS[task].hub
        rec = hm.RECOMMENDED_HUB_SOURCES[task]
        assert (hub.path, hub.name, hub.revision, hub.split_aliases) == (
            rec["path"], rec["name"], rec["revision"], rec["split_aliases"])
        assert hub.expected_rows == hm.REAL[rec["path"]]["splits"]


def test_dry_run_names_the_clones_and_the_paper_files(capsys, monkeypatch):
    monkeypatch.chdir(pathlib.Path(__file__).parents[2])
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert cli.main(["train", "recipes/opt125m.yaml", "--dry-run", "data.hub_mirror=/data/mirror",
                     "eval.paper_csv_dir=/data/paper_eval", "train.eval_at_epoch_end=true"]) == 0
    out = capsys.readouterr().out
    assert "copa: will be read from the clone /data/mirror/aps/super_glue (copa) split train" in out
    assert "(original, negated, the paper's CSVs in /data/paper_eval)" in out


def test_resume_hash_ignores_where_data_is_read_from():
    """A run started with the hub may resume on an air-gapped cluster with a mirror."""
    from negtune.training.checks import train_hash

    base = {"model": {"name_or_path": "x"}, "data": {"tasks": ["piqa"]}}
    moved = {"model": {"name_or_path": "x"}, "data": {"tasks": ["piqa"], "hub_mirror": "/m", "cache_dir": "/c"}}
    assert train_hash(recipe_from_dict(base)) == train_hash(recipe_from_dict(moved))
    other = {"model": {"name_or_path": "x"}, "data": {"tasks": ["piqa"], "on_overlap": "error"}}
    assert train_hash(recipe_from_dict(base)) != train_hash(recipe_from_dict(other))


def test_clone_without_git_lfs_is_one_line(cache, tmp_path, capsys):
    """A clone made without git-lfs holds pointer stubs instead of parquet files."""
    root = tmp_path / "nolfs"
    hm.build_repo(root, "allenai/ai2_arc")
    stub = root / "allenai/ai2_arc/ARC-Easy/train-00000-of-00001.parquet"
    stub.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:" + "0" * 64 + "\nsize 331910\n")
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe(root, cache, tmp_path, data={"tasks": ["arc_easy"]}, eval_={"tasks": []})))
    assert run_error(path, tmp_path, capsys) == (
        f"negtune: error: {stub}: a git-lfs pointer, not data: run `git lfs pull` in {root / 'allenai/ai2_arc'}")
