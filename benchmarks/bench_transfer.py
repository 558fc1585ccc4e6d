"""What the demo's transfer evaluation costs: scoring the held-out paper sets (COPA 100,
PIQA 300, ARC-Easy 300, original + negated) against scoring the demo test set (98 items,
original + negated), side by side on the same model in one process, interleaved.

    python benchmarks/bench_transfer.py [--model smollm2-135m-instruct] [--paper-eval DIR] [--repeats 2]

Prints wall-clock and process CPU seconds per set (best of the repeats, so other jobs on the
machine disturb it less; on a shared machine the CPU-time ratio is the steadier one) and the
ratio transfer / demo: the demo evaluates three stages (base, ce, mitigation), so the
transfer adds about 3 x ratio x (one in-distribution evaluation) to the demo's time. Also
prints the share of the evaluation spent on the intervals (bootstrap) in compute_metrics.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--paper-eval", default=str(REPO.parent / "shared" / "paper_eval"))
    p.add_argument("--repeats", type=int, default=2)
    opts = p.parse_args()

    import torch

    from negtune.config import load_recipe
    from negtune.demo import TRANSFER_SETS
    from negtune.evaluation.metrics import compute_metrics
    from negtune.evaluation.scoring import score_instances
    from negtune.evaluation.sets import build_eval_sets, load_csv_set
    from negtune.models import load_for_eval

    recipe = load_recipe(REPO / "recipes" / "demo.yaml", [f"eval.files.demo={REPO / 'data/demo/test.jsonl'}"])
    demo = build_eval_sets(recipe)
    where = Path(opts.paper_eval)
    transfer = [i for name, (o, n) in TRANSFER_SETS.items()
                for i in load_csv_set(name, {"original": str(where / o), "negated": str(where / n)})]
    model, tok = load_for_eval(opts.model, dtype="float32")
    sets = {"demo": demo, "transfer": transfer}
    wall = {k: float("inf") for k in sets}
    cpu = {k: float("inf") for k in sets}
    metrics_s = {k: float("inf") for k in sets}
    for _ in range(opts.repeats):
        for name, insts in sets.items():
            t0, c0 = time.perf_counter(), time.process_time()
            with torch.inference_mode():
                scores = score_instances(model, tok, insts, batch_size=recipe.eval.batch_size,
                                         max_length=recipe.model.max_length, progress=False)
            t1 = time.perf_counter()
            compute_metrics(insts, scores)
            t2, c2 = time.perf_counter(), time.process_time()
            wall[name], cpu[name] = min(wall[name], t2 - t0), min(cpu[name], c2 - c0)
            metrics_s[name] = min(metrics_s[name], t2 - t1)
    for name, insts in sets.items():
        print(f"{name:<9} {len(insts):>5} instances {sum(len(i.options) for i in insts):>5} options  "
              f"wall {wall[name]:6.1f} s  cpu {cpu[name]:6.1f} s  (of which metrics + intervals {metrics_s[name]:.2f} s)")
    print(f"transfer / demo: x{wall['transfer'] / wall['demo']:.1f} wall, x{cpu['transfer'] / cpu['demo']:.1f} cpu "
          f"per evaluated stage")


if __name__ == "__main__":
    main()
