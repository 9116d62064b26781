"""first-free: the simplest list scheduler, a baseline."""

from __future__ import annotations

from ..chip import Chip
from ..costs import CostTable
from ..graph import TaskGraph
from ..planning import list_schedule, preferred_kinds
from ..registry import Scheduler, register
from ..schedule import Schedule


@register
class FirstFree(Scheduler):
    """Each task, in topological order, on the first engine of its preferred kind to become free."""

    name = "first-free"
    description = "topological order, preferred engine kind, earliest-free instance"

    def schedule(self, graph: TaskGraph, chip: Chip, costs: CostTable) -> Schedule:
        kinds = preferred_kinds(graph, chip)
        engine, start = list_schedule(graph, chip, costs, graph.topo_order, kinds.__getitem__)
        return Schedule.from_plan(graph, chip, engine, start, self.name)
