"""Few-shot scoring at k demonstrations: one fixed demonstration set per task (its prefix run
once, key/value cache reused) against a new set per item, measured side by side.

    python benchmarks/bench_fewshot.py [--paper-dir DIR] [--sets piqa_generate_300,super_glue_generate_100]
                                       [--limit 12] [--k 8] [--batch-size 16] [--layers 12] [--repeats 1]

Model: OPT-125m-shaped (hidden 768, 12 layers, 12 heads, FFN 3072) with random weights built
from ``OPTConfig`` (no download); tokenizer: the offline SmolLM2 tokenizer when available, else
the tiny test tokenizer. Data: original+negated paper CSVs, first ``--limit`` items of each;
demonstrations drawn from the same files (``source: eval``, the evaluated item excluded).

Runs, in the same process one after the other:

* ``per_item``: a new set of k demonstrations for every item (the baseline);
* ``fixed, no reuse``: one set per task, but the shared prefix run again in every batch
  (``share_prefix=False``): the same prompts as ``fixed``, scored the per-item way;
* ``fixed``: one set per task, the prefix run once per (task, variant) and reused.

Reported: seconds and the speed-up of each against ``per_item``, tokens fed to the model
(counted by a wrapper), and max |delta loglik| of ``fixed`` against ``fixed, no reuse`` (the
same prompts, so this is the exactness of the prefix reuse). Not a test: run it by hand.
"""
from __future__ import annotations

import argparse
import inspect
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_scoring import find_paper_dir, load_tokenizer, negated_file, opt125m_shaped  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--paper-dir")
    ap.add_argument("--sets", default="piqa_generate_300,super_glue_generate_100")
    ap.add_argument("--limit", type=int, default=12, help="items per file")
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--repeats", type=int, default=1, help="interleaved repeats; the fastest of each is kept")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")))
    args = ap.parse_args()

    import torch

    from negtune.config import FewshotConfig
    from negtune.evaluation.fewshot import add_fewshot
    from negtune.evaluation.scoring import score_instances
    from negtune.evaluation.csv_sets import load_csv_set

    torch.set_num_threads(args.threads)
    paper = find_paper_dir(args.paper_dir)
    instances, pools = [], []
    for stem in args.sets.split(","):
        files = {"original": str(paper / f"{stem}.csv"), "negated": str(negated_file(paper, stem))}
        instances += load_csv_set(stem, files, limit=args.limit)
        pools += load_csv_set(stem, files)
    tok, tok_name = load_tokenizer()
    model = opt125m_shaped(tok, args.layers)
    fed = {"tokens": 0}
    inner_forward = model.forward

    def counting_forward(*a, **kw):
        fed["tokens"] += kw["input_ids"].numel()
        return inner_forward(*a, **kw)

    counting_forward.__signature__ = inspect.signature(inner_forward)  # the scorer still sees logits_to_keep
    model.forward = counting_forward  # counts the tokens every pass feeds
    print(f"model: OPT-shaped, {sum(p.numel() for p in model.parameters()) / 1e6:.0f}M params, random weights; "
          f"tokenizer: {tok_name}; threads: {args.threads}")
    print(f"data: {len(instances)} instances ({args.limit} items/file from {args.sets}), "
          f"{sum(len(i.options) for i in instances)} options, k = {args.k} demonstrations (source: eval)")
    runs: dict[str, tuple[float, int, list]] = {}
    configs = (("per_item", "per_item", True), ("fixed, no reuse", "fixed", False), ("fixed", "fixed", True))
    for rep in range(args.repeats):  # interleaved, best of N: a busy machine slows every configuration alike
        for name, sampling, share in configs:
            shots = add_fewshot(instances, FewshotConfig(k=args.k, sampling=sampling, source="eval"),
                                pool_instances=pools)
            fed["tokens"] = 0
            start = time.perf_counter()
            scores = score_instances(model, tok, shots, batch_size=args.batch_size, progress=False,
                                     share_prefix=share, max_length=2048)
            sec = time.perf_counter() - start
            if name not in runs or sec < runs[name][0]:
                runs[name] = (sec, fed["tokens"], scores)
    for name, _, _ in configs:
        sec, tokens, scores = runs[name]
        reduced = sum(s[0].n_demos < args.k for s in scores)
        print(f"{name:>16}: {sec:7.1f} s  {tokens:>8} tokens fed  {tokens / sec:7.0f} tokens/s"
              + (f"  ({reduced} items shown fewer than k)" if reduced else ""))
    base = runs["per_item"][0]
    for name in ("fixed, no reuse", "fixed"):
        print(f"{name} vs per_item: speed-up x{base / runs[name][0]:.2f}, "
              f"tokens fed x{runs[name][1] / runs['per_item'][1]:.2f}")
    diff = max(abs(a.loglik - b.loglik) for ra, rb in zip(runs["fixed"][2], runs["fixed, no reuse"][2])
               for a, b in zip(ra, rb))
    print(f"fixed (prefix reused) vs fixed, no reuse: max |delta loglik| {diff:.2e}")


if __name__ == "__main__":
    main()
