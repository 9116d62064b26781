"""GFormer's three published statements, side by side with the simulator's answers (blind checks: nothing in the
model was tuned to them).

    python benchmarks/gformer_claim.py [--layers N]

1. Windowed attention leaves the MME idle and linear attention leaves the TPCs idle (on Gaudi): how busy each kind
   is while the attention forward passes run, GPT-2-small training blocks on gaudi1, naive scheduler.
2. GFormer is about 2x faster than a vanilla (softmax-attention) transformer on Gaudi: the GFormer presets
   (hybrid attention) against the same models with softmax attention, both on gaudi1 under balanced.
3. On a Gaudi 1, GFormer trains GPT-style models 1.5x and ViT 1.2x faster than a V100 runs the vanilla models:
   the V100 runs softmax attention in FP16 (no BF16 tensor cores), one kernel per op as eager PyTorch does, one
   stream (naive). Every graph goes through its chip's compiler.
"""

from __future__ import annotations

import argparse

import accelsim
from accelsim.compare import compare
from accelsim.lowering import lower
from accelsim.report import table
from accelsim.workload import load_workload

PUBLISHED_VS_V100 = {"gformer-gpt": 1.5, "gformer-vit": 1.2}


def attention_busy(variant: str, layers: int) -> dict[str, float]:
    """Per kind, the busy share of its engines while the attention forward passes run (gaudi1, naive)."""
    from findings import busy_within  # the same measure as the findings table (docs/results.md)

    wl = load_workload("gpt2-small", [f"variant={variant}", "mode=training", "embeddings=false", f"layers={layers}"])
    return busy_within(compare(accelsim.load_chip("gaudi1"), lower(wl), ["naive"]).results[0], ".attn.fwd")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", type=int, help="override the presets' layer count")
    args = ap.parse_args()
    extra = [f"layers={args.layers}"] if args.layers else []
    window = attention_busy("window", args.layers or 4)
    linear = attention_busy("linear", args.layers or 4)
    rows = [
        (
            "1. window attention leaves the MME idle",
            "MME idle",
            f"MME {window['matrix']:.0%} busy, TPC {window['vector']:.0%}",
        ),
        (
            "1. linear attention leaves the TPCs idle",
            "TPC idle",
            f"MME {linear['matrix']:.0%} busy, TPC {linear['vector']:.0%}",
        ),
    ]
    for preset in PUBLISHED_VS_V100:
        gformer = accelsim.run("gaudi1", lower(load_workload(preset, extra)), "balanced")
        vanilla_gaudi = accelsim.run("gaudi1", lower(load_workload(preset, [*extra, "variant=softmax"])), "balanced")
        rows.append(
            (
                f"2. {preset} against vanilla, both on gaudi1",
                "about 2x",
                f"{vanilla_gaudi.latency_us / gformer.latency_us:.2f}x ({vanilla_gaudi.latency_us / 1e3:.1f} "
                f"against {gformer.latency_us / 1e3:.1f} ms)",
            )
        )
    for preset, published in PUBLISHED_VS_V100.items():
        gformer = accelsim.run("gaudi1", lower(load_workload(preset, extra)), "balanced")
        vanilla = lower(load_workload(preset, [*extra, "variant=softmax", "dtype=fp16"]))
        v100 = accelsim.run("v100", vanilla, "naive")
        rows.append(
            (
                f"3. {preset}: gaudi1 GFormer against v100 vanilla",
                f"{published}x",
                f"{v100.latency_us / gformer.latency_us:.2f}x ({v100.latency_us / 1e3:.1f} against "
                f"{gformer.latency_us / 1e3:.1f} ms)",
            )
        )
    print(table(["statement", "published", "simulated"], rows))


if __name__ == "__main__":
    main()
