"""accelsim: a cycle-level simulator of heterogeneous AI accelerators (matrix engines, vector cores, DMA, HBM).

Data flows one way: chip profile + task graph -> scheduler's decisions -> simulation -> results -> reports.
"""

from __future__ import annotations

from . import policies  # registers the built-in schedulers by name
from .chip import Chip, chip_from_dict, load_chip
from .compiler import compile_graph
from .costs import CostTable, compute_cycles, estimate_cycles
from .errors import AccelsimError
from .graph import Task, TaskGraph, graph_from_dict, load_graph, make_task
from .registry import Scheduler, get_scheduler, register, scheduler_names
from .results import Results
from .runner import run
from .schedule import Schedule
from .simulation import simulate
from .systolic import split_gemm_cycles, systolic_cycles

__version__ = "0.1.0"


__all__ = [
    "AccelsimError",
    "Chip",
    "CostTable",
    "compile_graph",
    "Results",
    "Schedule",
    "Scheduler",
    "Task",
    "TaskGraph",
    "chip_from_dict",
    "compute_cycles",
    "estimate_cycles",
    "get_scheduler",
    "graph_from_dict",
    "load_chip",
    "load_graph",
    "make_task",
    "policies",
    "register",
    "run",
    "scheduler_names",
    "simulate",
    "split_gemm_cycles",
    "systolic_cycles",
]
