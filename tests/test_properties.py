"""Property tests over random DAGs and random valid chips: every schedule the simulation runs is valid."""

import numpy as np
from hypothesis import given

import accelsim
from accelsim import CostTable
from accelsim.checks import assert_valid
from accelsim.strategies import chips, task_graphs


@given(chips(dma=True), task_graphs(max_tasks=15, dma=True))
def test_the_simulation_runs_every_task_validly(chip, graph):
    results = accelsim.run(chip, graph)
    assert_valid(results)
    compiled = results.graph  # what the chip's compiler made of the graph
    costs = CostTable.build(compiled, chip)
    assert (costs.compute[range(len(compiled)), [chip.instance_group[e] for e in results.engine]] >= 0).all()


@given(chips(), task_graphs(max_tasks=15))
def test_makespan_is_at_least_the_critical_path_and_the_work_over_capacity(chip, graph):
    results = accelsim.run(chip, graph)
    graph = results.graph
    costs = CostTable.build(graph, chip)
    fastest = costs.fastest()
    # Critical path with every task on its fastest engine, each alone.
    finish = np.zeros(len(graph), dtype=np.int64)
    for i in graph.topo_order:
        finish[i] = max((finish[p] for p in graph.preds[i]), default=0) + fastest[i]
    assert results.latency_cycles >= finish.max()
    # Total work on the fastest engines, spread over every engine of the chip.
    engines = len(chip.instance_names)
    assert results.latency_cycles * engines >= int(fastest.sum())
    # HBM cannot move the bytes it moved faster than its bandwidth.
    assert results.latency_cycles >= results.hbm_bytes.sum() / chip.hbm_bytes_per_cycle - 1


@given(chips(), task_graphs(max_tasks=10))
def test_same_inputs_same_cycles(chip, graph):
    a, b = accelsim.run(chip, graph), accelsim.run(chip, graph)
    assert a.start.tolist() == b.start.tolist() and a.end.tolist() == b.end.tolist()
