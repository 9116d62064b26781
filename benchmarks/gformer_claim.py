"""GFormer's published claim against the simulator: GFormer-style training on a first-generation Gaudi against
vanilla (softmax-attention) transformers on a V100. Published: 1.5x for GPT, 1.2x for ViT.

    python benchmarks/gformer_claim.py [--layers N]

Gaudi 1 runs the GFormer presets (hybrid attention, tile granularity, balanced scheduler). The V100 runs the same
models with softmax attention, in FP16 (it has no BF16 tensor cores), lowered one kernel per op (op granularity:
eager PyTorch), under the naive scheduler (one stream).
"""

from __future__ import annotations

import argparse

import accelsim
from accelsim.lowering import lower
from accelsim.report import table
from accelsim.workload import load_workload

PUBLISHED = {"gformer-gpt": 1.5, "gformer-vit": 1.2}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", type=int, help="override the presets' layer count")
    args = ap.parse_args()
    extra = [f"layers={args.layers}"] if args.layers else []
    rows = []
    for preset, published in PUBLISHED.items():
        gaudi = accelsim.run("gaudi1", lower(load_workload(preset, extra)), "balanced")
        vanilla = lower(load_workload(preset, [*extra, "variant=softmax", "dtype=fp16", "granularity=op"]))
        v100 = accelsim.run("v100", vanilla, "naive")
        rows.append((preset, f"{gaudi.latency_us / 1e3:.1f}", f"{v100.latency_us / 1e3:.1f}",
                     f"{v100.latency_us / gaudi.latency_us:.2f}x", f"{published}x"))
    print(table(["workload", "gaudi1 GFormer ms", "v100 vanilla ms", "simulated speedup", "published"], rows))


if __name__ == "__main__":
    main()
