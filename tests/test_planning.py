"""Stories about what the policies share (accelsim.planning) and Schedule.from_plan, on the tiny chip with cost
tables written by hand, so every planned cycle below is worked out in a comment.

The tiny chip (tests/conftest.py) has three groups: 0 = mme (matrix, engine 0), 1 = tpc (vector, engines 1 and 2),
2 = dma (engine 3); every engine is a unit of its own.
"""

import numpy as np
import pytest

import accelsim
from accelsim import AccelsimError, CostTable, Schedule, TaskGraph, make_task
from accelsim.planning import (
    GapPlanner,
    dual_capable,
    engines_by_kind,
    list_schedule,
    place_earliest_finish,
    preferred_kinds,
    priority_order,
    upward_rank,
)
from accelsim.units import EngineUnits

from conftest import tiny_chip_dict

OPEN = 1 << 62  # GapPlanner's "never closes"


def add(name, deps=(), engines=None):
    return make_task(name, "add", [8], deps=deps, engines=engines)


def table(*estimates):
    """A cost table whose estimate (and compute) per task is the row given: [mme, tpc, dma], -1 = not allowed."""
    est = np.array(estimates, dtype=np.int64)
    return CostTable(compute=est.copy(), estimate=est, stream=np.zeros(len(est), dtype=np.int64))


def chip_of(*groups):
    """The tiny chip with only the engine groups named."""
    d = tiny_chip_dict()
    d["engines"] = {name: d["engines"][name] for name in groups}
    return accelsim.chip_from_dict(d, "cut.toml")


# --- engines and kinds --------------------------------------------------------------------------------------------


def test_engines_by_kind_lists_instance_indices_in_profile_order(tiny_chip):
    assert engines_by_kind(tiny_chip) == {"matrix": [0], "vector": [1, 2], "dma": [3]}


def test_preferred_kind_is_the_first_allowed_kind_the_chip_has(tiny_chip):
    graph = TaskGraph(
        [
            add("plain"),  # ("vector",)
            add("scalar-first", engines=["scalar", "vector"]),  # the chip has no scalar engine: vector
            add("none-here", engines=["gpsimd", "scalar"]),  # neither: the first one named, gpsimd
            make_task("g", "gemm", [4, 4, 4]),  # ("matrix",)
        ]
    )
    assert preferred_kinds(graph, tiny_chip) == ["vector", "vector", "gpsimd", "matrix"]


def test_dual_capable_tasks_are_those_allowing_matrix_and_vector_where_the_chip_has_both():
    graph = TaskGraph(
        [
            add("v"),
            make_task("g", "gemm", [4, 4, 4]),
            make_task("o", "outer_acc", [1, 2, 2, 2]),
            add("vm", engines=["vector", "matrix"]),
            add("vs", engines=["vector", "scalar"]),
        ]
    )
    assert dual_capable(graph, chip_of("mme", "tpc")) == [2, 3]
    assert dual_capable(graph, chip_of("mme", "tpc", "dma")) == [2, 3]
    assert dual_capable(graph, chip_of("mme", "dma")) == []  # no vector core: nothing can choose
    assert dual_capable(graph, chip_of("tpc", "dma")) == []  # no matrix engine either


# --- list scheduling ----------------------------------------------------------------------------------------------


def test_list_schedule_takes_the_earliest_free_engine_of_the_chosen_kind(tiny_chip):
    # On the two tpcs (engines 1, 2), in order a, b, c, d; then e on the mme:
    #   a (10): tpc0 free at 0          -> [0, 10) on 1
    #   b (4):  tpc1 free at 0          -> [0, 4) on 2
    #   c (5):  needs a (ends 10); tpc1 frees first, at 4, but c is ready only at 10 -> [10, 15) on 2
    #   d (3):  tpc0 frees at 10 (tpc1 at 15); d is ready at 0 but waits for the engine -> [10, 13) on 1
    #   e (7, matrix): needs c (ends 15); the mme is free -> [15, 22) on 0
    graph = TaskGraph(
        [add("a"), add("b"), add("c", deps=["a"]), add("d"), make_task("e", "gemm", [4, 4, 4], deps=["c"])]
    )
    costs = table([-1, 10, -1], [-1, 4, -1], [-1, 5, -1], [-1, 3, -1], [7, -1, -1])
    kinds = ["vector", "vector", "vector", "vector", "matrix"]
    engine, start = list_schedule(graph, tiny_chip, costs, [0, 1, 2, 3, 4], kinds.__getitem__)
    assert engine == [1, 2, 2, 1, 0]
    assert start == [0, 0, 10, 10, 15]


def test_list_schedule_reports_a_kind_the_chip_lacks(tiny_chip):
    graph = TaskGraph([add("a", engines=["gpsimd"])])
    with pytest.raises(AccelsimError) as info:
        list_schedule(graph, tiny_chip, table([-1, -1, -1]), [0], lambda i: "gpsimd")
    assert str(info.value) == "task 'a': chip tiny has no gpsimd engine"
    assert info.value.key == "task 'a'"


# --- ranks and priority orders ------------------------------------------------------------------------------------


def test_upward_rank_is_the_longest_cost_path_to_an_exit():
    # a -> b, a -> c; d alone. Exits are their own cost: b 3, c 5, d 4; a = 2 + max(3, 5) = 7.
    graph = TaskGraph([add("a"), add("b", deps=["a"]), add("c", deps=["a"]), add("d")])
    assert upward_rank(graph, [2.0, 3.0, 5.0, 4.0]) == [7.0, 3.0, 5.0, 4.0]


def test_upward_rank_follows_dependencies_not_list_order():
    # Listed backwards: z needs y, y needs x. The graph sorts them (x, y, z: graph order is not a contract, issue
    # 21); x = 1 + (2 + 4) = 7, y = 2 + 4 = 6, z = 4.
    graph = TaskGraph([add("z", deps=["y"]), add("y", deps=["x"]), add("x")])
    assert [t.name for t in graph.tasks] == ["x", "y", "z"]
    assert upward_rank(graph, [1.0, 2.0, 4.0]) == [7.0, 6.0, 4.0]


def test_priority_order_is_by_decreasing_rank_with_ties_in_topological_order():
    # x needs y, so the topological order is y, x, z (Kahn, smallest index first among the ready ones), the
    # order the graph keeps its tasks in (graph order is not a contract: it sorts them, issue 21).
    graph = TaskGraph([add("x", deps=["y"]), add("y"), add("z")])
    assert [t.name for t in graph.tasks] == ["y", "x", "z"]
    assert priority_order(graph, [1.0, 1.0, 9.0]) == [2, 0, 1]  # z first; x and y tie: y before x
    assert priority_order(graph, [5.0, 5.0, 5.0]) == [0, 1, 2]  # all tie: the topological order
    assert priority_order(graph, [1.0, 3.0, 2.0]) == [1, 2, 0]


# --- idle gaps ----------------------------------------------------------------------------------------------------


def test_a_fresh_planner_has_one_open_gap_per_unit():
    gaps = GapPlanner(EngineUnits.from_groups([(1, "sm"), (1, "sm"), (1, None)]))
    assert gaps.gap_starts == [[0], [0]] and gaps.gap_ends == [[OPEN], [OPEN]]
    assert gaps.earliest(2, 5, 10) == 5


def test_engines_sharing_a_unit_share_its_gaps():
    # Engines 0 and 1 are one unit ("sm"); engine 2 is its own.
    gaps = GapPlanner(EngineUnits.from_groups([(1, "sm"), (1, "sm"), (1, None)]))
    gaps.place(0, 0, 10)
    assert gaps.earliest(1, 0, 5) == 10  # engine 0 holds the unit until 10
    assert gaps.earliest(2, 0, 5) == 0
    assert gaps.gap_starts == [[10], [0]]


def test_placing_splits_gaps_and_earliest_finds_the_first_that_fits():
    gaps = GapPlanner(EngineUnits.from_groups([(1, None)]))
    gaps.place(0, 0, 10)  # at the very start of [0, open): nothing left before it
    gaps.place(0, 20, 25)
    gaps.place(0, 40, 50)
    assert gaps.gap_starts == [[10, 25, 50]] and gaps.gap_ends == [[20, 40, OPEN]]
    assert gaps.earliest(0, 0, 10) == 10  # exactly fills [10, 20)
    assert gaps.earliest(0, 0, 12) == 25  # too long for [10, 20), fits [25, 40)
    assert gaps.earliest(0, 0, 16) == 50  # fits neither closed gap
    assert gaps.earliest(0, 5, 3) == 10  # ready at 5, but the first gap opens at 10
    assert gaps.earliest(0, 30, 5) == 30  # ready inside [25, 40): starts when ready
    assert gaps.earliest(0, 20, 3) == 25  # [10, 20) closes as it becomes ready
    assert gaps.earliest(0, 45, 3) == 50
    gaps.place(0, 25, 40)  # exactly fills [25, 40): no empty gaps left behind
    assert gaps.gap_starts == [[10, 50]] and gaps.gap_ends == [[20, OPEN]]
    gaps.place(0, 12, 15)  # inside [10, 20): what is left on either side stays
    assert gaps.gap_starts == [[10, 15, 50]] and gaps.gap_ends == [[12, 20, OPEN]]
    gaps.place(0, 60, 70)  # inside the open gap
    assert gaps.gap_starts == [[10, 15, 50, 70]] and gaps.gap_ends == [[12, 20, 60, OPEN]]


def test_best_picks_the_earliest_start_the_first_engine_on_a_tie():
    gaps = GapPlanner(EngineUnits.from_groups([(3, None)]))
    gaps.place(0, 0, 4)
    gaps.place(1, 0, 10)
    assert gaps.best([0, 1], 0, 5) == (4, 0)  # 4 on engine 0 beats 10 on engine 1
    assert gaps.best([1, 0], 0, 5) == (4, 0)  # whichever is asked first
    assert gaps.best([1, 0, 2], 0, 5) == (0, 2)
    gaps.place(2, 0, 4)
    assert gaps.best([2, 0], 0, 5) == (4, 2)  # both start at 4: the first named keeps it
    assert gaps.best([], 0, 5) == (-1, -1)  # nothing to choose from


# --- earliest finish with insertion -------------------------------------------------------------------------------


def test_earliest_finish_fills_an_idle_gap_left_by_a_dependency(tiny_chip):
    # p on dma0 [0, 8); q needs p: mme0 [8, 13), which leaves mme0 idle over [0, 8). r (8 cycles) fits there
    # exactly: [0, 8). s (1 cycle) finds no gap before 13: [13, 14). mme0 issues r, q, s.
    graph = TaskGraph(
        [
            make_task("p", "dma", [64]),
            make_task("q", "gemm", [4, 4, 4], deps=["p"]),
            make_task("r", "gemm", [4, 4, 4]),
            make_task("s", "gemm", [4, 4, 4]),
        ]
    )
    costs = table([-1, -1, 8], [5, -1, -1], [8, -1, -1], [1, -1, -1])
    groups = [[2], [0], [0], [0]]
    schedule = place_earliest_finish(graph, tiny_chip, costs, [0, 1, 2, 3], groups.__getitem__, "insert")
    assert schedule.engine == [3, 0, 0, 0]
    assert schedule.order == [[2, 1, 3], [], [], [0]]
    assert schedule.scheduler == "insert"


def test_earliest_finish_skips_groups_that_cannot_run_a_task_and_keeps_the_first_on_a_tie(tiny_chip):
    # Each task: 10 cycles on the mme, 30 on a tpc, not on the dma; groups are tried dma, tpc, mme.
    #   t1: tpc finishes at 30, mme at 10            -> mme0 [0, 10)
    #   t2: tpc at 30, mme (free at 10) at 20        -> mme0 [10, 20)
    #   t3: tpc at 30, mme at 30: a tie, the tpc was tried first -> tpc0 [0, 30)
    graph = TaskGraph([add(f"t{k}", engines=["vector", "matrix"]) for k in (1, 2, 3)])
    costs = table([10, 30, -1], [10, 30, -1], [10, 30, -1])
    schedule = place_earliest_finish(graph, tiny_chip, costs, [0, 1, 2], lambda i: [2, 1, 0], "tie")
    assert schedule.engine == [0, 0, 1]
    assert schedule.order == [[0, 1], [2], [], []]


def test_earliest_finish_places_a_task_of_zero_cycles(tiny_chip):
    graph = TaskGraph([make_task("g", "gemm", [4, 4, 4])])
    schedule = place_earliest_finish(graph, tiny_chip, table([0, -1, -1]), [0], lambda i: [0], "zero")
    assert schedule.engine == [0] and schedule.order == [[0], [], [], []]


def test_earliest_finish_reports_a_task_no_offered_group_can_run(tiny_chip):
    graph = TaskGraph([add("a")])
    with pytest.raises(AccelsimError) as info:
        place_earliest_finish(graph, tiny_chip, table([-1, 3, -1]), [0], lambda i: [0, 2], "none")
    assert str(info.value) == "task 'a': no engine on chip tiny can run it"
    assert info.value.key == "task 'a'"


# --- Schedule.from_plan -------------------------------------------------------------------------------------------


def test_from_plan_orders_each_engine_by_planned_start_ties_in_topological_order(tiny_chip):
    # x needs y (topological order y, x, z, the order the graph keeps). On tpc0: z planned at 0, x and y both at
    # 5: y before x.
    graph = TaskGraph([add("x", deps=["y"]), add("y"), add("z"), add("w")])
    assert [t.name for t in graph.tasks] == ["y", "x", "z", "w"]
    schedule = Schedule.from_plan(graph, tiny_chip, [1, 1, 1, 2], [5, 5, 0, 7], "planned", {"note": 1})
    assert schedule.engine == [1, 1, 1, 2]
    assert schedule.order == [[], [2, 0, 1], [3], []]
    assert schedule.scheduler == "planned" and schedule.notes == {"note": 1}


def test_from_plan_compares_fractional_planned_starts(tiny_chip):
    graph = TaskGraph([add("a"), add("b"), add("c")])
    schedule = Schedule.from_plan(graph, tiny_chip, [2, 2, 2], [2.5, 2.25, 0.5], "halves")
    assert schedule.order == [[], [], [2, 1, 0], []]
    assert schedule.notes == {}
