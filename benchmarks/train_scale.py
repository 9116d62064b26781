"""A GPT-3 175B training step on 1,024 Gaudi 2 cards (systems/hls-gaudi2: TP8 PP8 DP16, micro-batch 2, global batch
2048, seq 2048) predicted by ``accelsim train``, and how long the prediction takes; the issue's target is under
60 s. Megatron-DeepSpeed's usual settings for that size: selective recomputation, sequence parallelism, ZeRO-1.
One command: ``python benchmarks/train_scale.py [--json]``."""

from __future__ import annotations

import argparse
import json
import time

from accelsim.parallel import Layout
from accelsim.report import table
from accelsim.system import load_system
from accelsim.training import TrainOptions, train_step

GPT3 = {"family": "gpt", "layers": 96, "d_model": 12288, "heads": 96, "vocab": 50257}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    system = load_system("hls-gaudi2")
    rows = []
    for dtype in ("bf16", "fp8"):
        options = TrainOptions(2048, 2, 2048, dtype=dtype, zero=1, recompute="selective", sequence_parallel=True)
        start = time.perf_counter()
        step = train_step(system, Layout(8, 8, 16), {"name": "gpt3-175b", "model": GPT3}, "gpt3-175b", options)
        seconds = time.perf_counter() - start
        rows.append(
            {
                "layout": "tp=8,pp=8,dp=16",
                "dtype": dtype,
                "seconds": round(seconds, 2),
                "step_s": round(step.step_ms / 1e3, 3),
                "tokens_per_s": round(step.tokens_per_s),
                "mfu": round(step.mfu, 4),
                "bubble": round(step.bubble, 4),
                "memory_gb": round(step.memory.total / 1e9, 1),
            }
        )
    if args.json:
        print(json.dumps(rows))
        return
    print(
        table(
            ["cards", "layout", "dtype", "seconds", "step s", "tokens/s", "MFU", "bubble", "GB/card"],
            [
                (
                    1024,
                    r["layout"],
                    r["dtype"],
                    f"{r['seconds']:.2f}",
                    f"{r['step_s']:.3f}",
                    f"{r['tokens_per_s']:,}",
                    f"{r['mfu']:.1%}",
                    f"{r['bubble']:.1%}",
                    f"{r['memory_gb']:.1f}",
                )
                for r in rows
            ],
        )
    )


if __name__ == "__main__":
    main()
