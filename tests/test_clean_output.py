"""What a user sees on stderr: negtune's own lines and progress bars, nothing foreign.

Why a subprocess: warnings and third-party log lines depend on what a fresh interpreter
imports (bitsandbytes' CPU backend logs "Failed to load CPU gemm_4bit_forward ..." once
imported; transformers' deprecation FutureWarnings are shown once per process), and on
Python's default warning filters, which pytest replaces in-process.

The runs: the tiny demo (base eval, two LoRA fine-tunings, adapter evaluation of the run
directories, report) and `negtune eval --adapter` (the other adapter-loading path).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # subprocess training runs

REPO = Path(__file__).resolve().parents[1]
TINY = ["data.max_instances=12", "eval.max_instances=6", "train.max_steps=2", "train.per_device_batch_size=4",
        "eval.batch_size=8", "model.max_length=48", "model.lora.r=2"]
# negtune's own stderr lines: errors/notes, the demo's stage lines, evaluate_run's log
OWN = [re.compile(p) for p in (r"^negtune: ", r"^\[demo\] ", r"^eval \S+: \S+$")]
# tqdm bars (negtune's and transformers' "Loading weights"): "desc:  50%|##   | 1/2 [..."
BAR = re.compile(r"^[^|]*\d+%\|[^|]*\| *[\d.?]+[kMG]?/[\d.?]+[kMG]? \[")


def foreign_lines(stderr: str) -> list[str]:
    lines = [line.strip() for line in re.split(r"[\r\n]", stderr)]
    return [line for line in lines if line and not BAR.match(line) and not any(p.match(line) for p in OWN)]


def test_the_filter_itself():
    bar = "train: 100%|██████████| 2/2 [00:00<00:00, 11.35it/s, loss=5.9909]"
    noise = ("Failed to load CPU gemm_4bit_forward from kernels-community: No module named 'kernels'.\n"
             "/x/transformers/modeling_utils.py:3303: FutureWarning: `is_gradient_checkpointing` is deprecated\n"
             "  warnings.warn(")
    assert foreign_lines(f"\r{bar}\r\n[demo] 1/4 evaluating\nLoading weights: 100%|█| 36/36 [00:00<00:00]\n") == []
    assert len(foreign_lines(bar + "\n" + noise)) == 3


def test_lora_training_and_eval_print_only_negtune_lines(tiny_opt_dir, tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", OMP_NUM_THREADS="1",
               TOKENIZERS_PARALLELISM="false")
    env.pop("PYTHONWARNINGS", None)  # Python's default filters, as a user has them
    out = tmp_path / "demo"
    demo = subprocess.run([sys.executable, "-m", "negtune.cli", "demo", str(REPO / "recipes" / "demo.yaml"), *TINY,
                           "--model", str(tiny_opt_dir), "--out", str(out)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert demo.returncode == 0, demo.stderr[-3000:]
    assert "[demo] 2/4 LoRA fine-tuning" in demo.stderr  # the filter sees the real stream
    assert foreign_lines(demo.stderr) == []

    adapter = next((out / "ce" / "checkpoints").glob("step-*")) / "model"
    ev = subprocess.run([sys.executable, "-m", "negtune.cli", "eval", "--model", str(tiny_opt_dir),
                         "--adapter", str(adapter), "--recipe", str(REPO / "recipes" / "demo.yaml"), *TINY,
                         f"eval.files.demo={REPO / 'data' / 'demo' / 'test.jsonl'}"],
                        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert ev.returncode == 0, ev.stderr[-3000:]
    assert "macro" in ev.stdout
    assert foreign_lines(ev.stderr) == []
