"""assert_valid on schedules written by hand: each invariant's violation is caught, and named."""

import re

import numpy as np
import pytest

import accelsim
from accelsim import Schedule, TaskGraph, make_task, simulate
from accelsim.checks import assert_valid
from accelsim.results import Results

from conftest import tiny_chip_dict


def tiny():
    """Engines mme0 (matrix), tpc0 and tpc1 (vector), dma0."""
    return accelsim.chip_from_dict(tiny_chip_dict(), "tiny.toml")


def sm_chip():
    """A GPU-like SM: tensor core tc0 and CUDA core cc0 share one unit; dma0 is a unit of its own."""
    return accelsim.chip_from_dict(
        tiny_chip_dict(
            engines={
                "tc": {
                    "kind": "matrix",
                    "count": 1,
                    "rows": 4,
                    "cols": 4,
                    "dataflow": "os",
                    "macs_per_cycle": {"bf16": 16},
                    "shared_unit": "sm",
                },
                "cc": {"kind": "vector", "count": 1, "lanes": {"bf16": 8}, "shared_unit": "sm"},
                "dma": {"kind": "dma", "count": 1, "bytes_per_cycle": 1000},
            }
        ),
        "sm.toml",
    )


def ran(chip, tasks, placed):
    """Results where each task ran where and when ``placed`` says: {name: (engine, start, end)}."""
    graph = TaskGraph(tasks)
    where = [placed[t.name] for t in graph.tasks]
    return Results(
        graph,
        chip,
        "by hand",
        engine=np.array([chip.instance_names.index(e) for e, _, _ in where], dtype=np.int64),
        start=np.array([s for _, s, _ in where], dtype=np.int64),
        end=np.array([e for _, _, e in where], dtype=np.int64),
        hbm_change_cycles=np.zeros(0, dtype=np.int64),
        hbm_change_streams=np.zeros(0, dtype=np.int64),
    )


def add(name, deps=()):
    return make_task(name, "add", [8], deps=deps)


def invalid(results, message):
    with pytest.raises(AssertionError, match="^" + re.escape(message) + "$"):
        assert_valid(results)


def test_a_schedule_that_keeps_every_rule_passes():
    chip = tiny()
    tasks = [
        add("a"),
        add("b", deps=["a"]),
        add("c"),
        make_task("g", "gemm", [4, 4, 4]),
        make_task("d", "dma", [64], bytes_read=0, deps=["b"]),
    ]
    # b starts the cycle a ends, on the same core; c runs beside them on the other core; the gemm on the MME at
    # the same time; the empty transfer d takes no time at all, the cycle b ends.
    assert_valid(
        ran(
            chip,
            tasks,
            {
                "a": ("tpc0", 0, 10),
                "b": ("tpc0", 10, 20),
                "c": ("tpc1", 0, 15),
                "g": ("mme0", 5, 14),
                "d": ("dma0", 20, 20),
            },
        )
    )


def test_a_task_missing_from_the_results_is_caught():
    results = ran(tiny(), [add("a"), add("b")], {"a": ("tpc0", 0, 10), "b": ("tpc1", 0, 10)})
    results.start, results.end, results.engine = results.start[:1], results.end[:1], results.engine[:1]
    invalid(results, "a task is missing from the results")


def test_a_task_on_a_kind_it_does_not_allow_is_named():
    results = ran(tiny(), [add("a"), make_task("g", "gemm", [4, 4, 4])], {"a": ("tpc0", 0, 10), "g": ("tpc1", 0, 9)})
    invalid(results, "task 'g' ran on a vector engine; it allows ['matrix']")


def test_a_task_that_ends_before_it_starts_or_starts_before_time_is_named():
    invalid(ran(tiny(), [add("a"), add("b")], {"a": ("tpc0", 0, 10), "b": ("tpc1", 8, 7)}), "task 'b' has start > end")
    invalid(ran(tiny(), [add("a"), add("b")], {"a": ("tpc0", -1, 10), "b": ("tpc1", 0, 7)}), "task 'a' has start > end")


def test_a_task_that_starts_before_its_dependency_ends_is_named_with_both():
    results = ran(
        tiny(),
        [add("a"), add("x"), add("b", deps=["x", "a"])],
        {"a": ("tpc0", 0, 10), "x": ("tpc1", 0, 2), "b": ("tpc1", 5, 12)},
    )
    invalid(results, "task 'b' starts at 5 before its dependency 'a' ends at 10")


def test_two_tasks_at_once_on_one_engine_are_caught_where_the_second_starts():
    # b starts at 5 while a runs until 10 (and ends after it).
    invalid(
        ran(tiny(), [add("a"), add("b")], {"a": ("tpc0", 0, 10), "b": ("tpc0", 5, 15)}),
        "engine tpc0 runs two tasks at once at cycle 5",
    )
    # A short task inside a long one: the short one starts at 5, whatever the order of the tasks.
    invalid(
        ran(tiny(), [add("a"), add("b")], {"a": ("tpc0", 5, 8), "b": ("tpc0", 0, 20)}),
        "engine tpc0 runs two tasks at once at cycle 5",
    )


def test_an_overlap_after_a_clean_start_is_found_and_dated():
    # a, then b after a gap, then c, which starts at 5 while b runs until 10.
    results = ran(
        tiny(), [add("a"), add("b"), add("c")], {"a": ("tpc1", 0, 1), "b": ("tpc1", 2, 10), "c": ("tpc1", 5, 12)}
    )
    invalid(results, "engine tpc1 runs two tasks at once at cycle 5")


def test_engines_that_share_a_unit_count_as_one():
    tasks = [make_task("g", "gemm", [4, 4, 4]), add("a")]
    # The tensor core runs g from 0 to 9; the CUDA core of the same SM starts a at 3.
    invalid(
        ran(sm_chip(), tasks, {"g": ("tc0", 0, 9), "a": ("cc0", 3, 8)}),
        "engine tc0/cc0 runs two tasks at once at cycle 3",
    )
    # Back to back they are fine, and so is the same overlap on the tiny chip's separate MME and TPC.
    assert_valid(ran(sm_chip(), tasks, {"g": ("tc0", 0, 9), "a": ("cc0", 9, 14)}))
    assert_valid(ran(tiny(), tasks, {"g": ("mme0", 0, 9), "a": ("tpc0", 3, 8)}))


def test_a_task_that_takes_no_time_may_run_the_cycle_another_starts_whatever_their_numbering():
    tasks = [make_task("long", "dma", [1000]), make_task("empty", "dma", [1000], bytes_read=0)]
    assert_valid(ran(tiny(), tasks, {"long": ("dma0", 0, 63), "empty": ("dma0", 0, 0)}))
    assert_valid(ran(tiny(), tasks[::-1], {"long": ("dma0", 0, 63), "empty": ("dma0", 0, 0)}))


def test_the_simulation_of_an_empty_transfer_issued_first_is_valid():
    chip = tiny()
    graph = TaskGraph([make_task("long", "dma", [1000]), make_task("empty", "dma", [1000], bytes_read=0)])
    dma0 = chip.instance_names.index("dma0")
    order = [[1, 0] if e == dma0 else [] for e in range(len(chip.instance_names))]
    results = simulate(graph, chip, Schedule(engine=[dma0, dma0], order=order))
    # The empty transfer runs at cycle 0 and takes none; the long one streams 1,000 bytes at 16 per cycle from 0.
    assert results.start.tolist() == [0, 0] and results.end.tolist() == [63, 0]
    assert_valid(results)
