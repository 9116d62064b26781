"""Simulation throughput: tasks per second and peak memory, accelsim against a bare one-process-per-task SimPy loop.

    python benchmarks/sim_throughput.py --tasks 100000 [--json]

Both simulate the same random N-task graph on gaudi2. accelsim runs with everything on: the cost model
(CostTable), the scheduler, HBM bandwidth sharing and full recording. The baseline is SimPy written the obvious
way: one process per task that waits for its dependencies, requests an engine of its kind (a simpy.Resource) and
holds it for the task's precomputed uncontended duration, with no bandwidth model. Peak memory is measured with
tracemalloc in a fresh subprocess per measurement, so the two do not share a heap.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import tracemalloc


def run_accelsim(n: int, seed: int) -> dict[str, float]:
    import accelsim
    from accelsim.synthetic import random_graph

    chip = accelsim.load_chip("gaudi2")
    t0 = time.perf_counter()
    graph = random_graph(n, seed)
    t1 = time.perf_counter()
    costs = accelsim.CostTable.build(graph, chip)
    schedule = accelsim.get_scheduler("first-free").schedule(graph, chip, costs)
    t2 = time.perf_counter()
    results = accelsim.simulate(graph, chip, schedule, costs)
    results.summary()
    t3 = time.perf_counter()
    return {
        "build_s": t1 - t0,
        "schedule_s": t2 - t1,
        "simulate_s": t3 - t2,
        "tasks_per_s": n / (t3 - t1),
        "simulate_tasks_per_s": n / (t3 - t2),
        "latency_cycles": results.latency_cycles,
    }


def run_bare_simpy(n: int, seed: int) -> dict[str, float]:
    import simpy

    import accelsim
    from accelsim.synthetic import random_graph

    chip = accelsim.load_chip("gaudi2")
    graph = random_graph(n, seed)
    costs = accelsim.CostTable.build(graph, chip)
    kind_group = {g.kind: g.index for g in chip.groups}
    t0 = time.perf_counter()
    env = simpy.Environment()
    engines = {g.kind: simpy.Resource(env, capacity=g.count) for g in chip.groups}
    done = [env.event() for _ in range(n)]

    def task(i: int, kind: str, duration: int, deps: list[simpy.Event]):
        if deps:
            yield env.all_of(deps)
        with engines[kind].request() as req:
            yield req
            yield env.timeout(duration)
        done[i].succeed()

    for i in graph.topo_order:
        kind = graph.tasks[i].engines[0]
        env.process(task(i, kind, int(costs.estimate[i, kind_group[kind]]), [done[p] for p in graph.preds[i]]))
    env.run()
    t1 = time.perf_counter()
    return {"simulate_s": t1 - t0, "tasks_per_s": n / (t1 - t0), "latency_cycles": int(env.now)}


def _measure(which: str, n: int, seed: int) -> dict[str, float]:
    tracemalloc.start()
    out = (run_accelsim if which == "accelsim" else run_bare_simpy)(n, seed)
    out["peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return out


def _in_subprocess(which: str, n: int, seed: int, memory: bool) -> dict[str, float]:
    bare = "run_accelsim" if which == "accelsim" else "run_bare_simpy"
    code = (
        f"import json,sys; sys.path.insert(0, {sys.path[0]!r}); import sim_throughput as b; "
        f"print(json.dumps(b._measure({which!r}, {n:d}, {seed:d}) if {memory!r} else b.{bare}({n:d}, {seed:d})))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print one JSON line")
    ap.add_argument("--no-baseline", action="store_true", help="skip the bare SimPy loop")
    args = ap.parse_args()
    # Speed runs without tracemalloc (it slows Python several-fold); memory runs separately under it.
    fast = _in_subprocess("accelsim", args.tasks, args.seed, memory=False)
    mem = _in_subprocess("accelsim", args.tasks, args.seed, memory=True)
    row = {
        "tasks": args.tasks,
        "tasks_per_s": round(fast["tasks_per_s"]),
        "simulate_tasks_per_s": round(fast["simulate_tasks_per_s"]),
        "peak_mb": round(mem["peak_mb"], 1),
        "schedule_s": round(fast["schedule_s"], 3),
        "simulate_s": round(fast["simulate_s"], 3),
        "latency_cycles": fast["latency_cycles"],
    }
    if not args.no_baseline:
        bare = _in_subprocess("bare", args.tasks, args.seed, memory=False)
        bare_mem = _in_subprocess("bare", args.tasks, args.seed, memory=True)
        row.update(
            {
                "bare_simpy_tasks_per_s": round(bare["tasks_per_s"]),
                "bare_simpy_peak_mb": round(bare_mem["peak_mb"], 1),
                "bare_simpy_latency_cycles": bare["latency_cycles"],
            }
        )
    if args.json:
        print(json.dumps(row))
    else:
        width = max(map(len, row))
        for k, v in row.items():
            print(f"{k.ljust(width)}  {v:,}" if isinstance(v, int | float) else f"{k.ljust(width)}  {v}")


if __name__ == "__main__":
    main()
