"""``accelsim train --search`` over every layout and micro-batch of a 70B model (meta-llama/Llama-2-70b-hf from the
catalog) on 64 Gaudi 2 cards (systems/hls-gaudi2: 8 nodes), global batch 1024 of 4096 tokens, selective
recomputation, sequence parallelism and ZeRO-1; the issue's target is under 2 minutes. Prints the search's time
and its five fastest layouts. One command: ``python benchmarks/train_search.py [--json]``."""

from __future__ import annotations

import argparse
import json
import time

from accelsim.catalog import model_workload_data
from accelsim.report import table
from accelsim.system import load_system
from accelsim.training import TrainOptions, search


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    data, source = model_workload_data("meta-llama/Llama-2-70b-hf", [])
    options = TrainOptions(1024, 1, 4096, zero=1, recompute="selective", sequence_parallel=True)
    start = time.perf_counter()
    found = search(load_system("hls-gaudi2"), data, source, 64, options)
    seconds = time.perf_counter() - start
    best = [
        {
            "layout": f"tp={s.layout.tp},pp={s.layout.pp},dp={s.layout.dp}",
            "micro_batch": s.options.micro_batch,
            "step_s": round(s.step_ms / 1e3, 3),
            "mfu": round(s.mfu, 4),
        }
        for s in found.ranked[:5]
    ]
    summary = {
        "seconds": round(seconds, 1),
        "candidates": len(found.ranked) + len(found.refused),
        "ran": len(found.ranked),
        "refused": found.reasons(),
        "best": best,
    }
    if args.json:
        print(json.dumps(summary))
        return
    refused = ", ".join(f"{n} {why}" for why, n in summary["refused"].items())
    print(
        table(
            ["cards", "candidates", "simulated", "refused", "seconds"],
            [(64, summary["candidates"], summary["ran"], refused, f"{seconds:.1f}")],
        )
    )
    print()
    print(
        table(
            ["rank", "layout", "micro-batch", "step s", "MFU"],
            [
                (i, b["layout"], b["micro_batch"], f"{b['step_s']:.3f}", f"{b['mfu']:.1%}")
                for i, b in enumerate(best, 1)
            ],
        )
    )


if __name__ == "__main__":
    main()
