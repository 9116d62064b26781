"""Stories about carrying out a hand-written Schedule: the cycles each task runs, what Results carry, and the one-line
errors of a malformed schedule. Expected cycles are worked out by hand in the comments.

The tiny chip (tests/conftest.py): mme0 (matrix), tpc0 and tpc1 (8-lane vector cores, no pipeline latency), dma0;
1 GHz, 16 B/cycle of HBM. An ``add`` over E bf16 elements computes for E/8 cycles on a vector core.
"""

import dataclasses

import numpy as np
import pytest

import accelsim
from accelsim import AccelsimError, CostTable, Schedule, TaskGraph, make_task, simulate
from accelsim.runner import prepare

from conftest import tiny_chip_dict


def add(name, elements, deps=(), nbytes=0):
    """A vector add over ``elements`` values (elements/8 cycles on a tpc) that streams ``nbytes`` through HBM."""
    return make_task(name, "add", [elements], deps=deps, bytes_read=nbytes, bytes_written=0)


def chip_with(**over):
    return accelsim.chip_from_dict(tiny_chip_dict(**over), "tiny.toml")


def by_hand(chip, tasks, queues, name="by-hand", notes=None):
    """A Schedule from {engine name: [task names in issue order]}."""
    index = {t.name: i for i, t in enumerate(tasks)}
    engines = chip.instance_names
    engine = [0] * len(tasks)
    order = [[] for _ in engines]
    for e_name, names in queues.items():
        e = engines.index(e_name)
        for t in names:
            engine[index[t]] = e
            order[e].append(index[t])
    return Schedule(engine, order, name, notes or {})


def run(chip, tasks, queues, **kw):
    return simulate(TaskGraph(tasks), chip, by_hand(chip, tasks, queues, **kw))


def spans(results):
    """{task name: (start, end)}."""
    return {t.name: (int(s), int(e)) for t, s, e in zip(results.graph.tasks, results.start, results.end, strict=True)}


# --- timing -----------------------------------------------------------------------------------------------------


def test_dispatch_counts_towards_compute_even_when_the_task_also_streams():
    # dispatch 7 + 80/8 = 10 compute cycles = 17; its 16 bytes take 1 cycle of HBM: compute ends last, at 17.
    r = run(chip_with(dispatch_overhead_cycles=7), [add("a", 80, nbytes=16)], {"tpc0": ["a"]})
    assert spans(r) == {"a": (0, 17)}


def test_a_one_cycle_launch_gap_follows_a_stream():
    # 1600 bytes at 16 B/cycle end at 100; compute (1 cycle) ended long before; the gap of 1 makes it 101.
    # b then computes for 8/8 = 1 cycle, plus the gap: 101 + 2 = 103.
    r = run(chip_with(launch_gap_cycles=1), [add("a", 8, nbytes=1600), add("b", 8)], {"tpc0": ["a", "b"]})
    assert spans(r) == {"a": (0, 101), "b": (101, 103)}


def test_a_task_of_zero_cycles_is_allowed_and_ends_where_it_starts(tiny_chip):
    # A DMA of no bytes computes for ceil(0 / 1000) = 0 cycles on dma0: it starts and ends at 0, its successor too
    # starts at 0 and runs 80/8 = 10 cycles.
    tasks = [make_task("nothing", "dma", [64], bytes_read=0, bytes_written=0), add("then", 80, deps=["nothing"])]
    r = run(tiny_chip, tasks, {"dma0": ["nothing"], "tpc0": ["then"]})
    assert spans(r) == {"nothing": (0, 0), "then": (0, 10)}


def test_the_cost_table_given_is_the_one_simulated(tiny_chip):
    # The add would compute for 1 cycle; the table handed in says 30 on a tpc (and that it streams nothing).
    graph = TaskGraph([add("a", 8)])
    costs = CostTable(compute=np.array([[-1, 30, -1]]), estimate=np.array([[-1, 30, -1]]), stream=np.array([0]))
    r = simulate(graph, tiny_chip, by_hand(tiny_chip, graph.tasks, {"tpc1": ["a"]}), costs)
    assert spans(r) == {"a": (0, 30)}


def test_a_prepared_graph_simulates_with_its_own_cost_table(tiny_chip):
    # prepare compiles and costs once; what its table says (30 cycles on a tpc, not the add's 1) is what runs.
    prepared = prepare(tiny_chip, TaskGraph([add("a", 8)]))
    costs = CostTable(compute=np.array([[-1, 30, -1]]), estimate=np.array([[-1, 30, -1]]), stream=np.array([0]))
    r = dataclasses.replace(prepared, costs=costs).simulate()
    assert spans(r) == {"a": (0, 30)}


def test_run_loads_a_chip_named_by_a_string():
    graph = TaskGraph([add("a", 8000)])
    by_name = accelsim.run("gaudi1", graph)
    assert by_name.chip.name == "gaudi1"
    assert by_name.latency_cycles == accelsim.run(accelsim.load_chip("gaudi1"), graph).latency_cycles


def test_an_empty_graph_runs_in_no_time(tiny_chip):
    r = simulate(TaskGraph([]), tiny_chip, Schedule([], [[], [], [], []], "nothing"))
    assert r.start.tolist() == [] and r.end.tolist() == [] and r.engine.tolist() == []
    assert r.latency_cycles == 0


def test_tasks_ending_in_the_same_cycle_release_their_successors_in_the_order_they_started():
    # Engines a0 and b0 share one unit ("sm"); c0 and c1 are units of their own. At cycle 0, c0 starts P (1 cycle
    # of compute, 1600 bytes: its stream ends at 100) before c1 starts Q (800/8 = 100 cycles of compute), as
    # engines are tried in order. Both end at 100: P's end was scheduled first, so its successor S1 takes the
    # shared unit on b0 at 100 for 10 cycles, and Q's successor S2 on a0 waits for it: [110, 120).
    d = tiny_chip_dict()
    d["engines"] = {
        "a": {"kind": "vector", "count": 1, "lanes": {"bf16": 8}, "pipeline_latency_cycles": 0, "shared_unit": "sm"},
        "b": {"kind": "vector", "count": 1, "lanes": {"bf16": 8}, "pipeline_latency_cycles": 0, "shared_unit": "sm"},
        "c": {"kind": "vector", "count": 2, "lanes": {"bf16": 8}, "pipeline_latency_cycles": 0},
    }
    chip = accelsim.chip_from_dict(d, "shared.toml")
    tasks = [add("P", 8, nbytes=1600), add("Q", 800), add("S1", 80, deps=["P"]), add("S2", 80, deps=["Q"])]
    r = run(chip, tasks, {"a0": ["S2"], "b0": ["S1"], "c0": ["P"], "c1": ["Q"]})
    assert spans(r) == {"P": (0, 100), "Q": (0, 100), "S1": (100, 110), "S2": (110, 120)}


# --- what Results carry -------------------------------------------------------------------------------------------


def test_results_carry_the_schedulers_name_its_notes_and_the_hbm_stream_counts(tiny_chip):
    # a streams 1600 bytes, b 800, both from 0: 8 B/cycle each until b is done at 100, then a alone moves its last
    # 800 bytes at 16 B/cycle by 150. Streams: 2 from 0, 1 from 100, 0 from 150.
    tasks = [add("a", 8, nbytes=1600), add("b", 8, nbytes=800)]
    schedule = by_hand(tiny_chip, tasks, {"tpc0": ["a"], "tpc1": ["b"]}, name="mine", notes={"split": 0.5})
    r = simulate(TaskGraph(tasks), tiny_chip, schedule)
    assert spans(r) == {"a": (0, 150), "b": (0, 100)}
    assert r.scheduler == "mine"
    assert r.notes == {"split": 0.5}
    schedule.notes["later"] = 1
    assert r.notes == {"split": 0.5}  # a copy: the schedule's later notes are not the results'
    assert r.engine.tolist() == [1, 2]
    assert r.hbm_change_cycles.tolist() == [0, 100, 150]
    assert r.hbm_change_streams.tolist() == [2, 1, 0]
    assert (r.engine.dtype, r.start.dtype, r.end.dtype) == (np.int32, np.int64, np.int64)
    assert (r.hbm_change_cycles.dtype, r.hbm_change_streams.dtype) == (np.int64, np.int64)


# --- malformed schedules: one-line errors ------------------------------------------------------------------------


def error_of(chip, tasks, schedule):
    with pytest.raises(AccelsimError) as info:
        simulate(TaskGraph(tasks), chip, schedule)
    return info.value


def test_a_deadlock_names_the_first_three_stuck_queue_heads():
    # Four vector cores; each queues b_k before a_k although b_k needs a_k: none of them can start. v0 first runs
    # "ok", so 1 of the 9 tasks ends and 8 never start; the message names the heads of v0, v1, v2 only.
    d = tiny_chip_dict()
    d["engines"] = {"v": {"kind": "vector", "count": 4, "lanes": {"bf16": 8}, "pipeline_latency_cycles": 0}}
    chip = accelsim.chip_from_dict(d, "four.toml")
    tasks = [add("ok", 8)] + [t for k in range(4) for t in (add(f"a{k}", 8), add(f"b{k}", 8, deps=[f"a{k}"]))]
    queues = {f"v{k}": ([] if k else ["ok"]) + [f"b{k}", f"a{k}"] for k in range(4)}
    err = error_of(chip, tasks, by_hand(chip, tasks, queues, name="circular"))
    assert str(err) == (
        "scheduler 'circular': the schedule deadlocks: 8 tasks never start (engine queue heads "
        "['b0', 'b1', 'b2'] wait on tasks queued behind them); an engine's order must follow the "
        "dependencies"
    )
    assert err.key == "scheduler 'circular'" and err.source is None


def test_a_schedule_for_fewer_tasks_than_the_graph_is_rejected(tiny_chip):
    err = error_of(tiny_chip, [add("a", 8), add("b", 8)], Schedule([1], [[], [0], [], []], "short"))
    assert err.detail == "schedule covers 1 tasks and 4 engines; the graph has 2 tasks and the chip 4 engines"
    assert err.key == "scheduler 'short'"


def test_a_schedule_for_another_number_of_engines_is_rejected(tiny_chip):
    err = error_of(tiny_chip, [add("a", 8)], Schedule([1], [[], [0]], "narrow"))
    assert str(err) == (
        "scheduler 'narrow': schedule covers 1 tasks and 2 engines; the graph has 1 tasks and the chip 4 engines"
    )


def test_a_task_index_one_past_the_last_is_rejected(tiny_chip):
    err = error_of(tiny_chip, [add("a", 8), add("b", 8)], Schedule([1, 1], [[], [0, 1, 2], [], []], "past"))
    assert err.detail == "schedule names task index 2, outside 0..1"
    assert err.key == "scheduler 'past'"


def test_a_negative_task_index_is_rejected_and_named(tiny_chip):
    err = error_of(tiny_chip, [add("a", 8), add("b", 8)], Schedule([1, 1], [[], [0, -1, 1], [], []], "neg"))
    assert str(err) == "scheduler 'neg': schedule names task index -1, outside 0..1"


def test_a_task_listed_twice_is_rejected(tiny_chip):
    err = error_of(tiny_chip, [add("a", 8), add("b", 8)], Schedule([1, 1], [[], [0, 0], [], []], "twice"))
    assert str(err) == "scheduler 'twice': task 'a' is scheduled 2 times, must be once"
    assert err.key == "scheduler 'twice'"


def test_a_task_listed_on_another_engine_than_its_own_is_rejected(tiny_chip):
    # Both are assigned to engine 1 (tpc0) but listed on 2 and 3: the first one listed is reported.
    err = error_of(tiny_chip, [add("a", 8), add("b", 8)], Schedule([1, 1], [[], [], [0], [1]], "moved"))
    assert str(err) == "scheduler 'moved': task 'a' is listed on engine 2 but assigned to 1"
    assert err.key == "scheduler 'moved'"


def test_a_task_on_a_kind_it_does_not_allow_is_rejected_with_its_kinds(tiny_chip):
    err = error_of(tiny_chip, [add("a", 8), add("b", 8)], Schedule([1, 0], [[1], [0], [], []], "wrong-kind"))
    assert str(err) == "scheduler 'wrong-kind': task 'b' is put on mme0, a kind it does not allow (['vector'])"
    assert err.key == "scheduler 'wrong-kind'"
