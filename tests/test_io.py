import errno
import json
import os

import pytest

from negtune.errors import UserError, exit_on_user_error
from negtune.io import atomic_dir, atomic_path, check_output_file, claim_dir, is_results_json, remove_owned, write_json, \
    write_jsonl


def test_atomic_path_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "results.json"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_atomic_dir_replaces_only_when_complete(tmp_path):
    target = tmp_path / "ckpt"
    with atomic_dir(target, "checkpoint") as tmp:
        (tmp / "a").write_text("1")
    with pytest.raises(RuntimeError):
        with atomic_dir(target, "checkpoint") as tmp:
            (tmp / "a").write_text("2")
            raise RuntimeError("killed")
    assert (target / "a").read_text() == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_written_files_respect_umask(tmp_path):
    old = os.umask(0o022)
    try:
        write_json(tmp_path / "r.json", {"a": 1})
        with atomic_dir(tmp_path / "d", "data"):
            pass
    finally:
        os.umask(old)
    assert (tmp_path / "r.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o755


def test_jsonl_hash_is_of_the_bytes(tmp_path):
    import hashlib

    digest = write_jsonl(tmp_path / "x.jsonl", [{"b": 1, "a": "é"}])
    assert digest == hashlib.sha256((tmp_path / "x.jsonl").read_bytes()).hexdigest()


def _user_files(root):
    (root / "data").mkdir(parents=True)
    (root / "data" / "mine.csv").write_text("precious")
    (root / "notes.txt").write_text("also precious")
    return root


def test_claim_dir_refuses_what_negtune_did_not_make(tmp_path):
    """--out . in a project, an empty path, a regular file, a path under a file: all refused,
    nothing touched (atomic_dir used to replace whatever existed)."""
    project = _user_files(tmp_path / "project")
    for bad, msg in [(project, "holds files negtune did not write"), (project / "data", "did not write"),
                     ("", "empty path"), (project / "notes.txt", "is a file"),
                     (project / "notes.txt" / "run", "is a file, not a directory")]:
        with pytest.raises(UserError, match=msg):
            claim_dir(bad, "run")
    with pytest.raises(UserError, match="refusing to replace it"):
        with atomic_dir(project / "data", "data"):
            pass
    with pytest.raises(UserError, match="refusing to replace it: a file"):
        with atomic_dir(project / "notes.txt", "data"):
            pass
    assert (project / "data" / "mine.csv").read_text() == "precious"
    assert (project / "notes.txt").read_text() == "also precious"
    assert sorted(p.name for p in project.iterdir()) == ["data", "notes.txt"]  # no .old, no marker


def test_claim_dir_new_empty_and_own_dirs(tmp_path):
    run = claim_dir(tmp_path / "runs" / "a", "run")
    assert json.loads((run / ".negtune").read_text()) == {"kind": "run"}
    (run / "checkpoints").mkdir()
    assert claim_dir(run, "run") == run  # negtune's own run: fine again
    with pytest.raises(UserError, match="it is a negtune run directory"):
        claim_dir(run, "data")  # but not for another purpose (build-data --out RUN_DIR)
    empty = tmp_path / "empty"
    empty.mkdir()
    claim_dir(empty, "report")
    legacy = tmp_path / "old-run"  # written by a negtune without markers
    legacy.mkdir()
    (legacy / "recipe.resolved.yaml").write_text("# resolved from x\n")
    claim_dir(legacy, "run")
    with pytest.raises(UserError, match="not a negtune run directory"):
        remove_owned(_user_files(tmp_path / "user"), "run")
    remove_owned(legacy, "run")
    assert not legacy.exists()


def test_atomic_dir_replaces_its_own_kind_only(tmp_path):
    with atomic_dir(tmp_path / "data", "data") as tmp:
        (tmp / "instances.jsonl").write_text("1")
    with atomic_dir(tmp_path / "data", "data") as tmp:
        (tmp / "instances.jsonl").write_text("2")
    assert (tmp_path / "data" / "instances.jsonl").read_text() == "2"
    with pytest.raises(UserError, match="not a negtune checkpoint directory"):
        with atomic_dir(tmp_path / "data", "checkpoint"):
            pass


def test_output_file_only_replaces_negtune_files(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# mine")
    with pytest.raises(UserError, match="not a negtune results file"):
        check_output_file(readme, is_results_json, "results file")
    with pytest.raises(UserError, match="is a directory"):
        check_output_file(tmp_path, is_results_json, "results file")
    with pytest.raises(UserError, match="is a file, not a directory"):
        check_output_file(readme / "r.json", is_results_json, "results file")
    ours = tmp_path / "r.json"
    ours.write_text(json.dumps({"tasks": {}, "summary": {}}))
    assert check_output_file(ours, is_results_json, "results file") == ours
    assert readme.read_text() == "# mine"


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_disk_full_and_read_only_are_one_line(code, capsys):
    def job():
        raise OSError(code, os.strerror(code), "/runs/x/eval/base.json")

    assert exit_on_user_error(job) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "/runs/x/eval/base.json" in err and os.strerror(code) in err


def test_a_marker_being_written_counts_as_empty(tmp_path):
    """Another process of the same launch may look while the main one writes the marker."""
    from negtune.io import check_output_dir

    d = tmp_path / "run"
    d.mkdir()
    (d / "..negtune.k3j2.tmp").write_text("{}")
    (d / ".negtune.lock").write_text("{}")
    assert check_output_dir(d, "run") == d
    (d / "notes.tmp").write_text("mine")  # a user's file is still a user's file
    with pytest.raises(UserError, match="holds files negtune did not write"):
        check_output_dir(d, "run")
