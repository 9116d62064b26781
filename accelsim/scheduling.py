"""The scheduler interface and registry: a scheduler is a policy object that decides each task's engine and order.

A scheduler sees the task graph, the chip and the cost table and returns a Schedule: for every engine instance,
the tasks it runs in issue order. The simulation then carries that out, respecting dependencies; when tasks
really start depends on contention the planner may not have foreseen.
"""

from __future__ import annotations

import heapq
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

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
    def from_plan(cls, graph: TaskGraph, chip: Chip, engine: Sequence[int], planned_start: Sequence[float],
                  scheduler: str, notes: dict[str, object] | None = None) -> "Schedule":
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
            raise AccelsimError(f"schedule covers {len(self.engine)} tasks and {len(self.order)} engines; the graph "
                                f"has {n} tasks and the chip {engines} engines", key=f"scheduler {self.scheduler!r}")
        listed = np.fromiter((i for tasks in self.order for i in tasks), dtype=np.int64)
        listed_on = np.repeat(np.arange(engines), [len(tasks) for tasks in self.order])
        if len(listed) and (listed.min() < 0 or listed.max() >= n):
            raise AccelsimError(f"schedule names task index {int(listed.max())}, outside 0..{n - 1}",
                                key=f"scheduler {self.scheduler!r}")
        seen = np.bincount(listed, minlength=n)
        if (seen != 1).any():
            i = int(np.flatnonzero(seen != 1)[0])
            raise AccelsimError(f"task {graph.tasks[i].name!r} is scheduled {int(seen[i])} times, must be once",
                                key=f"scheduler {self.scheduler!r}")
        assigned = np.asarray(self.engine, dtype=np.int64)
        wrong = np.flatnonzero(assigned[listed] != listed_on)
        if len(wrong):
            i, e = int(listed[wrong[0]]), int(listed_on[wrong[0]])
            raise AccelsimError(f"task {graph.tasks[i].name!r} is listed on engine {e} but assigned to "
                                f"{self.engine[i]}", key=f"scheduler {self.scheduler!r}")
        groups = np.asarray(chip.instance_group)[np.asarray(self.engine)]
        ok = costs.compute[np.arange(n), groups] >= 0
        if not ok.all():
            i = int(np.flatnonzero(~ok)[0])
            raise AccelsimError(f"task {graph.tasks[i].name!r} is put on {chip.instance_names[self.engine[i]]}, a kind "
                                f"it does not allow ({list(graph.tasks[i].engines)})",
                                key=f"scheduler {self.scheduler!r}")


class Scheduler(ABC):
    """A scheduling policy. Subclass, set ``name``, implement ``schedule`` and decorate with ``@register``."""

    name: str = ""
    description: str = ""

    @abstractmethod
    def schedule(self, graph: TaskGraph, chip: Chip, costs: CostTable) -> Schedule:
        """Decide every task's engine instance and each engine's issue order."""


SCHEDULERS: dict[str, type[Scheduler]] = {}
S = TypeVar("S", bound=type[Scheduler])


def register(cls: S) -> S:
    """Class decorator that makes a scheduler available by its ``name`` (CLI ``--scheduler NAME`` included)."""
    if not cls.name:
        raise AccelsimError("a scheduler class needs a non-empty `name`", key=cls.__qualname__)
    SCHEDULERS[cls.name] = cls
    return cls


def get_scheduler(name: str | Scheduler) -> Scheduler:
    """A scheduler instance by registered name (or the instance itself)."""
    if isinstance(name, Scheduler):
        return name
    _load_builtin()
    cls = SCHEDULERS.get(name)
    if cls is None:
        raise AccelsimError(f"unknown scheduler {name!r}; registered: {', '.join(sorted(SCHEDULERS))}",
                            key="scheduler")
    return cls()


def scheduler_names() -> list[str]:
    _load_builtin()
    return sorted(SCHEDULERS)


def load_plugin(spec: str) -> None:
    """Import a module (dotted name) or a ``.py`` file so the schedulers it ``@register``s become available."""
    import importlib
    import importlib.util
    from pathlib import Path

    path = Path(spec)
    if spec.endswith(".py"):
        if not path.exists():
            raise AccelsimError("plugin file not found", source=spec)
        module_spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(module_spec)  # type: ignore[arg-type]
        module_spec.loader.exec_module(module)  # type: ignore[union-attr]
        return
    try:
        importlib.import_module(spec)
    except ModuleNotFoundError as exc:
        raise AccelsimError(f"cannot import plugin module ({exc})", source=spec) from None


def _load_builtin() -> None:
    from . import schedulers  # noqa: F401  (registers the built-in policies)


def engines_by_kind(chip: Chip) -> dict[str, list[int]]:
    """Engine instance indices of each kind, in profile order."""
    out: dict[str, list[int]] = {}
    for e, g in enumerate(chip.instance_group):
        out.setdefault(chip.groups[g].kind, []).append(e)
    return out


def list_schedule(graph: TaskGraph, chip: Chip, costs: CostTable, order: Sequence[int],
                  choose_kind: Callable[[int], str]) -> tuple[list[int], list[int]]:
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
