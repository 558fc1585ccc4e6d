"""`negtune train` and `negtune build-data` never lose a user's files, runs or results.

Each test is a regression test for a failure found by feeding negtune hostile input: it
fails on the code before the fix. Most run the real CLI in-process (`negtune.cli.main`) on
a tiny OPT; those that need a crash or a second process run a subprocess.
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers import REPO
from negtune.cli import main as cli_main
from negtune.locking import DirLock

WORDS = "the cat dog red blue green fox jumps over lazy quick brown water flowed man turned faucet".split()
LOSSES = REPO / "tests" / "training" / "nan_loss.py"


@pytest.fixture(scope="module")
def copa_file(tmp_path_factory) -> Path:
    rng = random.Random(0)
    path = tmp_path_factory.mktemp("data") / "copa.jsonl"
    with open(path, "w") as fh:
        for i in range(16):
            sent = lambda k: " ".join(rng.choice(WORDS) for _ in range(k)) + "."  # noqa: E731
            fh.write(json.dumps({"premise": sent(5).capitalize(), "choice1": sent(3), "choice2": sent(4),
                                 "question": "cause" if i % 2 else "effect", "idx": i, "label": i % 2}) + "\n")
    return path


def recipe(tmp_path: Path, tiny_opt_dir: Path, copa_file: Path, name: str = "r", **sections) -> Path:
    raw = {"seed": 1, "output_dir": str(tmp_path / "run"),
           "model": {"name_or_path": str(tiny_opt_dir), "max_length": 64},
           "data": {"tasks": ["copa"], "variants": ["negated"], "files": {"copa": str(copa_file)}},
           "train": {"epochs": 1, "per_device_batch_size": 4, "trackers": [], "log_every_steps": 1}}
    for key, value in sections.items():
        raw[key] = {**raw.get(key, {}), **value} if isinstance(value, dict) else value
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def one_line_error(capsys) -> str:
    """stderr holds exactly one error line (progress bars aside) and no traceback."""
    err = [line for line in capsys.readouterr().err.replace("\r", "\n").splitlines()
           if line.strip() and "%|" not in line]
    assert len(err) == 1 and err[0].startswith("negtune: error:"), err
    return err[0]


# --------------------------------------------------------------------------- user files


def test_train_out_dot_in_a_project_is_refused(tmp_path, tiny_opt_dir, copa_file, capsys, monkeypatch):
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    (project / "data" / "mine.csv").write_text("precious")
    path = recipe(tmp_path, tiny_opt_dir, copa_file)
    monkeypatch.chdir(project)
    assert cli_main(["train", str(path), "--out", "."]) == 2
    assert "holds files negtune did not write" in one_line_error(capsys)
    assert (project / "data" / "mine.csv").read_text() == "precious"
    assert sorted(p.name for p in project.iterdir()) == ["data"]


def test_empty_output_dir_and_out_file(tmp_path, tiny_opt_dir, copa_file, capsys):
    path = recipe(tmp_path, tiny_opt_dir, copa_file, output_dir="")
    assert cli_main(["train", str(path)]) == 2
    assert "output_dir: empty" in one_line_error(capsys)
    target = tmp_path / "notes.txt"
    target.write_text("mine")
    for command in (["train", str(recipe(tmp_path, tiny_opt_dir, copa_file)), "--out", str(target)],
                    ["build-data", str(recipe(tmp_path, tiny_opt_dir, copa_file)), "--out", str(target)]):
        assert cli_main(command) == 2
        assert "is a file" in one_line_error(capsys)
    assert target.read_text() == "mine" and not (tmp_path / ".notes.txt.old").exists()


def test_build_data_into_a_training_run_is_refused(tmp_path, tiny_opt_dir, copa_file, capsys):
    run = tmp_path / "run"
    assert cli_main(["build-data", str(recipe(tmp_path, tiny_opt_dir, copa_file))]) == 0  # RUN_DIR/data
    (run / "checkpoints" / "step-000004").mkdir(parents=True)
    (run / "checkpoints" / "step-000004" / "trainer_state.json").write_text("{}")
    capsys.readouterr()
    assert cli_main(["build-data", str(recipe(tmp_path, tiny_opt_dir, copa_file)), "--out", str(run)]) == 2
    assert "negtune run directory" in one_line_error(capsys)
    assert (run / "checkpoints" / "step-000004" / "trainer_state.json").is_file()
    # its own data directory is negtune's: rebuilding it is fine
    assert cli_main(["build-data", str(recipe(tmp_path, tiny_opt_dir, copa_file)), "--out", str(run / "data")]) == 0


# --------------------------------------------------------------------------- locks


def test_a_second_run_is_refused_naming_the_holder(tmp_path, tiny_opt_dir, copa_file, capsys):
    run = tmp_path / "run"
    run.mkdir()
    with DirLock(run, "training"):  # another process's training, as far as the lock is concerned
        assert cli_main(["train", str(recipe(tmp_path, tiny_opt_dir, copa_file))]) == 2
        err = one_line_error(capsys)
    assert "in use by another negtune process" in err and f"pid {os.getpid()}" in err and "started" in err
    assert not (run / "checkpoints").exists()


def test_a_lock_left_by_a_dead_process_does_not_block(tmp_path):
    code = ("import os, signal, sys; from negtune.locking import DirLock; DirLock(sys.argv[1], 'training')"
            ".acquire(); os.kill(os.getpid(), signal.SIGKILL)")
    p = subprocess.run([sys.executable, "-c", code, str(tmp_path)])
    assert p.returncode == -9 and (tmp_path / ".negtune.lock").is_file()
    DirLock(tmp_path, "training").acquire().release()


# --------------------------------------------------------------------------- what is saved and loaded


@pytest.mark.slow
def test_nan_gradient_is_never_saved(tmp_path, tiny_opt_dir, copa_file):
    """With clipping off, a NaN gradient used to be applied and saved as a good checkpoint."""
    path = recipe(tmp_path, tiny_opt_dir, copa_file, loss={"name": f"{LOSSES}:nan_grad_after", "step": 3},
                  train={"max_grad_norm": None, "save_every_steps": 1, "keep_last": 5, "per_device_batch_size": 2})
    p = subprocess.run([sys.executable, str(REPO / "negtune" / "train.py"), str(path)], capture_output=True,
                       text=True, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert p.returncode == 3, p.stderr[-2000:]
    assert "gradient is NaN/inf at step 3" in p.stderr
    assert sorted(x.name for x in (tmp_path / "run" / "checkpoints").iterdir()) == ["step-000001", "step-000002"]


def test_dry_run_runs_none_of_a_user_loss_file(tmp_path, tiny_opt_dir, copa_file, capsys):
    marker = tmp_path / "executed"
    loss_file = tmp_path / "my_loss.py"
    loss_file.write_text(f"open({str(marker)!r}, 'w').write('module body ran')\n"
                         "def my_loss(model, batch, ctx):\n    raise RuntimeError\n")
    path = recipe(tmp_path, tiny_opt_dir, copa_file, loss={"name": f"{loss_file}:my_loss", "alpha": 1})
    assert cli_main(["train", str(path), "--dry-run"]) == 0
    assert "not imported in a dry run" in capsys.readouterr().out
    assert not marker.exists()


def test_resume_loads_no_pickled_code(tmp_path, tiny_opt_dir, copa_file, capsys):
    """optimizer.pt/scheduler.pt/rng_state were loaded with torch.load(weights_only=False): a crafted
    file ran code during --resume."""
    import pickle

    path = recipe(tmp_path, tiny_opt_dir, copa_file, train={"max_steps": 2, "save_every_steps": 1})
    assert cli_main(["train", str(path)]) == 0
    ckpt = tmp_path / "run" / "checkpoints" / "step-000002"
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (ckpt / "optimizer.pt").write_bytes(pickle.dumps(Exploit()))
    capsys.readouterr()
    assert cli_main(["train", str(path), "--resume", "train.max_steps=3"]) == 2  # --resume takes no value
    assert "optimizer.pt: cannot be loaded for resume" in one_line_error(capsys)
    assert not marker.exists()
    (ckpt / "trainer_state.json").write_text("{not json")
    assert cli_main(["train", str(path), "--resume", "train.max_steps=3"]) == 2
    assert "trainer_state.json: unreadable trainer state" in one_line_error(capsys)


def test_resume_flag_leaves_overrides_alone(tmp_path, tiny_opt_dir, copa_file, capsys):
    path = recipe(tmp_path, tiny_opt_dir, copa_file)
    assert cli_main(["train", str(path), "--resume", "train.lr=5e-3", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "lr=0.005" in out and "resume        auto" in out


# --------------------------------------------------------------------------- one line, nothing left behind


def test_garbage_weights_and_binary_recipe_are_one_line(tmp_path, tiny_opt_dir, copa_file, capsys):
    import shutil

    broken = tmp_path / "broken-model"
    shutil.copytree(tiny_opt_dir, broken)
    (broken / "model.safetensors").write_bytes(b"\x00garbage" * 8)
    assert cli_main(["train", str(recipe(tmp_path, broken, copa_file))]) == 2
    assert "cannot load weights" in one_line_error(capsys)
    assert not (tmp_path / "run").exists()  # the fresh run directory is removed again
    binary = tmp_path / "recipe.yaml"
    binary.write_bytes(bytes(range(256)))
    assert cli_main(["train", str(binary)]) == 2
    assert "not a text file" in one_line_error(capsys)
    assert cli_main(["train", str(path := recipe(tmp_path, tiny_opt_dir, copa_file)), "--lrr", "1"]) == 2
    assert "unrecognized arguments: --lrr" in one_line_error(capsys) and path.is_file()


@pytest.mark.parametrize("override, message", [
    ("train.per_device_batch_size=64", "fewer than one global batch"),
    ("model.max_length=1", "does not fit max_length 1"),
])
def test_errors_after_the_data_build_leave_nothing(tmp_path, tiny_opt_dir, copa_file, capsys, override, message):
    assert cli_main(["train", str(recipe(tmp_path, tiny_opt_dir, copa_file)), override]) == 2
    assert message in one_line_error(capsys)
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_a_raising_user_loss_names_itself_and_the_step(tmp_path, tiny_opt_dir, copa_file):
    path = recipe(tmp_path, tiny_opt_dir, copa_file, loss={"name": f"{LOSSES}:raise_after", "step": 3},
                  train={"save_every_steps": 1, "per_device_batch_size": 2})
    p = subprocess.run([sys.executable, str(REPO / "negtune" / "train.py"), str(path)], capture_output=True,
                       text=True, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert p.returncode == 2, p.stderr[-2000:]
    errors = [line for line in p.stderr.splitlines() if line.startswith("negtune: error")]
    assert len(errors) == 1 and "raise_after" in errors[0] and "ValueError: bad batch" in errors[0]
    assert "step 3" in errors[0] and "Traceback" not in p.stderr
    assert sorted(x.name for x in (tmp_path / "run" / "checkpoints").iterdir()) == ["step-000001", "step-000002"]


def test_killed_saves_are_cleared_at_the_next_start(tmp_path, tiny_opt_dir, copa_file):
    path = recipe(tmp_path, tiny_opt_dir, copa_file, train={"max_steps": 1})
    assert cli_main(["train", str(path)]) == 0
    stale = tmp_path / "run" / "checkpoints" / ".step-000002.x1y2.tmp"
    stale.mkdir()
    (stale / "optimizer.pt").write_bytes(b"half")
    assert cli_main(["train", str(path), "--resume", "train.max_steps=2"]) == 0
    assert not stale.exists() and (tmp_path / "run" / "checkpoints" / "step-000002").is_dir()


def test_a_full_disk_during_a_save_is_one_line_and_keeps_earlier_checkpoints(tmp_path, tiny_opt_dir, copa_file,
                                                                              capsys, monkeypatch):
    import torch

    path = recipe(tmp_path, tiny_opt_dir, copa_file, train={"max_steps": 2, "save_every_steps": 1})
    real_save, calls = torch.save, []

    def full_disk(obj, f, *a, **k):  # what torch raises when the disk fills during a save
        calls.append(f)
        if len(calls) > 2:
            raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 64 vs 0")
        return real_save(obj, f, *a, **k)

    monkeypatch.setattr(torch, "save", full_disk)
    assert cli_main(["train", str(path)]) == 2
    assert "could not write the checkpoint (" in one_line_error(capsys)
    checkpoints = tmp_path / "run" / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["step-000001"]  # no half-written step-000002
