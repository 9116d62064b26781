"""The findings of docs/results.md, regenerated: engine idle time per attention variant, and balanced against naive.

    python benchmarks/findings.py [--layers N]

1. On gaudi1, one training step of GPT-2-small blocks (no embeddings) per attention variant: how busy the matrix
   engine and the vector cores are over the whole step and while the attention forward passes run (naive).
2. The GFormer-style presets under naive and balanced on gaudi1, gaudi2, gaudi3 and a hypothetical gaudi1 with
   8x stronger vector cores (examples/gaudi1-strong-tpc.toml).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import accelsim
from accelsim.compare import compare
from accelsim.lowering import lower
from accelsim.report import table
from accelsim.workload import load_workload

STRONG = Path(__file__).resolve().parent.parent / "examples" / "gaudi1-strong-tpc.toml"


def busy_within(r: accelsim.Results, prefix: str) -> dict[str, float]:
    """Per kind, the busy fraction of its engines while the tasks whose group starts with ``prefix`` (e.g. one
    layer's attention) run: from the first of them starting to the last ending, per group, summed."""
    import numpy as np

    groups: dict[str, list[int]] = {}
    for i, t in enumerate(r.graph.tasks):
        if t.group.endswith(prefix):
            groups.setdefault(t.group, []).append(i)
    kinds = [r.chip.groups[g].kind for g in r.chip.instance_group]
    busy: dict[str, float] = {}
    span: dict[str, float] = {}
    for members in groups.values():
        lo, hi = int(r.start[members].min()), int(r.end[members].max())
        for e, kind in enumerate(kinds):
            iv = r.busy_intervals(e)
            overlap = np.clip(np.minimum(iv[:, 1], hi) - np.maximum(iv[:, 0], lo), 0, None).sum() if len(iv) else 0
            busy[kind] = busy.get(kind, 0) + float(overlap)
            span[kind] = span.get(kind, 0) + (hi - lo)
    return {k: busy[k] / span[k] for k in busy if span[k]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", type=int, default=4)
    args = ap.parse_args()
    chip = accelsim.load_chip("gaudi1")
    rows: list[tuple[str, ...]] = []
    for variant in ("softmax", "window", "linear", "hybrid"):
        wl = load_workload(
            "gpt2-small",
            [f"variant={variant}", "mode=training", "embeddings=false", f"layers={args.layers}", "batch_split=4"],
        )
        r = compare(chip, lower(wl), ["naive"]).results[0]
        util = r.utilization()
        attn = busy_within(r, ".attn.fwd")
        rows.append(
            (
                variant,
                f"{r.latency_us / 1e3:.2f}",
                f"{util['matrix']:.0%}",
                f"{util['vector']:.0%}",
                f"{attn['matrix']:.0%}",
                f"{attn['vector']:.0%}",
            )
        )
    print(f"gaudi1, GPT-2-small blocks x {args.layers}, training step, naive scheduler")
    print(
        table(
            ["attention", "latency ms", "MME busy", "TPC busy", "MME busy in attention", "TPC busy in attention"], rows
        )
    )
    print()
    rows = []
    for chip_name in ("gaudi1", "gaudi2", "gaudi3", str(STRONG)):
        c = accelsim.load_chip(chip_name)
        for preset in ("gformer-gpt", "gformer-vit"):
            cmp = compare(c, lower(load_workload(preset, [f"layers={args.layers}"])), ["naive", "balanced"])
            naive, bal = cmp.results
            split = bal.notes["split"]
            assert isinstance(split, dict), "the balanced scheduler notes its split"
            rows.append(
                (
                    c.name,
                    preset,
                    f"{naive.latency_us / 1e3:.2f}",
                    f"{bal.latency_us / 1e3:.2f}",
                    f"{naive.latency_cycles / bal.latency_cycles:.2f}x",
                    f"{naive.utilization()['vector']:.0%} -> {bal.utilization()['vector']:.0%}",
                    f"{split['fraction_to_vector']:g}",
                    f"{bal.latency_cycles / cmp.bound.cycles - 1:+.1%}",
                )
            )
    print(f"GFormer-style presets ({args.layers} layers), naive against balanced")
    print(
        table(
            ["chip", "workload", "naive ms", "balanced ms", "speedup", "TPC busy", "split to TPC", "balanced vs bound"],
            rows,
        )
    )


if __name__ == "__main__":
    main()
