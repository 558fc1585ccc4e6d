#!/usr/bin/env python
"""negtune's training loop vs a plain ``transformers.Trainer`` on the same work.

An OPT-125m-shaped model (``OPTConfig()`` defaults: 12 layers, hidden 768, vocab 50272;
random weights, fp32) trains for ``--steps`` optimizer steps of ``--batch`` rows on the same
synthetic prompt/answer rows (prompt lengths spread over ``--min-len``..``--max-len`` tokens,
loss on the answer tokens only), with AdamW lr 1e-3 and gradient clipping 1.0 in both:

* ``negtune``: ``negtune.training.trainer.Trainer`` (length-grouped global batches, dynamic padding);
* ``trainer``: ``transformers.Trainer`` with its default collator, rows padded to the longest
  row in the data set (what the default collator needs);
* ``trainer-dynamic`` (``--with-dynamic``): ``Trainer`` with ``group_by_length`` and
  ``DataCollatorForSeq2Seq`` dynamic padding (the fair "tuned Trainer" comparison).

The data set holds exactly ``steps x batch`` rows and runs one epoch, so every variant sees
every row once: the same real (non-pad) tokens. Each variant runs in its own subprocess;
peak memory is that process's ``ru_maxrss``. Prints tokens/s (real tokens / wall time of
the training steps, setup and checkpoint saving excluded), padding share and peak RSS,
and the ratios negtune/trainer.

    OMP_NUM_THREADS=2 python benchmarks/bench_train.py [--steps 5 --batch 8]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

WORDS = ("the quick brown fox jumps over the lazy dog water flowed man turned faucet red green blue cat "
         "question answer correct incorrect capital france paris apple fruit").split()


def tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator([" ".join(WORDS)] * 4, trainer=trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<pad>", "<unk>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    bos = tok.token_to_id("</s>")
    tok.post_processor = processors.TemplateProcessing(single="</s> $A", special_tokens=[("</s>", bos)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="</s>", eos_token="</s>", pad_token="<pad>",
                                   unk_token="<unk>")


def make_assets(root: Path, args) -> None:
    import torch
    from transformers import OPTConfig, OPTForCausalLM

    tok = tokenizer()
    torch.manual_seed(0)
    model = OPTForCausalLM(OPTConfig(pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                                     eos_token_id=tok.eos_token_id))
    model.save_pretrained(root / "model")
    tok.save_pretrained(root / "model")
    rng = random.Random(0)
    from negtune.data.instances import Instance

    with open(root / "instances.jsonl", "w") as fh:
        for i in range(args.steps * args.batch):
            n = rng.randint(args.min_len, args.max_len)
            prompt = " ".join(rng.choice(WORDS) for _ in range(n))[: n * 4]
            opts = (" " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 4))), " no")
            fh.write(json.dumps(Instance("bench", str(i), "negated", prompt, opts, 0, (0,)).to_json()) + "\n")


def load_rows(root: Path):
    from negtune.data.build import load_instances
    from negtune.data.collate import encode_option
    from negtune.models import load_tokenizer

    tok = load_tokenizer(str(root / "model"))
    rows = []
    for inst in load_instances(root / "instances.jsonl"):
        enc = encode_option(tok, inst.prompt, inst.options[inst.target], 512)
        rows.append((list(enc.ids), enc.n_prompt))
    return tok, rows


def cpu_seconds() -> float:
    """CPU time of this process (all threads): steadier than wall time on a shared machine."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def run_negtune(root: Path, args) -> dict:
    from negtune.config import recipe_from_dict
    from negtune.data.build import load_instances
    from negtune.training.checks import check_recipe
    from negtune.training.trainer import Trainer

    recipe = recipe_from_dict({
        "output_dir": str(root / "run-negtune"), "model": {"name_or_path": str(root / "model"), "max_length": 512},
        "data": {"tasks": ["copa"], "variants": ["negated"]},
        "train": {"lr": 1e-3, "epochs": 1, "per_device_batch_size": args.batch, "trackers": [],
                  "log_every_steps": 1000, "max_grad_norm": 1.0},
    }, "bench")
    # The rows are built already, and only the steps are timed: hand them over, save nothing.
    tr = Trainer(check_recipe(recipe, None, 1), instances=load_instances(root / "instances.jsonl"), save=False)
    tr.setup()
    real = sum(tr.examples.lengths)
    b = [tr.sampler.micro_batches(g, 0)[0] for g in tr.sampler.steps(0)]
    slots = sum(max(tr.examples.lengths[i] for i in mb) * len(mb) for mb in b)
    t0, c0 = time.perf_counter(), cpu_seconds()
    tr.train()
    return {"seconds": time.perf_counter() - t0, "cpu_seconds": cpu_seconds() - c0, "real_tokens": real,
            "slots": slots, "steps": tr.step}


def run_trainer(root: Path, args, dynamic: bool) -> dict:
    import torch
    from transformers import (AutoModelForCausalLM, DataCollatorForSeq2Seq, Trainer, TrainingArguments,
                              default_data_collator)

    tok, rows = load_rows(root)
    longest = max(len(ids) for ids, _ in rows)
    data = []
    for ids, n_prompt in rows:
        pad = 0 if dynamic else longest - len(ids)
        data.append({"input_ids": ids + [tok.pad_token_id] * pad, "attention_mask": [1] * len(ids) + [0] * pad,
                     "labels": [-100] * n_prompt + ids[n_prompt:] + [-100] * pad})
    model = AutoModelForCausalLM.from_pretrained(str(root / "model"), dtype=torch.float32)
    targs = TrainingArguments(output_dir=str(root / "run-trainer"), per_device_train_batch_size=args.batch,
                              num_train_epochs=1, learning_rate=1e-3, lr_scheduler_type="constant",
                              max_grad_norm=1.0, weight_decay=0.0, save_strategy="no", report_to=[],
                              logging_strategy="no", disable_tqdm=True, use_cpu=True, dataloader_num_workers=0,
                              train_sampling_strategy="group_by_length" if dynamic else "random", seed=0)
    collator = DataCollatorForSeq2Seq(tok, padding=True, label_pad_token_id=-100) if dynamic \
        else default_data_collator
    trainer = Trainer(model=model, args=targs, train_dataset=data, data_collator=collator)
    t0, c0 = time.perf_counter(), cpu_seconds()
    out = trainer.train()
    seconds, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    real = sum(len(ids) for ids, _ in rows)
    slots = len(rows) * longest if not dynamic else None
    return {"seconds": seconds, "cpu_seconds": cpu, "real_tokens": real, "slots": slots, "steps": out.global_step}


def child(variant: str, root: Path, args) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if variant == "negtune":
        res = run_negtune(root, args)
    else:
        res = run_trainer(root, args, dynamic=variant == "trainer-dynamic")
    res["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    res["variant"] = variant
    print("RESULT " + json.dumps(res))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--min-len", type=int, default=8)
    p.add_argument("--max-len", type=int, default=64)
    p.add_argument("--with-dynamic", action="store_true", help="also run Trainer with group_by_length + dynamic padding")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--root", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args.child, Path(args.root), args)
        return 0
    import torch

    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, steps {args.steps} x batch {args.batch}, "
          f"prompt words {args.min_len}..{args.max_len}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_assets(root, args)
        variants = ["negtune", "trainer"] + (["trainer-dynamic"] if args.with_dynamic else [])
        results = {}
        for v in variants:
            cmd = [sys.executable, __file__, "--child", v, "--root", str(root), "--steps", str(args.steps),
                   "--batch", str(args.batch), "--min-len", str(args.min_len), "--max-len", str(args.max_len)]
            proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, HF_HUB_OFFLINE="1"))
            line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
            if proc.returncode or not line:
                print(proc.stdout[-2000:], proc.stderr[-4000:], file=sys.stderr)
                return 1
            results[v] = json.loads(line[0][7:])
    print(f"{'variant':<16} {'steps':>5} {'real tokens':>11} {'padding':>8} {'wall s':>7} {'tokens/s':>9} "
          f"{'CPU s':>7} {'tokens/CPU-s':>12} {'peak RSS MB':>11}")
    for v, r in results.items():
        pad = f"{1 - r['real_tokens'] / r['slots']:.1%}" if r.get("slots") else "dynamic"
        print(f"{v:<16} {r['steps']:>5} {r['real_tokens']:>11} {pad:>8} {r['seconds']:>7.1f} "
              f"{r['real_tokens'] / r['seconds']:>9.1f} {r['cpu_seconds']:>7.1f} "
              f"{r['real_tokens'] / r['cpu_seconds']:>12.1f} {r['peak_rss_mb']:>11.0f}")
    n, t = results["negtune"], results["trainer"]
    for name in [v for v in results if v != "negtune"]:
        t = results[name]
        print(f"negtune / {name}: tokens/s x{t['seconds'] / n['seconds']:.2f}, "
              f"tokens/CPU-s x{t['cpu_seconds'] / n['cpu_seconds']:.2f}, peak RSS x{n['peak_rss_mb'] / t['peak_rss_mb']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
