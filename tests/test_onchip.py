"""SRAM at run time: room reserved for kept outputs, freed after the last reader, spills when there is none."""

import numpy as np
import pytest

import accelsim
from accelsim import Schedule, TaskGraph, make_task, simulate
from accelsim.onchip import OnChipPlan, SramPool

from conftest import tiny_chip_dict


def kept(task, *reads):
    """``task`` with its output planned on chip, reading ``reads`` bytes from each of its dependencies."""
    return task.but(on_chip=True, dep_bytes=tuple(reads) or task.dep_bytes)


def reader(name, deps, reads):
    """A copy of 800 bf16 reading ``reads`` bytes from each dependency's kept output."""
    return make_task(name, "copy", [800], deps=deps).but(dep_bytes=tuple(reads))


def one_producer_two_readers():
    # p writes 1,600 bytes kept on chip; c1 and c2 each read all of it.
    return TaskGraph([kept(make_task("p", "copy", [800])), reader("c1", ["p"], [1600]), reader("c2", ["p"], [1600])])


def test_the_plan_moves_kept_bytes_from_hbm_to_sram():
    plan = OnChipPlan.of(one_producer_two_readers())
    # p: 1,600 in from HBM, 1,600 out to SRAM; each reader: 1,600 in from SRAM, 1,600 out to HBM.
    assert plan.keep.tolist() == [1600, 0, 0] and plan.consumers.tolist() == [2, 0, 0]
    assert plan.hbm.tolist() == [1600, 1600, 1600] and plan.sram.tolist() == [1600, 1600, 1600]
    assert plan.inputs == {1: [(0, 1600)], 2: [(0, 1600)]} and plan.any


def test_an_output_nobody_reads_from_sram_is_written_out():
    plan = OnChipPlan.of(TaskGraph([kept(make_task("p", "copy", [800]))]))
    assert plan.keep.tolist() == [0] and plan.hbm.tolist() == [3200] and not plan.any


def test_room_that_just_fits_is_taken_and_freed_after_the_last_reader():
    pool = SramPool(OnChipPlan.of(one_producer_two_readers()), capacity=1600)
    assert pool.place(0) == 0 and pool.kept[0] and pool.free == 0  # exactly 1,600 bytes of room
    assert pool.place(1) == 0 and pool.sram_bytes.tolist() == [1600, 1600, 0]
    pool.release(1)
    assert pool.free == 0  # c2 has yet to read it
    pool.place(2)
    pool.release(2)
    assert pool.free == 1600 and pool.readers_left.tolist() == [0, 0, 0]


def test_without_room_the_output_spills_and_its_readers_read_it_back():
    pool = SramPool(OnChipPlan.of(one_producer_two_readers()), capacity=1599)
    assert pool.place(0) == 1600 and not pool.kept[0]  # written to HBM
    assert pool.place(1) == 1600 and pool.place(2) == 1600  # each reads it from HBM
    assert pool.sram_bytes.tolist() == [0, 0, 0]
    pool.release(1)
    pool.release(2)
    assert pool.free == 1599  # nothing was reserved, nothing is given back


def test_a_load_with_no_room_writes_nothing_back_and_spilled_inputs_add_up():
    # A DMA load's output is a copy of memory: spilled, it is simply not kept. r reads it and p2's output.
    load = kept(make_task("w", "dma", [1000], bytes_written=1000))
    p2 = kept(make_task("p2", "copy", [800]))
    graph = TaskGraph([load, p2, reader("r", ["w", "p2"], [1000, 1600])])
    pool = SramPool(OnChipPlan.of(graph), capacity=0)
    assert pool.place(0) == 0 and pool.place(1) == 1600
    assert pool.place(2) == 1000 + 1600


def chip(**memory):
    mem = {"hbm_gb": 1, "hbm_bandwidth_gbps": 16, "sram_mb": 1, **memory}
    return accelsim.chip_from_dict(tiny_chip_dict(memory=mem), "tiny.toml")


def on_tpc0(graph, c):
    tpc0 = c.instance_names.index("tpc0")
    order = [list(range(len(graph))) if e == tpc0 else [] for e in range(len(c.instance_names))]
    return simulate(graph, c, Schedule([tpc0] * len(graph), order))


def test_sram_bandwidth_binds_a_task_that_moves_more_on_chip_than_it_computes():
    graph = TaskGraph([kept(make_task("p", "copy", [800])), reader("c", ["p"], [1600])])
    # No SRAM bandwidth given: p streams 1,600 bytes from HBM (100 cycles at 16 a cycle), c writes 1,600: 100.
    assert on_tpc0(graph, chip()).end.tolist() == [100, 200]
    # 8 bytes a cycle of SRAM (8 GB/s at 1 GHz): p's 1,600 bytes into SRAM take 200 cycles, and p ends when the
    # slower of its two streams does; c reads them back in 200 more.
    assert on_tpc0(graph, chip(sram_bandwidth_gbps=8)).end.tolist() == [200, 400]


def test_a_spilled_strided_output_costs_the_strided_rate():
    graph = TaskGraph([kept(make_task("t", "strided_copy", [800])), reader("c", ["t"], [1600])])
    half = chip(sram_mb=1e-6, strided_bandwidth_efficiency=0.5)  # 1 byte of SRAM: t spills
    results = on_tpc0(graph, half)
    # t reads 1,600 and writes its 1,600 back, strided at half efficiency: 6,400 bytes at full rate, 400 cycles.
    assert results.end[0] == 400 and results.hbm_bytes.tolist() == [3200, 3200]
    assert not results.kept_on_chip.any()


def test_a_task_both_reading_and_keeping_moves_both_through_sram():
    # p -> q -> r, each output kept: q reads 1,600 bytes of p's from SRAM and writes its 1,600 there too.
    graph = TaskGraph(
        [kept(make_task("p", "copy", [800])), kept(reader("q", ["p"], [1600])), reader("r", ["q"], [1600])]
    )
    plan = OnChipPlan.of(graph)
    assert plan.sram.tolist() == [1600, 3200, 1600] and plan.hbm.tolist() == [1600, 0, 1600]


def test_a_dependency_read_for_nothing_is_no_reader_and_a_graph_without_edges_keeps_nothing():
    # r waits for p but reads none of its bytes: p's output has no reader on chip, so it is written out.
    graph = TaskGraph([kept(make_task("p", "copy", [800])), reader("r", ["p"], [0])])
    plan = OnChipPlan.of(graph)
    assert plan.keep.tolist() == [0] * 2 and plan.consumers.tolist() == [0, 0] and plan.inputs == {}
    # A graph the compiler never saw has no edge bytes at all: nothing on chip, every byte through HBM.
    raw = OnChipPlan.of(TaskGraph([make_task("p", "copy", [800]), make_task("r", "copy", [800], deps=["p"])]))
    assert not raw.any and raw.hbm.tolist() == [3200, 3200]


def test_the_plans_and_the_pools_counts_are_integers():
    plan = OnChipPlan.of(one_producer_two_readers())
    assert {a.dtype for a in (plan.keep, plan.hbm, plan.sram, plan.consumers)} == {np.dtype(np.int64)}
    assert plan.spill_writes.dtype == np.dtype(bool)
    pool = SramPool(plan, capacity=1600)
    assert pool.kept.dtype == np.dtype(bool) and pool.sram_bytes.dtype == np.dtype(np.int64)


def test_a_task_that_moves_nothing_through_hbm_just_computes():
    # p -> q -> r, outputs kept: q reads p's 1,600 bytes from SRAM and keeps its own: no HBM at all, only its 100
    # cycles of compute. p streams its 1,600 input bytes (100 cycles); r writes 1,600 bytes out (100).
    graph = TaskGraph(
        [kept(make_task("p", "copy", [800])), kept(reader("q", ["p"], [1600])), reader("r", ["q"], [1600])]
    )
    results = on_tpc0(graph, chip())
    assert results.end.tolist() == [100, 200, 300] and results.hbm_bytes.tolist() == [1600, 0, 1600]
    # With SRAM bandwidth too (8 bytes a cycle), a transfer of no bytes at all still ends, at once.
    empty = make_task("e", "dma", [64], bytes_read=0)
    with_empty = TaskGraph([*graph.tasks, empty])
    c = chip(sram_bandwidth_gbps=8)
    dma0 = c.instance_names.index("dma0")
    tpc0 = c.instance_names.index("tpc0")
    order = [[0, 1, 2] if e == tpc0 else [3] if e == dma0 else [] for e in range(len(c.instance_names))]
    r = simulate(with_empty, c, Schedule([tpc0, tpc0, tpc0, dma0], order))
    assert r.end[3] == 0 and r.latency_cycles > 0


def test_a_run_with_nothing_on_chip_reports_integer_bytes_and_no_kept_output():
    results = accelsim.run(chip(), TaskGraph([make_task("a", "copy", [800])]))
    assert results.sram_bytes.dtype == np.dtype(np.int64) and results.kept_on_chip.dtype == np.dtype(bool)
    assert results.sram_bytes.tolist() == [0] and results.kept_on_chip.tolist() == [False]


def test_a_search_can_give_up_on_a_schedule_once_it_cannot_win():
    from accelsim.simulation import GaveUp

    graph = TaskGraph([make_task("a", "copy", [800]), make_task("b", "copy", [800], deps=["a"])])
    c = chip()  # each copy: 1,600 bytes in and out at 16 a cycle = 200 cycles; the two end at 400
    tpc0 = c.instance_names.index("tpc0")
    plan = Schedule([tpc0, tpc0], [[0, 1] if e == tpc0 else [] for e in range(len(c.instance_names))])
    assert simulate(graph, c, plan, give_up_after=400).latency_cycles == 400  # done by then: the result
    with pytest.raises(GaveUp) as err:
        simulate(graph, c, plan, give_up_after=399)
    assert err.value.args == (399,)


def test_results_say_the_bytes_moved_as_simulated_beside_the_bytes_planned():
    graph = TaskGraph([kept(make_task("p", "copy", [800])), reader("c", ["p"], [1600])])
    # p reads 1,600 from HBM and writes 1,600; c reads those 1,600 and writes 1,600 to HBM: 6,400 planned.
    stays = on_tpc0(graph, chip())  # 1 MB of SRAM: p's output stays on chip
    assert stays.bytes_planned == 6400 and stays.bytes_moved == 6400 and stays.hbm_bytes_moved == 3200
    spills = on_tpc0(graph, chip(sram_mb=1e-6))  # 1 byte of SRAM: it goes out to HBM and back
    assert spills.bytes_planned == 6400 and spills.bytes_moved == 6400 and spills.hbm_bytes_moved == 6400
    summary = stays.summary().to_dict()
    assert (summary["bytes_moved"], summary["hbm_bytes_moved"], summary["bytes_planned"]) == (6400, 3200, 6400)
    assert sum(t["hbm_bytes"] for t in stays.to_dict()["tasks"]) == stays.hbm_bytes_moved


def test_a_load_that_found_no_room_moved_fewer_bytes_than_planned():
    # w loads 1,000 bytes into SRAM for r; with no room, the load writes nothing and r reads them from HBM.
    load = kept(make_task("w", "dma", [1000], bytes_written=1000))
    graph = TaskGraph([load, reader("r", ["w"], [1000])])
    c = chip(sram_mb=1e-6)
    dma0, tpc0 = c.instance_names.index("dma0"), c.instance_names.index("tpc0")
    order = [[0] if e == dma0 else [1] if e == tpc0 else [] for e in range(len(c.instance_names))]
    results = simulate(graph, c, Schedule([dma0, tpc0], order))
    # w reads 1,000 and writes nothing (its 1,000 into SRAM found no room); r reads 1,600 (1,000 of them w's, now
    # from HBM) and writes 1,600: 4,200 moved, where 5,200 were planned.
    assert results.hbm_bytes.tolist() == [1000, 3200] and results.sram_bytes.tolist() == [0, 0]
    assert results.bytes_moved == results.hbm_bytes_moved == 4200
    assert results.bytes_planned == graph.total_bytes == 5200


def test_sram_freed_after_the_last_reader_is_kept_for_the_next_output():
    # room for one 1,600-byte output at a time: p2 can keep its output only because c1, p1's last reader, freed p1's
    p1 = kept(make_task("p1", "copy", [800]))
    p2 = kept(make_task("p2", "copy", [800], deps=["c1"]).but(dep_bytes=(0,)))
    graph = TaskGraph([p1, reader("c1", ["p1"], [1600]), p2, reader("c2", ["p2"], [1600])])
    c = chip(sram_mb=0.0016 / chip().spec.compiler.on_chip_fraction)
    assert c.on_chip_capacity == 1600
    results = on_tpc0(graph, c)
    assert results.kept_on_chip.tolist() == [True, False, True, False]
    assert results.hbm_bytes_moved == 4 * 1600
