"""What keeping 4-bit weights in their training layout costs eval-mode forwards on the CPU.

    python benchmarks/bench_qlora_cpu.py [--features 2048] [--tokens 1024] [--reps 7]

negtune stops bitsandbytes from repacking QLoRA weights for its bf16 CPU inference kernel
(``negtune.qlora_cpu.keep_training_layout``): the repack breaks training afterwards and
makes a reference model differ from the policy. Eval-mode forwards (the ``kl_anchor``
reference, epoch-end evaluation) then run the fp32 dequantise path that training uses.

Two ``bnb.nn.Linear4bit`` layers with the same NF4 weights (features x features, double
quantisation, no bias), eval mode, no_grad, on ``--tokens`` rows: ``kept`` (negtune) and
``packed`` (bitsandbytes' default: repacked on the first call). Timed interleaved, median of
``--reps``; prints milliseconds, the ratio kept/packed, and how far the packed kernel's
output is from the fp32 path's. On a CPU without AVX512-BF16 both take the same path
(ratio ~1). Not a test: run it by hand.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def layer(weight, features: int):
    import bitsandbytes as bnb

    lin = bnb.nn.Linear4bit(features, features, bias=False, compute_dtype=weight.dtype, quant_type="nf4",
                            compress_statistics=True)
    lin.weight = bnb.nn.Params4bit(weight.clone(), requires_grad=False, quant_type="nf4", compress_statistics=True)
    lin = lin.to("cpu")
    if not lin.weight.bnb_quantized:
        lin.weight._quantize("cpu")
    return lin.eval()


def main() -> None:
    import torch

    from negtune.qlora_cpu import keep_training_layout

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--features", type=int, default=2048)
    ap.add_argument("--tokens", type=int, default=1024)
    ap.add_argument("--reps", type=int, default=7)
    args = ap.parse_args()
    torch.manual_seed(0)
    weight = torch.randn(args.features, args.features) * 0.02
    x = torch.randn(args.tokens, args.features)
    kept, packed = layer(weight, args.features), layer(weight, args.features)
    holder = torch.nn.Sequential(kept)
    keep_training_layout(holder)
    times: dict[str, list[float]] = {"kept": [], "packed": []}
    with torch.no_grad():
        y_kept, y_packed = kept(x), packed(x)  # the first call repacks `packed` (on AVX512-BF16 CPUs)
        for _ in range(args.reps):
            for name, lin in (("kept", kept), ("packed", packed)):
                t0 = time.perf_counter()
                lin(x)
                times[name].append(time.perf_counter() - t0)
    is_packed = bool(getattr(packed.weight.quant_state, "packing_format_for_cpu", False))
    ms = {k: 1e3 * statistics.median(v) for k, v in times.items()}
    print(f"{args.tokens} rows x {args.features}x{args.features} NF4, eval + no_grad, median of {args.reps}:")
    print(f"  kept (fp32 dequantise, negtune): {ms['kept']:8.1f} ms")
    print(f"  packed (bf16 kernel{'' if is_packed else ': NOT used on this CPU'}): {ms['packed']:8.1f} ms")
    print(f"  ratio kept/packed: {ms['kept'] / ms['packed']:.2f}")
    print(f"  max |y_packed - y_kept| = {(y_packed - y_kept).abs().max().item():.2e} "
          f"(max |y| {y_kept.abs().max().item():.2e})")


if __name__ == "__main__":
    main()
