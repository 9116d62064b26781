"""Built-in scheduling policies, registered by name: first-free, naive, balanced and heft."""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from .chip import Chip
from .costs import CostTable
from .graph import TaskGraph
from .scheduling import Schedule, Scheduler, engines_by_kind, list_schedule, register


def preferred_kinds(graph: TaskGraph, chip: Chip) -> list[str]:
    """Each task's default engine kind: the first kind it allows that the chip has."""
    present = engines_by_kind(chip)
    first = {allowed: next((k for k in allowed if k in present), allowed[0]) for allowed in {t.engines for t in
                                                                                            graph.tasks}}
    return [first[t.engines] for t in graph.tasks]


@register
class FirstFree(Scheduler):
    """Each task, in topological order, on the first engine of its preferred kind to become free."""

    name = "first-free"
    description = "topological order, preferred engine kind, earliest-free instance"

    def schedule(self, graph: TaskGraph, chip: Chip, costs: CostTable) -> Schedule:
        kinds = preferred_kinds(graph, chip)
        engine, start = list_schedule(graph, chip, costs, graph.topo_order, kinds.__getitem__)
        return Schedule.from_plan(graph, chip, engine, start, self.name)


@register
class Naive(Scheduler):
    """How a simple compiler maps a model: every op on its default engine kind (matrix products on matrix engines,
    the rest on vector cores), nothing moved between kinds, and each kind's tasks issued strictly in program
    order: a task never starts before the task issued before it on the same kind."""

    name = "naive"
    description = "default engine kind, in-order issue per kind"

    def schedule(self, graph: TaskGraph, chip: Chip, costs: CostTable) -> Schedule:
        kinds = preferred_kinds(graph, chip)
        by_kind = engines_by_kind(chip)
        free = {k: [0] * len(v) for k, v in by_kind.items()}
        last_issue = dict.fromkeys(by_kind, 0)
        group_of = chip.instance_group
        columns = [costs.estimate[:, g].tolist() for g in range(len(chip.groups))]
        finish, engine, start = [0] * len(graph), [0] * len(graph), [0] * len(graph)
        for i in graph.topo_order:
            k = kinds[i]
            ready = max((finish[p] for p in graph.preds[i]), default=0)
            slots = free[k]
            slot = min(range(len(slots)), key=slots.__getitem__)
            s = max(ready, slots[slot], last_issue[k])
            e = by_kind[k][slot]
            finish[i] = slots[slot] = s + columns[group_of[e]][i]
            last_issue[k], engine[i], start[i] = s, e, s
        return Schedule.from_plan(graph, chip, engine, start, self.name)


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
    """Engines' planned idle gaps, for earliest-finish-time placement with insertion into them.

    Each engine keeps its idle intervals (the last one open-ended), sorted: a densely packed engine has few,
    so finding the earliest gap that fits stays cheap however many tasks it holds.
    """

    OPEN = 1 << 62

    def __init__(self, resource: Sequence[int]) -> None:
        """``resource[e]``: what engine e occupies (engines sharing a unit share one, Chip.instance_resource)."""
        self.resource = list(resource)
        n = max(self.resource, default=-1) + 1
        self.gap_starts: list[list[int]] = [[0] for _ in range(n)]
        self.gap_ends: list[list[int]] = [[self.OPEN] for _ in range(n)]

    def earliest(self, e: int, ready: int, dur: int) -> int:
        """Earliest start >= ready where [start, start + dur) fits in one of engine e's idle gaps."""
        r = self.resource[e]
        starts, ends = self.gap_starts[r], self.gap_ends[r]
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
        r = self.resource[e]
        starts, ends = self.gap_starts[r], self.gap_ends[r]
        k = bisect.bisect_right(starts, start) - 1
        a, b = starts[k], ends[k]
        left = [(a, start)] if start > a else []
        right = [(end, b)] if end < b else []
        starts[k:k + 1] = [x for x, _ in left + right]
        ends[k:k + 1] = [y for _, y in left + right]


def place_earliest_finish(graph: TaskGraph, chip: Chip, costs: CostTable, order: Sequence[int],
                          groups_for: Callable[[int], Iterable[int]], name: str) -> Schedule:
    """List scheduling with insertion: take tasks in ``order``; put each on the engine, among the groups
    ``groups_for(i)`` allows, where it finishes earliest, filling idle gaps (HEFT's placement, balanced's too)."""
    members = [list(range(g.first_instance, g.first_instance + g.count)) for g in chip.groups]
    gap = GapPlanner(chip.instance_resource)
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
        f, s, e = best  # type: ignore[misc]
        gap.place(e, s, f)
        finish[i], engine[i], start[i] = f, e, s
    return Schedule.from_plan(graph, chip, engine, start, name)


def dual_capable(graph: TaskGraph, chip: Chip) -> list[int]:
    """Tasks that may run on matrix engines or vector cores, where the chip has both."""
    if not {"matrix", "vector"} <= set(engines_by_kind(chip)):
        return []
    return [i for i, t in enumerate(graph.tasks) if "matrix" in t.engines and "vector" in t.engines]


@register
class Balanced(Scheduler):
    """GFormer's idea made general: split the work that may run on either engine kind so both kinds finish
    together, and list-schedule by critical path so matrix and vector work overlap.

    The split: with per-engine loads L_m and L_v of the work that can only go one way, and A (B) the summed cost
    of the dual-capable work on matrix (vector) engines, giving a fraction f of it to the vector cores equalises
    the two kinds at  f* = (L_m + A/n_m - L_v) / (A/n_m + B/n_v)  (clipped to [0, 1]). Loads are not the whole
    story (dependencies, memory contention), so the closed form seeds a search: from f*, fractions a step of 1/4
    either side are planned and simulated, the search moves to the faster and halves the step when neither is
    faster (down to 1/16, at most ``max_evaluations`` plans); f = 0 and f = 1 are always tried too, as with few
    dual tasks every fraction rounds to all or none. The fastest is kept. Within each task group (an attention
    layer's forward or backward pass) the chosen fraction of dual tasks is spread evenly, as GFormer's per-head
    split does.
    The naive schedule is one of the candidates, so balanced is never slower than naive.
    """

    name = "balanced"
    description = "split dual-capable work to equalise matrix and vector finish times; critical-path list schedule"
    max_evaluations = 7

    def schedule(self, graph: TaskGraph, chip: Chip, costs: CostTable) -> Schedule:
        from .simulation import simulate

        kinds = preferred_kinds(graph, chip)
        present = engines_by_kind(chip)
        dual = dual_capable(graph, chip)
        kind_cost = self._kind_costs(chip, costs)
        f_star = self.closed_form(kinds, dual, kind_cost, present) if dual else 0.0
        tried: dict[float, tuple[int, Schedule]] = {}

        def evaluate(f: float) -> int:
            f = round(min(1.0, max(0.0, f)), 6)
            if f not in tried:
                plan = self.plan(graph, chip, costs, self.assign(graph, kinds, dual, f), kind_cost)
                tried[f] = (simulate(graph, chip, plan, costs, check=False).latency_cycles, plan)
            return tried[f][0]

        # Hill-climb from the closed form: try a step either side, move to the better, halve the step when
        # neither helps; stop at a 1/16 step or after max_evaluations plans.
        f, step = round(f_star, 6), 0.25
        for end in ((0.0, 1.0) if dual else ()):  # the extremes too: a few dual tasks round to all or none
            evaluate(end)
        evaluate(f)
        while dual and step >= 1 / 16 and len(tried) < self.max_evaluations:
            around = [g for g in (f - step, f + step) if 0.0 <= g <= 1.0]
            best = min(around, key=evaluate, default=f)
            if evaluate(best) < evaluate(f):
                f = round(best, 6)
            else:
                step /= 2
        naive = Naive().schedule(graph, chip, costs)
        naive_latency = simulate(graph, chip, naive, costs, check=False).latency_cycles
        f = min(tried, key=lambda x: (tried[x][0], x))
        latency, chosen = tried[f]
        label = f"f={f:g}"
        if naive_latency < latency:
            label, chosen = "naive", naive
        final_kinds = self.assign(graph, kinds, dual, f) if label != "naive" else kinds
        moved = sum(1 for i in dual if final_kinds[i] == "vector")
        chosen.scheduler = self.name
        chosen.notes = {"split": {
            "dual_tasks": len(dual), "to_vector": moved, "fraction_to_vector": f if label != "naive" else 0.0,
            "closed_form_fraction": round(f_star, 4), "chosen": label,
            "candidates": {**{f"f={x:g}": lat for x, (lat, _) in sorted(tried.items())}, "naive": naive_latency}}}
        return chosen

    def with_fraction(self, graph: TaskGraph, chip: Chip, costs: CostTable, f: float) -> Schedule:
        """The plan for a fixed fraction f of the dual-capable work on the vector cores, without the search (for
        sweeps such as notebooks/4_gformer_partition.ipynb)."""
        kinds = preferred_kinds(graph, chip)
        dual = dual_capable(graph, chip)
        plan = self.plan(graph, chip, costs, self.assign(graph, kinds, dual, f), self._kind_costs(chip, costs))
        plan.notes = {"split": {"dual_tasks": len(dual), "fraction_to_vector": f}}
        return plan

    @staticmethod
    def _kind_costs(chip: Chip, costs: CostTable) -> dict[str, np.ndarray]:
        """Per task, the uncontended cost on each kind (its fastest group of that kind; -1 where not allowed)."""
        out: dict[str, np.ndarray] = {}
        for g in chip.groups:
            col = costs.estimate[:, g.index]
            if g.kind in out:
                prev = out[g.kind]
                both = (prev >= 0) & (col >= 0)
                out[g.kind] = np.where(both, np.minimum(prev, col), np.maximum(prev, col))
            else:
                out[g.kind] = col.copy()
        return out

    @staticmethod
    def closed_form(kinds: list[str], dual: list[int], kind_cost: dict[str, np.ndarray],
                    present: dict[str, list[int]]) -> float:
        dual_set = set(dual)
        n_m, n_v = len(present["matrix"]), len(present["vector"])
        load = {"matrix": 0.0, "vector": 0.0}
        for i, k in enumerate(kinds):
            if i not in dual_set and k in load:
                load[k] += float(kind_cost[k][i])
        a = float(kind_cost["matrix"][dual].sum())
        b = float(kind_cost["vector"][dual].sum())
        denom = a / n_m + b / n_v
        if denom <= 0:
            return 0.0
        f = (load["matrix"] / n_m + a / n_m - load["vector"] / n_v) / denom
        return min(1.0, max(0.0, f))

    @staticmethod
    def assign(graph: TaskGraph, kinds: list[str], dual: list[int], f: float) -> list[str]:
        """Give a fraction f of each group's dual tasks to the vector cores, spread evenly (Bresenham)."""
        out = list(kinds)
        by_group: dict[str, list[int]] = {}
        for i in dual:
            out[i] = "matrix"
            by_group.setdefault(graph.tasks[i].group, []).append(i)
        for members in by_group.values():
            for j, i in enumerate(members):
                if math.floor((j + 1) * f + 1e-9) > math.floor(j * f + 1e-9):
                    out[i] = "vector"
        return out

    @staticmethod
    def plan(graph: TaskGraph, chip: Chip, costs: CostTable, assigned: list[str],
             kind_cost: dict[str, np.ndarray]) -> Schedule:
        """Critical-path list schedule: tasks by decreasing upward rank, each on the engine of its assigned kind
        where it can start earliest, filling idle gaps."""
        cost = [float(kind_cost[k][i]) for i, k in enumerate(assigned)]
        order = priority_order(graph, upward_rank(graph, cost))
        groups_of_kind: dict[str, list[int]] = {}
        for g in chip.groups:
            groups_of_kind.setdefault(g.kind, []).append(g.index)
        return place_earliest_finish(graph, chip, costs, order, lambda i: groups_of_kind[assigned[i]], "balanced")


@register
class Heft(Scheduler):
    """HEFT (Topcuoglu, Hariri and Wu, 2002): tasks by decreasing upward rank (mean cost over the engines that may
    run them; no communication cost, as all engines share HBM), each placed on the engine that finishes it
    earliest, inserted into an idle gap when one is long enough. O(tasks x engines x gaps): for graphs of
    hundreds of thousands of tasks, prefer balanced."""

    name = "heft"
    description = "upward rank, earliest finish time with insertion"

    def schedule(self, graph: TaskGraph, chip: Chip, costs: CostTable) -> Schedule:
        est = costs.estimate
        allowed = est >= 0
        counts = np.array([g.count for g in chip.groups], dtype=float)
        weights = np.where(allowed, counts, 0.0)
        mean = (np.where(allowed, est, 0) * weights).sum(axis=1) / weights.sum(axis=1)
        order = priority_order(graph, upward_rank(graph, mean.tolist()))
        return place_earliest_finish(graph, chip, costs, order, lambda i: np.flatnonzero(allowed[i]).tolist(),
                                     self.name)
