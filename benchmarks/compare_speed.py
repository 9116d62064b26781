"""What a user waits for: `accelsim compare` on gformer-gpt / gaudi1 (naive, balanced, heft) against a bare SimPy
engine loop over the 154,793 tasks the preset had at tile granularity, timed in the same run; and the simulation
alone against that loop, in tasks per second.

    python benchmarks/compare_speed.py [--json]

The bare loop is SimPy written the obvious way for engines that run task queues: one process per engine, which
for each of its tasks waits for the task's dependencies (one event per task) and then for its duration (the cost
table's estimate); no bandwidth model, no recording. The compare is the whole command's work: lowering, the chip's
compiler, cost table, lower bound, three schedulers and their simulations.
"""

from __future__ import annotations

import argparse
import json
import time

import simpy

import accelsim
from accelsim.compare import compare
from accelsim.lowering import lower
from accelsim.workload import load_workload


def bare_engine_loop(
    graph: accelsim.TaskGraph, engine: list[int], order: list[list[int]], duration: list[int]
) -> tuple[float, int]:
    """Seconds and final cycle of the bare loop over ``graph`` with the given engine queues and durations."""
    t0 = time.perf_counter()
    env = simpy.Environment()
    done = [env.event() for _ in graph.tasks]
    preds = graph.preds

    def run_engine(queue: list[int]):  # type: ignore[no-untyped-def]
        for i in queue:
            waits = [done[p] for p in preds[i] if not done[p].processed]
            if waits:
                yield simpy.AllOf(env, waits)
            yield env.timeout(duration[i])
            done[i].succeed()

    for queue in order:
        if queue:
            env.process(run_engine(queue))
    env.run()
    return time.perf_counter() - t0, int(env.now)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    chip = accelsim.load_chip("gaudi1")
    # The bare loop's work: the preset at tile granularity, as the simulator saw it before the compiler.
    tiled = lower(load_workload("gformer-gpt", ["granularity=tile", "batch_split=4"]))
    costs = accelsim.CostTable.build(tiled, chip)
    plan = accelsim.get_scheduler("first-free").schedule(tiled, chip, costs)
    groups = chip.instance_group
    duration = [int(costs.estimate[i, groups[e]]) for i, e in enumerate(plan.engine)]
    bare_s, _ = bare_engine_loop(tiled, plan.engine, plan.order, duration)
    t0 = time.perf_counter()
    sim = accelsim.simulate(tiled, chip, plan, costs)
    sim_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    cmp = compare(chip, lower(load_workload("gformer-gpt")), ["naive", "balanced", "heft"])
    compare_s = time.perf_counter() - t0
    row = {
        "tasks_bare_loop": len(tiled),
        "bare_loop_s": round(bare_s, 2),
        "bare_loop_tasks_per_s": round(len(tiled) / bare_s),
        "simulate_only_s": round(sim_s, 2),
        "simulate_only_tasks_per_s": round(len(tiled) / sim_s),
        "simulate_over_bare_tasks_per_s": round(bare_s / sim_s, 2),
        "compare_tasks": len(cmp.graph),
        "compare_s": round(compare_s, 2),
        "compare_over_bare_loop": round(compare_s / bare_s, 2),
        "latency_ms": {r.scheduler: round(r.latency_us / 1e3, 3) for r in cmp.results},
        "simulated_tile_latency_ms": round(sim.latency_us / 1e3, 3),
    }
    if args.json:
        print(json.dumps(row))
    else:
        for k, v in row.items():
            print(f"{k:32s} {v}")


if __name__ == "__main__":
    main()
