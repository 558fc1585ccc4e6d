"""Fast trainer checks: bad input rejected before any model is loaded, dry runs of every
shipped recipe (offline), launch configs, and the global-batch sampler."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import negtune.models
from negtune.cli import main as cli_main
from negtune.data.sampler import BatchPlan, GlobalBatchSampler, derive_grad_accum, padding_waste

REPO = Path(__file__).resolve().parents[2]
RECIPES = sorted((REPO / "recipes").glob("opt*.yaml"))
LAUNCH = REPO / "launch"


@pytest.fixture()
def no_model_loading(monkeypatch):
    """Any attempt to load weights fails the test: checks must come first."""
    def boom(*a, **k):
        raise AssertionError("a model was loaded before the input was checked")

    monkeypatch.setattr(negtune.models, "load_causal_lm", boom)
    monkeypatch.setattr(negtune.models, "load_for_training", boom)


def _recipe(tmp_path, tiny_opt_dir, **over):
    copa = tmp_path / "copa.jsonl"
    copa.write_text("".join(json.dumps({"premise": f"P {i}.", "choice1": "a.", "choice2": "b.", "question": "cause",
                                        "idx": i, "label": i % 2}) + "\n" for i in range(8)))
    raw = {"output_dir": str(tmp_path / "run"), "model": {"name_or_path": str(tiny_opt_dir)},
           "data": {"tasks": ["copa"], "variants": ["negated"], "files": {"copa": str(copa)}},
           "train": {"per_device_batch_size": 2, "trackers": []}}
    for k, v in over.items():
        raw[k] = {**raw.get(k, {}), **v} if isinstance(v, dict) else v
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _err(capsys) -> str:
    return capsys.readouterr().err.strip()


@pytest.mark.parametrize("over, message", [
    ({"train": {"lr": -1}}, "train.lr: must be > 0"),
    ({"train": {"bogus": 1}}, "train.bogus: unknown key"),
    ({"train": {"global_batch_size": 7}}, "not divisible"),
    ({"loss": {"name": "no_such_loss"}}, "unknown loss"),
    ({"model": {"name_or_path": "/no/such/model"}}, "no such directory"),
    ({"model": {"name_or_path": "facebook/opt-does-not-exist"}}, "offline"),
])
def test_bad_recipes_rejected_before_loading(tmp_path, tiny_opt_dir, no_model_loading, capsys, over, message):
    path = _recipe(tmp_path, tiny_opt_dir, **over)
    t0 = time.perf_counter()
    assert cli_main(["train", str(path)]) == 2
    err = _err(capsys)
    assert message in err and len(err.splitlines()) == 1, err
    assert time.perf_counter() - t0 < 10


def test_unknown_architecture_needs_target_modules(tmp_path, tiny_opt_dir, no_model_loading, capsys):
    from transformers import BertConfig

    arch = tmp_path / "bert"
    BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
               intermediate_size=32).save_pretrained(arch)
    path = _recipe(tmp_path, tiny_opt_dir, model={"name_or_path": str(arch), "peft": "lora"})
    assert cli_main(["train", str(path)]) == 2
    err = _err(capsys)
    assert "model.lora.target_modules" in err and "'bert'" in err


def test_qlora_without_bitsandbytes(tmp_path, tiny_opt_dir, no_model_loading, capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "bitsandbytes" else real(name, *a))
    path = _recipe(tmp_path, tiny_opt_dir, model={"peft": "qlora"})
    assert cli_main(["train", str(path)]) == 2
    assert "bitsandbytes" in _err(capsys)


def test_resume_dir_not_a_checkpoint_and_process_count(tmp_path, tiny_opt_dir, no_model_loading, capsys, monkeypatch):
    path = _recipe(tmp_path, tiny_opt_dir)
    assert cli_main(["train", str(path), f"--resume={tmp_path}"]) == 2
    assert "not a negtune checkpoint" in _err(capsys)
    # global batch 6 does not divide into 2 per device x 2 processes
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert cli_main(["train", str(path), "train.global_batch_size=6"]) == 2
    assert "2 x 2 process(es) = 4" in _err(capsys)


@pytest.mark.slow
def test_bad_recipe_exit_code_as_script(tmp_path, tiny_opt_dir):
    path = _recipe(tmp_path, tiny_opt_dir, train={"epochs": 0})
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    p = subprocess.run([sys.executable, str(REPO / "negtune" / "train.py"), str(path)], env=env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and p.stderr.strip().splitlines() == [
        f"negtune: error: {path}: train.epochs: must be > 0, got 0"]


@pytest.mark.parametrize("recipe", RECIPES, ids=[r.stem for r in RECIPES])
def test_dry_run_every_recipe_offline(recipe, capsys, monkeypatch, no_model_loading):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(REPO)
    assert cli_main(["train", str(recipe.relative_to(REPO)), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "will be fetched from" in out and "lr=0.001 scheduler=constant" in out
    assert "x 5 epochs" in out and "global 32" in out
    text = recipe.read_text()
    assert text.startswith("#") and "accelerate launch" in text and "Memory" in text


def test_dry_run_local_data_counts(tmp_path, tiny_opt_dir, capsys, no_model_loading):
    path = _recipe(tmp_path, tiny_opt_dir, model={"peft": "lora"}, train={"global_batch_size": 4})
    assert cli_main(["train", str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "8 instances: copa/negated=8" in out
    assert "8 rows / 4 = 2 per epoch x 5 epochs = 10" in out
    assert "targets=q_proj,k_proj,v_proj,out_proj" in out
    assert not (tmp_path / "run").exists()  # a dry run writes nothing


@pytest.mark.parametrize("name", sorted(p.name for p in LAUNCH.glob("*.yaml")))
def test_launch_configs_are_valid_accelerate_configs(name):
    from accelerate.commands.config.config_args import ClusterConfig
    from accelerate.commands.launch import launch_command_parser

    path = LAUNCH / name
    cfg = ClusterConfig.from_yaml_file(str(path))  # raises on unknown top-level keys
    known = set(vars(launch_command_parser().parse_args(["x.py"])))
    for section in ("fsdp_config", "deepspeed_config"):
        for key in (getattr(cfg, section, None) or {}):
            assert key in known, f"{name}: {section}.{key} is not an accelerate launch option"
    assert path.read_text().startswith("#")


def test_fsdp_config_builds_the_plugin(monkeypatch):
    """Beyond key names: what `accelerate launch` would export builds a valid FSDP plugin (CPU)."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils import FullyShardedDataParallelPlugin
    from accelerate.utils.launch import prepare_multi_gpu_env

    args = launch_command_parser().parse_args(["--config_file", str(LAUNCH / "fsdp.yaml"), "x.py"])
    args, _, _ = _validate_launch_command(args)
    for k, v in prepare_multi_gpu_env(args).items():
        monkeypatch.setenv(k, v)
    plugin = FullyShardedDataParallelPlugin()
    assert plugin.fsdp_version == 2 and plugin.transformer_cls_names_to_wrap == ["OPTDecoderLayer"]


def test_slurm_script_is_valid_bash():
    assert subprocess.run(["bash", "-n", str(LAUNCH / "slurm.sbatch")]).returncode == 0


# --------------------------------------------------------------------------- sampler


def test_sampler_disjoint_deterministic_and_grouped():
    import random

    rng = random.Random(0)
    lengths = [rng.randint(5, 200) for _ in range(203)]
    one = GlobalBatchSampler(lengths, BatchPlan(2, 1, 4), seed=3)
    two = GlobalBatchSampler(lengths, BatchPlan(2, 2, 2), seed=3)
    assert len(one) == len(two) == 203 // 8
    e0, e1 = one.steps(0), one.steps(1)
    assert e0 == one.steps(0) and e0 != e1 and e0 == two.steps(0)  # process count does not change batches
    seen = [i for b in e0 for i in b]
    assert len(seen) == len(set(seen)) == 200
    for batch in e0:
        parts = [two.micro_batches(batch, r) for r in (0, 1)]
        flat = [i for p in parts for mb in p for i in mb]
        assert sorted(flat) == sorted(batch)  # disjoint slices covering the global batch
        assert all(len(mb) == 2 for p in parts for mb in p)
    grouped = padding_waste([[lengths[i] for i in mb] for b in e0 for mb in one.micro_batches(b, 0)])
    plain = GlobalBatchSampler(lengths, BatchPlan(2, 1, 4), seed=3, group_by_length=False)
    random_ = padding_waste([[lengths[i] for i in mb] for b in plain.steps(0) for mb in plain.micro_batches(b, 0)])
    assert grouped[0] / grouped[1] < 0.05 < random_[0] / random_[1]


def test_derive_grad_accum():
    assert derive_grad_accum(32, 8, 1, 1) == (4, None)
    assert derive_grad_accum(32, 8, 4, 1) == (1, None)
    assert derive_grad_accum(None, 8, 4, 3) == (3, None)
    assert "not divisible" in derive_grad_accum(30, 8, 1, 1)[1]


def test_dry_run_demo_recipe_converts_nothing(tmp_path, capsys, monkeypatch, no_model_loading):
    """The named offline model's architecture is known without converting the GGUF."""
    import negtune.offline_model as offline

    def no_conversion(*a, **k):
        raise AssertionError("dry run converted the offline model")

    monkeypatch.setattr(offline, "convert", no_conversion)
    monkeypatch.setattr(offline, "find_gguf", lambda: tmp_path / "fake.gguf")
    monkeypatch.setitem(offline.OFFLINE_SOURCES, "smollm2-135m-instruct",  # the wheel need not be installed
                        offline.OfflineSource(offline.smollm2_135m_instruct, "llama", offline.find_gguf))
    monkeypatch.setenv("NEGTUNE_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(REPO)
    assert cli_main(["train", "recipes/demo.yaml", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "architecture=llama" in out and "targets=q_proj,k_proj,v_proj,o_proj" in out
    assert not (tmp_path / "cache").exists()
