"""Short stories about the simulation on a tiny chip (1 GHz, 16 B/cycle of HBM, two 8-lane vector cores)."""

import pytest

import accelsim
from accelsim import AccelsimError, CostTable, Schedule, TaskGraph, make_task, simulate


def vector_task(name, elements, deps=(), nbytes=0):
    """An add over ``elements`` bf16 values: elements/8 cycles on an 8-lane core; ``nbytes`` of HBM traffic."""
    return make_task(name, "add", [elements], deps=deps, bytes_read=nbytes, bytes_written=0)


def run_on(chip, tasks, placement):
    """Run tasks with an explicit placement: {task name: engine name}, in list order per engine."""
    graph = TaskGraph(tasks)
    names = chip.instance_names
    engine = [names.index(placement[t.name]) for t in tasks]
    order = [[i for i in range(len(tasks)) if engine[i] == e] for e in range(len(names))]
    return simulate(graph, chip, Schedule(engine, order, "by-hand"))


def times(results, name):
    i = results.graph.index[name]
    return int(results.start[i]), int(results.end[i])


def test_second_task_on_an_engine_starts_when_the_first_ends(tiny_chip):
    r = run_on(tiny_chip, [vector_task("a", 800), vector_task("b", 400)], {"a": "tpc0", "b": "tpc0"})
    assert times(r, "a") == (0, 100)
    assert times(r, "b") == (100, 150)
    assert r.latency_cycles == 150


def test_independent_tasks_on_two_engines_run_in_parallel(tiny_chip):
    r = run_on(tiny_chip, [vector_task("a", 800), vector_task("b", 800)], {"a": "tpc0", "b": "tpc1"})
    assert times(r, "a") == times(r, "b") == (0, 100)


def test_a_task_waits_for_its_dependency_on_another_engine(tiny_chip):
    r = run_on(tiny_chip, [vector_task("a", 800), vector_task("b", 80, deps=["a"])], {"a": "tpc0", "b": "tpc1"})
    assert times(r, "b") == (100, 110)


def test_two_memory_bound_tasks_share_hbm_and_both_slow_down(tiny_chip):
    # 1600 bytes at 16 B/cycle is 100 cycles alone; compute is only 1 cycle.
    alone = run_on(tiny_chip, [vector_task("a", 8, nbytes=1600)], {"a": "tpc0"})
    assert times(alone, "a") == (0, 100)
    both = run_on(
        tiny_chip, [vector_task("a", 8, nbytes=1600), vector_task("b", 8, nbytes=1600)], {"a": "tpc0", "b": "tpc1"}
    )
    assert times(both, "a") == (0, 200)
    assert times(both, "b") == (0, 200)


def test_a_stream_speeds_up_when_the_other_one_finishes(tiny_chip):
    # b needs 800 bytes: both share 8 B/cycle until b ends at 100; a has 800 bytes left, alone at 16 B/cycle.
    r = run_on(
        tiny_chip, [vector_task("a", 8, nbytes=1600), vector_task("b", 8, nbytes=800)], {"a": "tpc0", "b": "tpc1"}
    )
    assert times(r, "b") == (0, 100)
    assert times(r, "a") == (0, 150)


def test_compute_bound_task_is_not_slowed_by_its_own_bytes(tiny_chip):
    r = run_on(tiny_chip, [vector_task("a", 8000, nbytes=160)], {"a": "tpc0"})
    assert times(r, "a") == (0, 1000)


def test_dispatch_overhead_is_paid_per_task(tiny_chip):
    from conftest import tiny_chip_dict

    chip = accelsim.chip_from_dict(tiny_chip_dict(dispatch_overhead_cycles=7), "tiny.toml")
    r = run_on(chip, [vector_task("a", 80), vector_task("b", 80)], {"a": "tpc0", "b": "tpc0"})
    assert times(r, "a") == (0, 17)
    assert times(r, "b") == (17, 34)


def test_gemm_on_the_matrix_engine_takes_scale_sim_cycles(tiny_chip):
    r = run_on(tiny_chip, [make_task("g", "gemm", [8, 8, 8], bytes_read=0, bytes_written=0)], {"g": "mme0"})
    assert times(r, "g") == (0, accelsim.systolic_cycles(8, 8, 8, 4, 4, "os"))


def test_engines_of_one_shared_unit_never_overlap():
    from conftest import tiny_chip_dict

    d = tiny_chip_dict()
    d["engines"]["mme"]["shared_unit"] = "sm"
    d["engines"]["tpc"]["shared_unit"] = "sm"
    chip = accelsim.chip_from_dict(d, "gpu-like.toml")
    gemm = make_task("g", "gemm", [16, 16, 16], bytes_read=0, bytes_written=0)
    r = run_on(chip, [gemm, vector_task("v", 800)], {"g": "mme0", "v": "tpc0"})
    (gs, ge), (vs, ve) = times(r, "g"), times(r, "v")
    assert gs == 0 and vs == ge and ve == ge + 100  # tpc0 shares mme0's unit: it waits
    r2 = run_on(chip, [gemm, vector_task("v", 800)], {"g": "mme0", "v": "tpc1"})
    assert times(r2, "v") == (0, 100)  # tpc1 pairs with no matrix engine: it runs at once


def test_a_schedule_whose_order_contradicts_dependencies_is_reported(tiny_chip):
    tasks = [vector_task("a", 8), vector_task("b", 8, deps=["a"])]
    graph = TaskGraph(tasks)
    with pytest.raises(AccelsimError, match="deadlock"):
        simulate(graph, tiny_chip, Schedule([1, 1], [[], [1, 0], [], []], "backwards"))


def test_a_schedule_that_drops_a_task_is_rejected(tiny_chip):
    graph = TaskGraph([vector_task("a", 8), vector_task("b", 8)])
    with pytest.raises(AccelsimError, match="scheduled 0 times"):
        simulate(graph, tiny_chip, Schedule([1, 1], [[], [0], [], []], "lossy"))


def test_a_task_on_a_kind_it_does_not_allow_is_rejected(tiny_chip):
    graph = TaskGraph([vector_task("a", 8)])
    with pytest.raises(AccelsimError, match="does not allow"):
        simulate(graph, tiny_chip, Schedule([0], [[0], [], [], []], "wrong-kind"))


def test_results_report_busy_idle_and_longest_gap(tiny_chip):
    r = run_on(
        tiny_chip,
        [vector_task("a", 800), vector_task("c", 400), vector_task("b", 80, deps=["a"])],
        {"a": "tpc0", "b": "tpc1", "c": "tpc1"},
    )
    # tpc1 runs c [0,50) then b [100,110): idle 50..100 and nothing after 110 = latency.
    stats = {s.name: s for s in r.engines}
    assert r.latency_cycles == 110
    assert stats["tpc1"].busy_cycles == 60 and stats["tpc1"].idle_cycles == 50
    assert stats["tpc1"].longest_idle_cycles == 50
    assert stats["tpc0"].longest_idle_cycles == 10
    assert stats["mme0"].longest_idle_cycles == 110 and stats["mme0"].utilization == 0
    assert r.utilization()["vector"] == pytest.approx((100 / 110 + 60 / 110) / 2)
    assert r.busy_intervals(r.chip.instance_names.index("tpc1")).tolist() == [[0, 50], [100, 110]]


def test_same_inputs_same_results_to_the_cycle():
    chip = accelsim.load_chip("gaudi2")
    from accelsim.synthetic import random_graph

    a = accelsim.run(chip, random_graph(3000, seed=4))
    b = accelsim.run(chip, random_graph(3000, seed=4))
    assert (a.start == b.start).all() and (a.end == b.end).all() and (a.engine == b.engine).all()
    assert (a.hbm_change_cycles == b.hbm_change_cycles).all()


def test_cost_table_marks_what_an_engine_cannot_run(tiny_chip):
    graph = TaskGraph([vector_task("a", 8), make_task("g", "gemm", [4, 4, 4]), make_task("d", "dma", [64])])
    costs = CostTable.build(graph, tiny_chip)
    mme, tpc, dma = 0, 1, 2
    assert costs.compute[0, mme] < 0 and costs.compute[0, tpc] == 1 and costs.compute[0, dma] < 0
    assert costs.compute[1, mme] > 0 and costs.compute[1, tpc] < 0  # a gemm allows only the matrix engine
    assert costs.compute[2, dma] == 1 and costs.compute[2, tpc] < 0


def test_a_launch_gap_follows_compute_and_memory_alike():
    from conftest import tiny_chip_dict

    chip = accelsim.chip_from_dict(tiny_chip_dict(launch_gap_cycles=5), "gpu-like.toml")
    r = run_on(
        chip,
        [vector_task("mem", 8, nbytes=1600), vector_task("cmp", 800), vector_task("next", 8)],
        {"mem": "tpc0", "cmp": "tpc1", "next": "tpc0"},
    )
    assert times(r, "mem") == (0, 105)  # 100 cycles of streaming, then the gap
    assert times(r, "cmp") == (0, 105)  # 100 cycles of compute, then the gap
    assert times(r, "next") == (105, 111)
