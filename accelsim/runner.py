"""One run, end to end: the chip's compiler, the scheduler's decisions, the simulation.

Every path that simulates a graph comes through here or through accelsim.compare, so every graph (a preset, a
hand-written file, one built in Python, a validation record) is compiled for the chip before it is scheduled.
"""

from __future__ import annotations

from .chip import Chip, load_chip
from .compiler import compile_graph
from .costs import CostTable
from .graph import TaskGraph
from .registry import DEFAULT_SCHEDULER, Scheduler, get_scheduler
from .results import Results
from .simulation import simulate


def run(chip: Chip | str, graph: TaskGraph, scheduler: str | Scheduler = DEFAULT_SCHEDULER) -> Results:
    """Compile ``graph`` for ``chip``, schedule it with the named policy and simulate it."""
    chip = load_chip(chip) if isinstance(chip, str) else chip
    compiled = compile_graph(graph, chip).graph
    policy = get_scheduler(scheduler)
    costs = CostTable.build(compiled, chip)
    schedule = policy.schedule(compiled, chip, costs)
    return simulate(compiled, chip, schedule, costs)
