"""Cost models: how many chip-clock cycles a task computes for on one engine of a group. Pure functions.

Compute and memory are separate: ``compute_cycles`` is the engine's own work; the bytes a task moves (a matrix
op's with the panel re-reads its SRAM forces, accelsim.panels) are charged by the memory model (accelsim.memory)
during simulation, where HBM bandwidth is shared. ``estimate_cycles`` is
the uncontended roofline gap + max(dispatch + compute, bytes / full HBM bandwidth) that schedulers plan with; it
is exactly what the simulation gives a task that runs alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast, overload

import numpy as np

from .chip import (
    Chip,
    DmaEngines,
    EngineGroup,
    MatrixEngines,
    NetworkEngines,
    SystolicMatrixEngines,
    TiledMatrixEngines,
    VectorEngines,
)
from .collective_costs import network_engine_cycles
from .errors import AccelsimError
from .graph import Task, TaskGraph
from .limits import MAX_COUNT
from .onchip import OnChipPlan
from .ops import OPS, Gemm
from .panels import rereads
from .systolic import pipelined_cycles, systolic_cycles
from .vocabulary import DTYPE_BYTES

INFEASIBLE = -1


def matrix_engine_cycles(task: Task, spec: MatrixEngines) -> int:
    """Cycles of a matrix op on one engine, by the engine's model; -1 if it cannot run it."""
    op_spec = OPS[task.op]
    macs = cast(dict[str, int], spec.macs_per_cycle).get(task.dtype)  # a task may name a dtype the engine lacks
    if op_spec.category != "matrix" or macs is None:
        return INFEASIBLE
    gemms = op_spec.gemms(task.shape)
    if isinstance(spec, TiledMatrixEngines):
        return tiled_cycles(gemms, spec, macs)
    return systolic_engine_cycles(gemms, spec, macs)


def systolic_engine_cycles(gemms: tuple[Gemm, ...], spec: SystolicMatrixEngines, macs: int) -> int:
    """SCALE-Sim's cycles for each GEMM on the rows x cols array, scaled by the dtype's MAC rate against one MAC per
    cell and cycle: a dtype with fewer MACs per cycle (fp32 on Gaudi) takes proportionally longer, one with more
    (fp8 packing two MACs per cell) proportionally less. Integer arithmetic, so the count stays exact."""
    cycles = geometry(gemms, spec)[1]
    full = spec.rows * spec.cols
    cycles = cycles if macs == full else -(-cycles * full // macs)
    return cycles if spec.efficiency == 1 else math.ceil(cycles / spec.efficiency)


def geometry(gemms: Sequence[Gemm], spec: SystolicMatrixEngines) -> tuple[tuple[int, int], int]:
    """The rows x cols wiring of the array a task's GEMMs run in, and their cycles in it (one MAC per cell and
    cycle): of the profile's ``rows x cols`` and its other ``shapes``, the one that finishes them first, the first
    listed on a tie (the compiler's choice per GEMM: a GEMV's one row streams through the wide shape)."""
    flow = spec.dataflow

    def on(r: int, c: int) -> int:
        if spec.pipelined_folds:
            return pipelined_cycles(gemms, r, c, flow)
        return sum(b * systolic_cycles(m, k, n, r, c, flow) for b, m, k, n in gemms)

    shapes = [(spec.rows, spec.cols), *((r, c) for r, c in spec.shapes)]
    return min(((shape, on(*shape)) for shape in shapes), key=lambda sc: sc[1])  # the first on a tie


def tiled_cycles(gemms: tuple[Gemm, ...], spec: TiledMatrixEngines, macs: int) -> int:
    """GPU-style GEMM: output tiles spread in waves over the SMs; a wave takes one tile's MACs at one SM's rate,
    divided by the achieved efficiency. Wave quantisation is what makes a 129-tile GEMM cost two waves."""
    sms, tm, tn = spec.sms, spec.tile_m, spec.tile_n
    per_sm = macs / sms
    total = 0.0
    for b, m, k, n in gemms:
        tiles = b * -(-m // tm) * -(-n // tn)
        waves = -(-tiles // sms)
        # A partial last tile still takes a whole tile's time; a wave of tiles smaller than the tile shape (m or n
        # below it) takes proportionally less.
        tile_macs = min(m, tm) * min(n, tn) * k
        total += waves * (tile_macs / per_sm / spec.efficiency + spec.wave_overhead_cycles)
    return math.ceil(total)


def vector_engine_cycles(task: Task, spec: VectorEngines, overrides: dict[str, float] | None = None) -> int:
    """SIMD cycles: instructions over lanes and issue width, plus the pipeline latency of each dependent pass. A
    fused kernel issues its ops' instructions one after the other and pays each op's passes."""
    lanes = cast(dict[str, int], spec.lanes).get(task.dtype)
    if OPS[task.op].category == "dma" or lanes is None:
        return INFEASIBLE
    instructions, steps = 0.0, 0
    for op, shape in (*task.fused, (task.op, task.shape)):
        op_spec = OPS[op]
        instructions += op_spec.instructions(shape, (overrides or {}).get(op))
        steps += shape[0] if op_spec.scan else op_spec.dependent_steps
    issue = math.ceil(instructions / (lanes * spec.vector_issue_per_cycle))
    return issue + spec.pipeline_latency_cycles * steps


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
    elif isinstance(spec, NetworkEngines):
        own = network_engine_cycles(task, spec, chip.clock_ghz)
    else:
        own = dma_engine_cycles(task, spec)
    clock = chip.compute_clock_ghz(group)
    if own < 0 or clock == chip.clock_ghz:
        return own
    return math.ceil(own * chip.clock_ghz / clock)


def stream_bytes(task: Task, chip: Chip, nbytes: int | None = None) -> int:
    """Bytes a task streams through HBM as costed at the full HBM rate: ``nbytes`` of its traffic (default: all of
    it) plus a matrix op's panel re-reads (``panel_rereads``), at the memory's efficiency, the strided one for an
    op with strided operands (MemorySpec)."""
    moved = (task.bytes if nbytes is None else nbytes) + panel_rereads(task, chip)
    return chip.stream_bytes(moved, OPS[task.op].strided)


def panel_rereads(task: Task, chip: Chip) -> int:
    """HBM bytes a matrix op moves beyond each operand once, because its operand panels outgrow the SRAM one
    matrix engine stages them in (Chip.panel_sram; accelsim.panels); 0 for other ops."""
    op_spec = OPS[task.op]
    if op_spec.category != "matrix":
        return 0
    e = DTYPE_BYTES[task.dtype]
    return rereads(op_spec.gemms(task.shape), e, e, chip.panel_sram)


@overload
def roofline(compute: int, streamed: int, chip: Chip) -> int: ...
@overload
def roofline(compute: np.ndarray, streamed: np.ndarray, chip: Chip) -> np.ndarray: ...
def roofline(compute: Any, streamed: Any, chip: Chip) -> Any:
    """A task's uncontended cycles alone: the launch gap plus the slower of (dispatch + compute) and its
    ``streamed`` HBM bytes at the full rate, the rule every estimate and bound uses. Python integers (exact at any
    size, for the size check) or numpy arrays (a whole cost table at once, broadcast)."""
    spec = chip.spec
    array = isinstance(compute, np.ndarray)
    rate = chip.hbm_bytes_per_cycle
    memory = np.ceil(streamed / rate).astype(np.int64) if array else math.ceil(streamed / rate)
    return spec.launch_gap_cycles + (np.maximum if array else max)(spec.dispatch_overhead_cycles + compute, memory)


def estimate_cycles(task: Task, group: EngineGroup, chip: Chip) -> int:
    """Uncontended duration of a task alone, all its traffic through HBM (the roofline). -1 where it cannot
    run."""
    own = compute_cycles(task, group, chip)
    return INFEASIBLE if own < 0 else slowest_cycles(task, [own], chip)


def slowest_cycles(task: Task, compute: Sequence[int], chip: Chip) -> int:
    """The task's uncontended cycles on the slowest group allowed to run it (``compute``: its cycles per group,
    -1 where not allowed): the launch gap plus the roofline of (dispatch + compute) and all its HBM traffic, in
    Python integers (0 where no group may run it).
    """
    streamed = stream_bytes(task, chip)
    return max([roofline(c, streamed, chip) for c in compute if c >= 0], default=0)


def serial_cycles_bound(graph: TaskGraph, chip: Chip) -> int:
    """Chip cycles the graph takes run one task after another, each on the slowest engine group allowed to run it
    and with all its traffic through HBM: the simulated time of any schedule stays below it, HBM contention
    included (shared bandwidth moves the same bytes in the same total time)."""
    memo: dict[tuple[object, ...], int] = {}
    total = 0
    for t in graph.tasks:
        key = _signature(t)
        cycles = memo.get(key)
        if cycles is None:
            cycles = memo[key] = slowest_cycles(t, [compute_cycles(t, g, chip) for g in chip.groups], chip)
        total += cycles
    return total


def check_cycles(cycles: int, graph: TaskGraph, chip: Chip) -> None:
    """Refuse a run whose simulated time could pass what the simulator counts in (MAX_COUNT = 2^62 cycles, for
    64-bit integers with room to spare): a huge graph on a slow chip (1 MB/s of HBM, a 1e6-instruction op).
    ``cycles``: serial_cycles_bound's figure."""
    if cycles > MAX_COUNT:
        raise AccelsimError(
            f"on {chip.name} the run could last up to {cycles:.3g} cycles ({cycles / chip.cycles_per_second:.3g} s), "
            f"past the 2^62 ({MAX_COUNT:.3g}) cycles the simulator counts; make the run smaller or the chip faster "
            "(memory.hbm_bandwidth_gbps, engine rates, vector_instructions)",
            source=graph.source,
            key="(size)",
        )


def _signature(t: Task) -> tuple[object, ...]:
    """What a task's costs depend on (a DMA's its bytes): tasks alike are costed once."""
    return (t.op, t.shape, t.dtype, t.engines, t.fused, t.bytes_read, t.bytes_written)


@dataclass(frozen=True)
class CostTable:
    """Per task and engine group, compute cycles and uncontended estimates (-1 = not allowed); per task, the bytes
    it streams through HBM (at the full rate) when every tensor the compiler planned on chip stays there
    (accelsim.onchip). The estimate is what the simulation gives a task alone when nothing spills and SRAM
    bandwidth does not bind. Built once per run."""

    compute: np.ndarray  # int64 [tasks, groups]
    estimate: np.ndarray  # int64 [tasks, groups]
    stream: np.ndarray  # int64 [tasks]: bytes streamed through HBM, as costed at its full rate
    #: What the compiler planned on chip, which the stream leaves out (None in a table made by hand: the
    #: simulation then takes the graph's own plan).
    plan: OnChipPlan | None = None

    @classmethod
    def build(cls, graph: TaskGraph, chip: Chip) -> CostTable:
        groups = chip.groups
        n = len(graph.tasks)
        plan = OnChipPlan.of(graph)
        hbm = plan.hbm.tolist()
        compute = np.full((n, len(groups)), INFEASIBLE, dtype=np.int64)
        stream = np.zeros(n, dtype=np.int64)
        memo: dict[tuple, tuple[tuple[int, ...], int]] = {}
        rows: list[tuple[int, ...]] = []
        serial = 0
        for t in graph.tasks:
            key = _signature(t)
            known = memo.get(key)
            if known is None:
                row = tuple(compute_cycles(t, g, chip) for g in groups)
                if max(row) < 0:
                    raise AccelsimError(
                        f"no engine on chip {chip.name} can run it (op {t.op}, dtype {t.dtype}, allowed kinds "
                        f"{list(t.engines)}; chip has {[f'{g.name}:{g.kind}' for g in groups]})",
                        source=graph.source,
                        key=f"task {t.name!r}",
                    )
                known = memo[key] = (row, slowest_cycles(t, row, chip))
            rows.append(known[0])
            serial += known[1]
        check_cycles(serial, graph, chip)  # before any of it goes into 64-bit arrays
        for i, (t, row) in enumerate(zip(graph.tasks, rows, strict=True)):
            compute[i] = row
            stream[i] = stream_bytes(t, chip, int(hbm[i]))
        # SRAM bandwidth is left out: a tensor that spills at run time moves its bytes from SRAM to HBM, so only
        # the HBM term stays a lower bound of the simulated time, which the bounds rely on.
        estimate = np.where(compute >= 0, roofline(compute, stream[:, None], chip), INFEASIBLE)
        return cls(compute, estimate, stream, plan)

    def fastest(self) -> np.ndarray:
        """Per task, the smallest uncontended estimate over the groups allowed to run it."""
        masked = np.where(self.estimate >= 0, self.estimate, np.iinfo(np.int64).max)
        return masked.min(axis=1)
