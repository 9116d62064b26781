"""Measure how far schedulers land from the exact optimum on random graphs of at most 8 tasks.

    python tools/optimum_ratio.py [EXAMPLES]

Prints the worst latency / optimum ratio seen per scheduler; tests/test_schedulers.py states the factor it
asserts from this measurement. HBM is made roomy so the simulation and the exhaustive search use one cost model.
"""

from __future__ import annotations

import sys

from hypothesis import HealthCheck, given, settings

import accelsim
from accelsim.optimal import optimal_latency
from accelsim.strategies import chip_dicts, task_graphs

worst = {"balanced": 0.0, "heft": 0.0, "naive": 0.0}


@settings(
    max_examples=int(sys.argv[1]) if len(sys.argv) > 1 else 1000,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
@given(chip_dicts(dma=False), task_graphs(max_tasks=8))
def measure(chip_dict: dict, graph: accelsim.TaskGraph) -> None:
    chip = accelsim.chip_from_dict({**chip_dict, "memory": {**chip_dict["memory"], "hbm_bandwidth_gbps": 1e9}}, "x")
    best = optimal_latency(graph, chip)
    for name in worst:
        latency = accelsim.run(chip, graph, name).latency_cycles
        assert latency >= best, (name, latency, best)
        worst[name] = max(worst[name], latency / best)


if __name__ == "__main__":
    measure()
    print({k: round(v, 3) for k, v in worst.items()})
