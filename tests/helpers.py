"""Helpers shared by the tests: tiny models built offline, toy data, a fixed-logits model.

Why one module: nothing can be downloaded at test time, so every test that needs a model or
a tokenizer builds the same tiny ones here (an OPT-like byte-level BPE with ``</s>`` as BOS,
trained in-process on a fixed corpus, so the tokenization conventions under test are the
real ones). The paper's released CSVs are third-party: tests read them from
``../shared/paper_eval`` and never copy them into the repository.
"""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Optional

import torch

from negtune.data.instances import Instance

REPO = Path(__file__).resolve().parents[1]
PAPER_EVAL_CANDIDATES = [REPO.parent / "shared" / "paper_eval", Path("/work/shared/paper_eval")]


def find_paper_eval() -> Optional[Path]:
    return next((c for c in PAPER_EVAL_CANDIDATES if c.is_dir()), None)


_CORPUS = [
    "Generate the correct answer to the following question. Question: What is the capital of France? Answer is Paris",
    "Generate the incorrect answer to the following question. Question: Which is a fruit? Answer is apple",
    "Complete the sentence with the appropriate ending. The man turned on the faucet.  so... Water flowed.",
    "The goal is to predict a correct English answer string for an input English question.\nQuestion: who\nAnswer:",
    "the quick brown fox jumps over the lazy dog . a b c d e f g h i j k l m n o p q r s t u v w x y z",
    "0 1 2 3 4 5 6 7 8 9 10 twenty hundred red green blue yellow black white cat dog cats dogs",
]


def build_tiny_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<pad>", "<unk>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    bos = tok.token_to_id("</s>")
    tok.post_processor = processors.TemplateProcessing(
        single="</s> $A", pair="</s> $A $B", special_tokens=[("</s>", bos)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="</s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
    )


def build_tiny_opt(path: Path, seed: int = 0, hidden: int = 32, layers: int = 2) -> Path:
    import torch
    from transformers import OPTConfig, OPTForCausalLM

    tokenizer = build_tiny_tokenizer()
    torch.manual_seed(seed)
    config = OPTConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        ffn_dim=hidden * 2,
        max_position_embeddings=512,
        word_embed_proj_dim=hidden,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        dropout=0.0,
        attention_dropout=0.0,
    )
    model = OPTForCausalLM(config)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path



class FixedLogits(torch.nn.Module):
    """A 'model' whose logits are looked up by token id: logits[b, t] = table[input_ids[b, t]].

    Making the prediction a function of the current token keeps hand computations small.
    """

    def __init__(self, table):
        super().__init__()
        self.table = torch.nn.Parameter(torch.as_tensor(table, dtype=torch.float32))

    def forward(self, input_ids, attention_mask=None, **_):
        return SimpleNamespace(logits=self.table[input_ids])


def toy_instances() -> list[Instance]:
    """Two items under original and negated prompts (2 and 4 options)."""
    out = []
    items = [
        ("q1", "Question: Which is a fruit? Answer is", (" apple", " dog"), 0),
        ("q2", "Question: What is the capital of France? Answer is", (" Paris", " red", " cat", " blue"), 0),
    ]
    for sid, q, opts, correct in items:
        out.append(Instance("demo", sid, "original", "Generate the correct answer. " + q, opts, correct, (correct,)))
        wrong = tuple(i for i in range(len(opts)) if i != correct)
        out.append(Instance("demo", sid, "negated", "Generate the incorrect answer. " + q, opts, wrong[0], wrong))
    return out


def train_steps(spec, model_dir, needs, steps=20, lr=3e-3, reference=False):
    """Train a tiny OPT with ``spec`` for ``steps`` full-batch steps; return the loss values."""
    import copy

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from negtune.data.collate import Collator, TrainExamples
    from negtune.losses import LossContext

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    ds = TrainExamples(toy_instances(), needs, tok, max_length=64)
    batch = Collator(tok, needs, 64)([ds[i] for i in range(len(ds))])
    ref_fn = None
    if reference:
        ref = copy.deepcopy(model).eval()

        def ref_fn(ids, mask):
            with torch.no_grad():
                return ref(input_ids=ids, attention_mask=mask).logits

    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    losses = []
    for step in range(steps):
        out = spec(model, batch, LossContext(reference_logits=ref_fn, step=step))
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(float(out.loss.detach()))
    return losses


def write_trainer_state(checkpoint: Path, step: int, kind: str, base_model: str, **extra) -> None:
    """A complete ``trainer_state.json`` for a hand-made checkpoint directory."""
    from negtune.training.state import DataPosition, TrainerState

    fields = dict(step=step, epoch=float(step), kind=kind, base_model=base_model,
                  data_position=DataPosition(step, 0), total_steps=step, steps_per_epoch=1, global_batch=1,
                  processes=1, recipe_sha256="0" * 64, recipe_sha256_train="0" * 64, loss="ce")
    fields.update(extra)
    TrainerState(**fields).write(checkpoint)


def metrics_json(instances, scores) -> dict:
    """``compute_metrics`` as the results file holds it: {"tasks": {...}, "summary": {...}}."""
    from negtune.evaluation.metrics import compute_metrics

    tasks, summary = compute_metrics(instances, scores)
    return {"tasks": {name: t.to_json() for name, t in tasks.items()}, "summary": summary.to_json()}


def outcome_results(orig_right, neg_right, *, task="t", prompt="Q", **info):
    """A ``Results`` of a 2-option task whose picks give the wanted per-item outcomes (gold
    ' yes' under the original prompt, ' no' under the negated one), through ``compute_metrics``:
    intervals and item records are the evaluator's own. ``info``: run, checkpoint, loss, ..."""
    from negtune.evaluation.metrics import compute_metrics
    from negtune.evaluation.scoring import OptionScore
    from negtune.results import Results

    opts = (" yes", " no")
    insts, scores = [], []
    for i, (o, g) in enumerate(zip(orig_right, neg_right)):
        insts.append(Instance(task, f"{i:03d}", "original", f"{prompt} correct {i}", opts, 0, (0,)))
        scores.append([OptionScore(-1.0 if o else -2.0, 1), OptionScore(-2.0 if o else -1.0, 1)])
        insts.append(Instance(task, f"{i:03d}", "negated", f"{prompt} incorrect {i}", opts, 1, (1,)))
        scores.append([OptionScore(-2.0 if g else -1.0, 1), OptionScore(-1.0 if g else -2.0, 1)])
    tasks, summary = compute_metrics(insts, scores)
    info.setdefault("model", "m")
    info.setdefault("label", info.get("checkpoint"))
    return Results(tasks=tasks, summary=summary, **info)


# --------------------------------------------------------------------------- two gloo processes

PORT_TAKEN = ("EADDRINUSE", "address already in use", "Address already in use")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_two_processes(args: list[str], env: dict, timeout: int = 600, attempts: int = 3):
    """``accelerate launch`` with ``launch/cpu_2proc.yaml`` (2 gloo processes) on a fresh port.

    Why a helper: a port found free can be taken before the rendezvous binds it (the kernel
    hands the same ephemeral ports to outgoing connections), which fails the launch for a
    reason that is not the code's. Only that failure is retried, on a new port; any other
    failure is returned as it is, for the test to report.
    """
    import subprocess

    bin_dir = Path(__import__("sys").executable).parent
    for _ in range(attempts):
        cmd = [str(bin_dir / "accelerate"), "launch", "--config_file", str(REPO / "launch" / "cpu_2proc.yaml"),
               "--main_process_port", str(free_port()), *args]
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=timeout)
        if p.returncode == 0 or not any(mark in p.stderr for mark in PORT_TAKEN):
            return p
    return p


def failure(p) -> str:
    """What a failed subprocess said: its error lines first (a torch elastic failure puts them
    far above the tail), then the tail of stderr."""
    errors = [line for line in p.stderr.splitlines() if "Error" in line or "error:" in line]
    return "\n".join(errors[-15:]) + "\n--- stderr tail ---\n" + p.stderr[-1500:]
