"""Time the evaluator's scorer against a naive one-sequence-per-option scorer.

    python benchmarks/bench_scoring.py [--paper-dir DIR] [--sets piqa_generate_300,...] [--limit 8]
                                       [--batch-size 16] [--layers 12] [--methods kv,batched,plain]

Model: OPT-125m-shaped (hidden 768, 12 layers, 12 heads, FFN 3072) with random weights built
from ``OPTConfig`` (no download). Tokenizer: the offline SmolLM2 tokenizer when negtune can
materialise it (``smollm2-135m-instruct``, vocabulary 49k, close to OPT's 50k), else the tiny
test tokenizer. Data: original+negated paper CSVs, first ``--limit`` items of each file.

Reported: seconds and tokens/s per method, where "tokens" is the same workload for every
method (the sum over options of len(prompt)+len(option), i.e. what the naive scorer feeds), so
the ratio of tokens/s is the speed-up; and max |delta loglik| against the naive scorer.
Not a test: run it by hand, it takes a few minutes on two CPU cores.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_SETS = ("piqa_generate_300,super_glue_generate_100,ai2_arc_q_a_300,"
                "hellaswag_Open-ended_completion_300,triviaqa_correct_answer_300")


def find_paper_dir(given: str | None) -> Path:
    for cand in ([Path(given)] if given else []) + [REPO.parent / "shared" / "paper_eval",
                                                    Path("/work/shared/paper_eval")]:
        if cand.is_dir():
            return cand
    sys.exit("bench_scoring: paper CSV directory not found (use --paper-dir)")


def negated_file(d: Path, stem: str) -> Path:
    base, _, size = stem.rpartition("_")
    for cand in d.glob("*.csv"):
        if cand.stem.lower() == f"{base}_negation_{size}".lower():
            return cand
    sys.exit(f"bench_scoring: no negated file for {stem}")


def load_tokenizer():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        from negtune.models import load_tokenizer as lt

        return lt("smollm2-135m-instruct"), "smollm2-135m-instruct"
    except Exception as err:  # noqa: BLE001 - any failure: fall back to the test tokenizer
        print(f"(SmolLM2 tokenizer unavailable: {err}; using the tiny test tokenizer)", file=sys.stderr)
        sys.path.insert(0, str(REPO / "tests"))
        from conftest import build_tiny_tokenizer

        tok = build_tiny_tokenizer()
        return tok, "tiny test tokenizer"


def opt125m_shaped(tok, layers: int):
    """An OPT-125m-shaped model with random weights (seed 0), in eval mode: no download."""
    import torch
    from transformers import OPTConfig, OPTForCausalLM

    torch.manual_seed(0)
    cfg = OPTConfig(vocab_size=len(tok), hidden_size=768, num_hidden_layers=layers, num_attention_heads=12,
                    ffn_dim=3072, max_position_embeddings=2048, word_embed_proj_dim=768,
                    pad_token_id=tok.pad_token_id, dropout=0.0, attention_dropout=0.0)
    return OPTForCausalLM(cfg).eval()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--paper-dir")
    ap.add_argument("--sets", default=DEFAULT_SETS, help="original-file stems, comma-separated")
    ap.add_argument("--limit", type=int, default=8, help="items per file")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--methods", default="kv,batched,plain")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")))
    args = ap.parse_args()

    import torch

    from negtune.evaluation.scoring import encode_instances, score_instances
    from negtune.tokenization import model_max_length
    from negtune.evaluation.csv_sets import load_csv_set

    torch.set_num_threads(args.threads)
    paper = find_paper_dir(args.paper_dir)
    instances = []
    for stem in args.sets.split(","):
        o = paper / f"{stem}.csv"
        instances += load_csv_set(stem, {"original": str(o), "negated": str(negated_file(paper, stem))},
                                  limit=args.limit)
    tok, tok_name = load_tokenizer()
    model = opt125m_shaped(tok, args.layers)
    n_params = sum(p.numel() for p in model.parameters())
    enc = encode_instances(tok, instances, "joint", model_max_length(model, tok))
    work = sum(len(p) + len(o) for pairs in enc for p, o, _ in pairs)
    n_opt = sum(len(i.options) for i in instances)
    print(f"model: OPT-shaped, {n_params / 1e6:.0f}M params, random weights; tokenizer: {tok_name}; "
          f"threads: {args.threads}")
    print(f"data: {len(instances)} instances ({args.limit}/file from {args.sets}), {n_opt} options, "
          f"{work} prompt+option tokens")
    results = {}
    for method in args.methods.split(","):
        bs = 1 if method == "plain" else args.batch_size
        start = time.perf_counter()
        results[method] = score_instances(model, tok, instances, batch_size=bs, method=method, progress=False)
        sec = time.perf_counter() - start
        results[method + "_sec"] = sec
        print(f"{method:>8} (batch {bs:>2}): {sec:8.1f} s  {work / sec:9.0f} tokens/s")
    ref = "plain" if "plain" in results else args.methods.split(",")[-1]
    for method in args.methods.split(","):
        if method == ref:
            continue
        diff = max(abs(a.loglik - b.loglik) for ra, rb in zip(results[method], results[ref]) for a, b in zip(ra, rb))
        print(f"{method} vs {ref}: speed-up x{results[ref + '_sec'] / results[method + '_sec']:.2f}, "
              f"max |delta loglik| {diff:.2e}")


if __name__ == "__main__":
    main()
