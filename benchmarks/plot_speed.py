"""Plotting speed on a large chip: gaudi3 (64 vector cores) and a workload of thousands of tasks.

python benchmarks/plot_speed.py [--workload gformer-vit] [--layers 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import accelsim
from accelsim import plots
from accelsim.lowering import lower
from accelsim.workload import load_workload


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workload", default="gformer-vit")
    ap.add_argument("--layers", type=int, default=2)
    args = ap.parse_args()
    graph = lower(load_workload(args.workload, [f"layers={args.layers}"]))
    results = accelsim.run("gaudi3", graph, "heft")
    out = tempfile.mkdtemp()
    print(f"{'figure':24s} {'seconds':>8s}   ({len(results.graph):,} tasks on gaudi3 after its compiler, PNG + SVG)")
    for name, make in (
        ("timeline", lambda: plots.timeline(results)),
        ("idle", lambda: plots.idle_chart([results])),
        ("utilization over time", lambda: plots.utilization_over_time(results)),
    ):
        t = time.perf_counter()
        plots.save(make(), out, name.replace(" ", "_"))
        print(f"{name:24s} {time.perf_counter() - t:8.2f}")


if __name__ == "__main__":
    main()
