"""One run, end to end: the chip's compiler, the scheduler's decisions, the simulation.

Every path that simulates a graph comes through here (``run``; accelsim.compare and accelsim.explicit through
``prepare``), so every graph (a preset, a hand-written file, one built in Python, a validation record) is compiled
for the chip and costed before it is scheduled.
"""

from __future__ import annotations

from dataclasses import dataclass

from .chip import Chip, load_chip
from .compiler import compile_graph
from .costs import CostTable
from .graph import TaskGraph
from .registry import DEFAULT_SCHEDULER, Scheduler, get_scheduler
from .results import Results
from .schedule import Schedule
from .simulation import simulate


@dataclass(frozen=True)
class Prepared:
    """A graph compiled for a chip and its cost table: what every schedule and simulation of it shares (compare
    runs several schedulers on one; explicit simulates one schedule on many cards)."""

    chip: Chip
    graph: TaskGraph  # as compiled
    costs: CostTable

    def schedule(self, scheduler: str | Scheduler = DEFAULT_SCHEDULER) -> Schedule:
        """The named policy's decisions for the compiled graph."""
        return get_scheduler(scheduler).schedule(self.graph, self.chip, self.costs)

    def simulate(self, scheduler: str | Scheduler = DEFAULT_SCHEDULER) -> Results:
        """Schedule with the named policy and simulate."""
        return simulate(self.graph, self.chip, self.schedule(scheduler), self.costs)


def prepare(chip: Chip, graph: TaskGraph) -> Prepared:
    """Compile ``graph`` for ``chip`` and cost every task on every engine group."""
    compiled = compile_graph(graph, chip).graph
    return Prepared(chip, compiled, CostTable.build(compiled, chip))


def run(chip: Chip | str, graph: TaskGraph, scheduler: str | Scheduler = DEFAULT_SCHEDULER) -> Results:
    """Compile ``graph`` for ``chip``, schedule it with the named policy and simulate it."""
    chip = load_chip(chip) if isinstance(chip, str) else chip
    return prepare(chip, graph).simulate(scheduler)
