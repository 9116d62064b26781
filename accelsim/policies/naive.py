"""naive: what a simple compiler does, the baseline the other policies are measured against."""

from __future__ import annotations

from ..chip import Chip
from ..costs import CostTable
from ..graph import TaskGraph
from ..planning import engines_by_kind, preferred_kinds
from ..registry import Scheduler, register
from ..schedule import Schedule


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
