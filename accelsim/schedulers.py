"""Built-in scheduling policies, registered by name."""

from __future__ import annotations

from .chip import Chip
from .costs import CostTable
from .graph import TaskGraph
from .scheduling import Schedule, Scheduler, engines_by_kind, list_schedule, register


@register
class FirstFree(Scheduler):
    """Each task, in topological order, on the first engine of its preferred kind to become free."""

    name = "first-free"
    description = "topological order, preferred engine kind, earliest-free instance"

    def schedule(self, graph: TaskGraph, chip: Chip, costs: CostTable) -> Schedule:
        present = engines_by_kind(chip)
        first_present = {
            allowed: next((k for k in allowed if k in present), allowed[0])
            for allowed in {t.engines for t in graph.tasks}
        }
        preferred = [first_present[t.engines] for t in graph.tasks]
        engine, start = list_schedule(graph, chip, costs, graph.topo_order, preferred.__getitem__)
        return Schedule.from_plan(graph, chip, engine, start, self.name)
