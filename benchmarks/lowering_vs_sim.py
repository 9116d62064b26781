"""Lowering against simulation: a full llama-7b-like training step at the finest granularity.

    python benchmarks/lowering_vs_sim.py [--workload llama-7b-like] [--chip gaudi2] [--layers N] [--json]

The lowering must not take longer than simulating what it produced. Lowering time includes building and
validating the TaskGraph; compile time is gaudi2's compiler (at tile granularity it fuses and plans SRAM but does
not cut again); simulation time includes the cost table, the first-free schedule and the simulation.
"""

from __future__ import annotations

import argparse
import json
import time

import accelsim
from accelsim.lowering import lower
from accelsim.workload import load_workload


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workload", default="llama-7b-like")
    ap.add_argument("--chip", default="gaudi2")
    ap.add_argument("--layers", type=int, help="override the layer count (default: the preset's)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    sets = ["mode=training", "granularity=tile"] + ([f"layers={args.layers}"] if args.layers else [])
    wl = load_workload(args.workload, sets)
    chip = accelsim.load_chip(args.chip)
    t0 = time.perf_counter()
    graph = lower(wl)
    t1 = time.perf_counter()
    compiled = accelsim.compile_graph(graph, chip).graph
    t2 = time.perf_counter()
    results = accelsim.run(chip, compiled)
    t3 = time.perf_counter()
    row = {
        "workload": wl.name,
        "chip": chip.name,
        "tasks": len(graph),
        "compiled_tasks": len(compiled),
        "edges": sum(len(t.deps) for t in graph.tasks),
        "lower_s": round(t1 - t0, 2),
        "compile_s": round(t2 - t1, 2),
        "simulate_s": round(t3 - t2, 2),
        "lower_over_simulate": round((t1 - t0) / (t3 - t2), 2),
        "latency_ms": round(results.latency_us / 1e3, 3),
    }
    if args.json:
        print(json.dumps(row))
    else:
        for k, v in row.items():
            print(f"{k:20s} {v}")


if __name__ == "__main__":
    main()
