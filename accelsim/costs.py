"""Cost models: how many chip-clock cycles a task computes for on one engine of a group. Pure functions.

Compute and memory are separate: ``compute_cycles`` is the engine's own work; the bytes a task moves are charged
by the memory model (accelsim.memory) during simulation, where HBM bandwidth is shared. ``estimate_cycles`` is
the uncontended roofline max(dispatch + compute, bytes / full HBM bandwidth) that schedulers plan with; it is
exactly what the simulation gives a task that runs alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .chip import Chip, DmaEngines, EngineGroup, MatrixEngines, VectorEngines
from .errors import AccelsimError
from .graph import Task, TaskGraph
from .ops import OPS, vector_instructions
from .systolic import systolic_cycles

INFEASIBLE = -1


def matrix_engine_cycles(task: Task, spec: MatrixEngines) -> int:
    """Systolic cycles (SCALE-Sim's model) for a matrix op, scaled by the dtype's MAC rate; -1 if it cannot run."""
    op_spec = OPS[task.op]
    macs = spec.macs_per_cycle.get(task.dtype)  # type: ignore[call-overload]
    if op_spec.category != "matrix" or macs is None:
        return INFEASIBLE
    r, c, flow = spec.rows, spec.cols, spec.dataflow
    if task.op == "gemm":
        m, k, n = task.shape
        cycles = systolic_cycles(m, k, n, r, c, flow)
    elif task.op == "bmm":
        b, m, k, n = task.shape
        cycles = b * systolic_cycles(m, k, n, r, c, flow)
    else:  # outer_acc: sum_i k_i v_i^T over n tokens is (dk x n) @ (n x dv)
        b, n, dk, dv = task.shape
        cycles = b * systolic_cycles(dk, n, dv, r, c, flow)
    # The array is rows x cols MACs at the densest dtype; a dtype with fewer MACs per cycle takes longer.
    return math.ceil(cycles * (r * c) / macs) if macs < r * c else cycles


def vector_engine_cycles(task: Task, spec: VectorEngines, overrides: dict[str, float] | None = None) -> int:
    """SIMD cycles: instructions over lanes and issue width, plus the pipeline latency of each dependent pass."""
    op_spec = OPS[task.op]
    lanes = spec.lanes.get(task.dtype)  # type: ignore[call-overload]
    if op_spec.category == "dma" or lanes is None:
        return INFEASIBLE
    instructions = vector_instructions(task.op, task.shape, overrides)
    issue = math.ceil(instructions / (lanes * spec.vector_issue_per_cycle))
    return issue + spec.pipeline_latency_cycles * op_spec.dependent_steps


def dma_engine_cycles(task: Task, spec: DmaEngines) -> int:
    """A DMA channel moves its bytes at its own rate (HBM sharing is the memory model's business)."""
    if OPS[task.op].category != "dma":
        return INFEASIBLE
    return math.ceil(task.bytes / spec.bytes_per_cycle)


def compute_cycles(task: Task, group: EngineGroup, chip: Chip) -> int:
    """Chip-clock cycles one engine of ``group`` computes ``task`` for, or -1 where it cannot run it."""
    if group.kind not in task.engines:
        return INFEASIBLE
    spec = group.spec
    if isinstance(spec, MatrixEngines):
        own = matrix_engine_cycles(task, spec)
    elif isinstance(spec, VectorEngines):
        own = vector_engine_cycles(task, spec, chip.spec.vector_instructions)
    else:
        own = dma_engine_cycles(task, spec)
    if own < 0 or spec.clock_ghz is None or spec.clock_ghz == chip.clock_ghz:
        return own
    return math.ceil(own * chip.clock_ghz / spec.clock_ghz)


def estimate_cycles(task: Task, group: EngineGroup, chip: Chip) -> int:
    """Uncontended duration: roofline of (dispatch + compute) and HBM traffic. -1 where it cannot run."""
    own = compute_cycles(task, group, chip)
    if own < 0:
        return INFEASIBLE
    memory = math.ceil(task.bytes / chip.hbm_bytes_per_cycle)
    return max(chip.spec.dispatch_overhead_cycles + own, memory)


@dataclass(frozen=True)
class CostTable:
    """Per task and engine group: compute cycles and uncontended estimates (-1 = not allowed). Built once per run."""

    compute: np.ndarray  # int64 [tasks, groups]
    estimate: np.ndarray  # int64 [tasks, groups]
    hbm_bytes: np.ndarray  # int64 [tasks]

    @classmethod
    def build(cls, graph: TaskGraph, chip: Chip) -> "CostTable":
        groups = chip.groups
        n = len(graph.tasks)
        compute = np.full((n, len(groups)), INFEASIBLE, dtype=np.int64)
        memo: dict[tuple, tuple[int, ...]] = {}
        for i, t in enumerate(graph.tasks):
            key = (t.op, t.shape, t.dtype, t.engines, t.bytes_read + t.bytes_written)
            row = memo.get(key)
            if row is None:
                row = tuple(compute_cycles(t, g, chip) for g in groups)
                memo[key] = row
                if max(row) < 0:
                    raise AccelsimError(
                        f"no engine on chip {chip.name} can run it (op {t.op}, dtype {t.dtype}, allowed kinds "
                        f"{list(t.engines)}; chip has {[f'{g.name}:{g.kind}' for g in groups]})",
                        source=graph.source, key=f"task {t.name!r}")
            compute[i] = row
        hbm = np.fromiter((t.bytes_read + t.bytes_written for t in graph.tasks), dtype=np.int64, count=n)
        memory = np.ceil(hbm / chip.hbm_bytes_per_cycle).astype(np.int64)
        estimate = np.where(compute >= 0, np.maximum(chip.spec.dispatch_overhead_cycles + compute, memory[:, None]),
                            INFEASIBLE)
        return cls(compute, estimate, hbm)

    def fastest(self) -> np.ndarray:
        """Per task, the smallest uncontended estimate over the groups allowed to run it."""
        masked = np.where(self.estimate >= 0, self.estimate, np.iinfo(np.int64).max)
        return masked.min(axis=1)
