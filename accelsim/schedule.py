"""A scheduler's decisions: which engine instance runs each task, and in what order each engine issues its tasks.

The simulation carries a Schedule out, respecting dependencies; when tasks really start depends on contention the
planner may not have foreseen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .chip import Chip
from .costs import CostTable
from .errors import AccelsimError
from .graph import TaskGraph


@dataclass
class Schedule:
    """A scheduler's decisions: ``engine[i]`` runs task i; ``order[e]`` lists engine e's tasks in issue order."""

    engine: list[int]
    order: list[list[int]]
    scheduler: str = ""
    notes: dict[str, object] = field(default_factory=dict)  # e.g. the matrix/vector split a scheduler chose

    @classmethod
    def from_plan(
        cls,
        graph: TaskGraph,
        chip: Chip,
        engine: Sequence[int],
        planned_start: Sequence[float],
        scheduler: str,
        notes: dict[str, object] | None = None,
    ) -> Schedule:
        """Order each engine's tasks by planned start, ties broken by topological position (never deadlocks)."""
        rank = np.empty(len(graph), dtype=np.int64)
        rank[graph.topo_order] = np.arange(len(graph))
        keys = np.lexsort((rank, np.asarray(planned_start, dtype=np.float64), np.asarray(engine)))
        order: list[list[int]] = [[] for _ in chip.instance_names]
        eng = list(engine)
        for i in keys.tolist():
            order[eng[i]].append(i)
        return cls(eng, order, scheduler, notes or {})

    def validate(self, graph: TaskGraph, chip: Chip, costs: CostTable) -> None:
        """Each task once, on an engine that may run it, in the order its engine lists it."""
        n, engines = len(graph), len(chip.instance_names)
        if len(self.engine) != n or len(self.order) != engines:
            raise AccelsimError(
                f"schedule covers {len(self.engine)} tasks and {len(self.order)} engines; the graph "
                f"has {n} tasks and the chip {engines} engines",
                key=f"scheduler {self.scheduler!r}",
            )
        listed = np.fromiter((i for tasks in self.order for i in tasks), dtype=np.int64)
        listed_on = np.repeat(np.arange(engines), [len(tasks) for tasks in self.order])
        outside = listed[(listed < 0) | (listed >= n)]
        if len(outside):
            raise AccelsimError(
                f"schedule names task index {int(outside[0])}, outside 0..{n - 1}", key=f"scheduler {self.scheduler!r}"
            )
        seen = np.bincount(listed, minlength=n)
        if (seen != 1).any():
            i = int(np.flatnonzero(seen != 1)[0])
            raise AccelsimError(
                f"task {graph.tasks[i].name!r} is scheduled {int(seen[i])} times, must be once",
                key=f"scheduler {self.scheduler!r}",
            )
        assigned = np.asarray(self.engine, dtype=np.int64)
        wrong = np.flatnonzero(assigned[listed] != listed_on)
        if len(wrong):
            i, e = int(listed[wrong[0]]), int(listed_on[wrong[0]])
            raise AccelsimError(
                f"task {graph.tasks[i].name!r} is listed on engine {e} but assigned to {self.engine[i]}",
                key=f"scheduler {self.scheduler!r}",
            )
        groups = np.asarray(chip.instance_group)[assigned]
        ok = costs.compute[np.arange(n), groups] >= 0
        if not ok.all():
            i = int(np.flatnonzero(~ok)[0])
            raise AccelsimError(
                f"task {graph.tasks[i].name!r} is put on {chip.instance_names[self.engine[i]]}, a kind "
                f"it does not allow ({list(graph.tasks[i].engines)})",
                key=f"scheduler {self.scheduler!r}",
            )
