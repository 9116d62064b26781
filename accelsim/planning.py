"""What the built-in policies share: engines by kind, ranks and priority orders, and list scheduling with or without
insertion into idle gaps. All of it plans with uncontended estimates (CostTable.estimate); the simulation then
finds out what contention does.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from .chip import Chip
from .costs import CostTable
from .errors import AccelsimError
from .graph import TaskGraph
from .schedule import Schedule
from .units import EngineUnits


def engines_by_kind(chip: Chip) -> dict[str, list[int]]:
    """Engine instance indices of each kind, in profile order."""
    out: dict[str, list[int]] = {}
    for e, g in enumerate(chip.instance_group):
        out.setdefault(chip.groups[g].kind, []).append(e)
    return out


def list_schedule(
    graph: TaskGraph, chip: Chip, costs: CostTable, order: Sequence[int], choose_kind: Callable[[int], str]
) -> tuple[list[int], list[int]]:
    """Plan tasks in ``order`` onto the earliest-free engine of the kind ``choose_kind(i)`` names.

    Returns (engine per task, planned start per task) using uncontended estimates.
    """
    by_kind = engines_by_kind(chip)
    free = {k: [(0, e) for e in v] for k, v in by_kind.items()}
    group_of = chip.instance_group
    columns = [costs.estimate[:, g].tolist() for g in range(len(chip.groups))]
    n = len(graph)
    finish = [0] * n
    engine = [0] * n
    start = [0] * n
    preds = graph.preds
    heappop, heappush = heapq.heappop, heapq.heappush
    for i in order:
        kind = choose_kind(i)
        heap = free.get(kind)
        if not heap:
            raise AccelsimError(f"chip {chip.name} has no {kind} engine", key=f"task {graph.tasks[i].name!r}")
        ready = 0
        for p in preds[i]:
            if finish[p] > ready:
                ready = finish[p]
        at, e = heappop(heap)
        s = ready if ready > at else at
        finish[i] = f = s + columns[group_of[e]][i]
        engine[i] = e
        start[i] = s
        heappush(heap, (f, e))
    return engine, start


def preferred_kinds(graph: TaskGraph, chip: Chip) -> list[str]:
    """Each task's default engine kind: the first kind it allows that the chip has."""
    present = engines_by_kind(chip)
    first = {
        allowed: next((k for k in allowed if k in present), allowed[0]) for allowed in {t.engines for t in graph.tasks}
    }
    return [first[t.engines] for t in graph.tasks]


def upward_rank(graph: TaskGraph, cost: list[float]) -> list[float]:
    """rank(i) = cost(i) + max over successors of rank(s): the longest path from i to an exit."""
    rank = [0.0] * len(graph)
    succs = graph.succs
    for i in reversed(graph.topo_order):
        rank[i] = cost[i] + max((rank[s] for s in succs[i]), default=0.0)
    return rank


def priority_order(graph: TaskGraph, rank: list[float]) -> list[int]:
    """Tasks by decreasing rank; ties in topological order (so a task never comes before its predecessors)."""
    position = np.empty(len(graph), dtype=np.int64)
    position[graph.topo_order] = np.arange(len(graph))
    return np.lexsort((position, -np.asarray(rank))).tolist()


class GapPlanner:
    """Engine units' planned idle gaps, for earliest-finish-time placement with insertion into them.

    Each engine keeps its idle intervals (the last one open-ended), sorted: a densely packed engine has few,
    so finding the earliest gap that fits stays cheap however many tasks it holds.
    """

    OPEN = 1 << 62

    def __init__(self, units: EngineUnits) -> None:
        """Gaps are kept per unit (engines sharing a unit share its gaps: accelsim.units)."""
        self.unit_of = units.unit_of
        self.gap_starts: list[list[int]] = [[0] for _ in range(len(units))]
        self.gap_ends: list[list[int]] = [[self.OPEN] for _ in range(len(units))]

    def earliest(self, e: int, ready: int, dur: int) -> int:
        """Earliest start >= ready where [start, start + dur) fits in one of engine e's idle gaps."""
        u = self.unit_of[e]
        starts, ends = self.gap_starts[u], self.gap_ends[u]
        k = bisect.bisect_right(ends, ready)  # gaps that close by ``ready`` cannot host it
        while True:
            s = starts[k] if starts[k] > ready else ready
            if s + dur <= ends[k]:
                return s
            k += 1

    def best(self, engines: list[int], ready: int, dur: int) -> tuple[int, int]:
        """(start, engine) with the earliest start among identical engines; stops at the first that can start at
        ``ready``, as none can do better."""
        best_s, best_e = -1, -1
        for e in engines:
            s = self.earliest(e, ready, dur)
            if best_e < 0 or s < best_s:
                best_s, best_e = s, e
                if s == ready:
                    break
        return best_s, best_e

    def place(self, e: int, start: int, end: int) -> None:
        """Mark [start, end) busy: it lies inside one gap, which splits into what is left on either side."""
        u = self.unit_of[e]
        starts, ends = self.gap_starts[u], self.gap_ends[u]
        k = bisect.bisect_right(starts, start) - 1
        a, b = starts[k], ends[k]
        left = [(a, start)] if start > a else []
        right = [(end, b)] if end < b else []
        starts[k : k + 1] = [x for x, _ in left + right]
        ends[k : k + 1] = [y for _, y in left + right]


def place_earliest_finish(
    graph: TaskGraph,
    chip: Chip,
    costs: CostTable,
    order: Sequence[int],
    groups_for: Callable[[int], Iterable[int]],
    name: str,
) -> Schedule:
    """List scheduling with insertion: take tasks in ``order``; put each on the engine, among the groups
    ``groups_for(i)`` allows, where it finishes earliest, filling idle gaps (HEFT's placement, balanced's too)."""
    members = [list(range(g.first_instance, g.first_instance + g.count)) for g in chip.groups]
    gap = GapPlanner(chip.units)
    est = costs.estimate
    finish, engine, start = [0] * len(graph), [0] * len(graph), [0] * len(graph)
    for i in order:
        ready = max((finish[p] for p in graph.preds[i]), default=0)
        best = None
        for g in groups_for(i):
            dur = int(est[i, g])
            if dur < 0:
                continue
            s, e = gap.best(members[g], ready, dur)
            if best is None or s + dur < best[0]:
                best = (s + dur, s, e)
        if best is None:
            raise AccelsimError(f"no engine on chip {chip.name} can run it", key=f"task {graph.tasks[i].name!r}")
        f, s, e = best
        gap.place(e, s, f)
        finish[i], engine[i], start[i] = f, e, s
    return Schedule.from_plan(graph, chip, engine, start, name)


def dual_capable(graph: TaskGraph, chip: Chip) -> list[int]:
    """Tasks that may run on matrix engines or vector cores, where the chip has both."""
    if not {"matrix", "vector"} <= set(engines_by_kind(chip)):
        return []
    return [i for i, t in enumerate(graph.tasks) if "matrix" in t.engines and "vector" in t.engines]
