"""What a user waits for: a training step of an 8B model on 1,024 cards (128 DGX H100 nodes, tp=8, dp=128), and
the same layout on fewer nodes. One card is simulated for all of them (the symmetric shortcut), so the time should
not grow with the cards; the issue's target is under 60 s on this machine.

    python benchmarks/system_scale.py [--json]
"""

from __future__ import annotations

import argparse
import json
import time

import accelsim
from accelsim.catalog import model_workload_data
from accelsim.lowering import lower
from accelsim.parallel import Layout
from accelsim.system import load_system
from accelsim.system_run import communication, place

MODEL = "meta-llama/Llama-3.1-8B"
SETTINGS = ["mode=training", "seq_len=2048", "batch=8", "recompute=selective"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    system = load_system("dgx-h100")
    rows = []
    for dp in (1, 16, 128):
        t0 = time.perf_counter()
        data, source = model_workload_data(MODEL, SETTINGS)
        placement = place(system, Layout(8, 1, dp), data, source, nodes=dp)
        results = accelsim.run(placement.chip, lower(placement.workload))
        c = communication(results)
        rows.append(
            {
                "cards": 8 * dp,
                "layout": f"tp=8,dp={dp}",
                "seconds": round(time.perf_counter() - t0, 2),
                "tasks": len(results.graph),
                "step_ms": c.step_ms,
                "exposed_ms": c.exposed_ms,
                "hidden_ms": c.hidden_ms,
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'cards':>6} {'layout':12} {'seconds':>8} {'tasks':>6} {'step ms':>9} {'exposed ms':>11} {'hidden ms':>10}")
    for r in rows:
        print(
            f"{r['cards']:>6} {r['layout']:12} {r['seconds']:>8.2f} {r['tasks']:>6} {r['step_ms']:>9.1f} "
            f"{r['exposed_ms']:>11.1f} {r['hidden_ms']:>10.1f}"
        )


if __name__ == "__main__":
    main()
