"""balanced: GFormer's matrix/vector split of dual-capable work, made general and searched by simulation."""

from __future__ import annotations

import math

import numpy as np

from ..chip import Chip
from ..costs import CostTable
from ..graph import TaskGraph
from ..planning import (
    dual_capable,
    engines_by_kind,
    place_earliest_finish,
    preferred_kinds,
    priority_order,
    upward_rank,
)
from ..registry import Scheduler, register
from ..schedule import Schedule
from ..simulation import GaveUp, simulate
from .naive import Naive


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
        kinds = preferred_kinds(graph, chip)
        present = engines_by_kind(chip)
        dual = dual_capable(graph, chip)
        kind_cost = self._kind_costs(chip, costs)
        f_star = self.closed_form(kinds, dual, kind_cost, present) if dual else 0.0
        # Each candidate's latency, or None where its simulation gave up once it was sure to be slower than the
        # point the climb stood on (so never the best): the climb, and what it chooses, are as with full runs.
        tried: dict[float, tuple[int | None, Schedule]] = {}

        def evaluate(f: float, beat: int | None = None) -> float:
            f = round(min(1.0, max(0.0, f)), 6)
            if f not in tried:
                plan = self.plan(graph, chip, costs, self.assign(graph, kinds, dual, f), kind_cost)
                tried[f] = (_latency(graph, chip, plan, costs, beat), plan)
            latency = tried[f][0]
            return math.inf if latency is None else latency

        # Hill-climb from the closed form: try a step either side, move to the better, halve the step when
        # neither helps; stop at a 1/16 step or after max_evaluations plans. The extremes are tried too: a few
        # dual tasks round to all or none.
        f, step = round(f_star, 6), 0.25
        here = evaluate(f)
        for end in (0.0, 1.0) if dual else ():
            evaluate(end, int(here))
        while dual and step >= 1 / 16 and len(tried) < self.max_evaluations:
            around = [g for g in (f - step, f + step) if 0.0 <= g <= 1.0]
            best = min(around, key=lambda g: evaluate(g, int(here)), default=f)
            if evaluate(best) < here:
                f, here = round(best, 6), evaluate(best)
            else:
                step /= 2
        f = min(tried, key=lambda x: (evaluate(x), x))
        latency, chosen = tried[f]
        assert latency is not None  # the best was never given up on
        naive = Naive().schedule(graph, chip, costs)
        naive_latency = _latency(graph, chip, naive, costs, latency - 1) if latency else None  # None: no faster
        label = f"f={f:g}"
        if naive_latency is not None:
            label, chosen = "naive", naive
        final_kinds = self.assign(graph, kinds, dual, f) if label != "naive" else kinds
        moved = sum(1 for i in dual if final_kinds[i] == "vector")
        chosen.scheduler = self.name
        chosen.notes = {
            "split": {
                "dual_tasks": len(dual),
                "to_vector": moved,
                "fraction_to_vector": f if label != "naive" else 0.0,
                "closed_form_fraction": round(f_star, 4),
                "chosen": label,
                "candidates": {**{f"f={x:g}": lat for x, (lat, _) in sorted(tried.items())}, "naive": naive_latency},
            }
        }
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
    def closed_form(
        kinds: list[str], dual: list[int], kind_cost: dict[str, np.ndarray], present: dict[str, list[int]]
    ) -> float:
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
    def plan(
        graph: TaskGraph, chip: Chip, costs: CostTable, assigned: list[str], kind_cost: dict[str, np.ndarray]
    ) -> Schedule:
        """Critical-path list schedule: tasks by decreasing upward rank, each on the engine of its assigned kind
        where it can start earliest, filling idle gaps."""
        cost = [float(kind_cost[k][i]) for i, k in enumerate(assigned)]
        order = priority_order(graph, upward_rank(graph, cost))
        groups_of_kind: dict[str, list[int]] = {}
        for g in chip.groups:
            groups_of_kind.setdefault(g.kind, []).append(g.index)
        return place_earliest_finish(graph, chip, costs, order, lambda i: groups_of_kind[assigned[i]], "balanced")


def _latency(graph: TaskGraph, chip: Chip, plan: Schedule, costs: CostTable, beat: int | None) -> int | None:
    """The plan's simulated latency; None when it cannot finish by cycle ``beat`` (not asked: always the latency)."""
    try:
        return simulate(graph, chip, plan, costs, check=False, give_up_after=beat).latency_cycles
    except GaveUp:
        return None
