"""Chip profiles: the data that describes an accelerator, loaded from ``chips/*.toml`` and validated on load.

A new chip is a new file, never new code. The simulation only sees engine *groups* (a kind, a count, a clock and
the geometry its cost model needs) and the memory system; everything chip-specific lives in the profile.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Strict, Tag
from pydantic.dataclasses import dataclass as pydantic_dataclass

from .config import (
    STRICT,
    BandwidthGbps,
    BytesPerCycle,
    Capacity,
    ClockGhz,
    Cycles,
    Efficiency,
    Fraction,
    Geometry,
    GroupSize,
    InstructionsPerElement,
    StepOverheadUs,
    StrictBool,
    build,
    read_toml,
)
from .errors import AccelsimError
from .limits import MAX_ENGINES
from .ops import OPS
from .resources import resolve
from .units import EngineUnits
from .vocabulary import GIB, Dtype

Dataflow = Literal["os", "ws", "is"]


@pydantic_dataclass(config=STRICT)
class SystolicMatrixEngines:
    """A group of systolic GEMM arrays (Gaudi MME, TPU MXU, Trainium tensor engine, Ascend cube): rows x cols
    MACs with a dataflow, costed by SCALE-Sim's formulas (accelsim.systolic)."""

    kind: Literal["matrix"]
    count: GroupSize
    #: MACs per cycle per engine for each dtype it supports (rows*cols at the densest dtype).
    macs_per_cycle: dict[Dtype, Geometry]
    rows: Geometry
    cols: Geometry
    dataflow: Dataflow
    model: Literal["systolic"] = "systolic"
    #: Other rows x cols shapes the same MACs can be wired as (Gaudi's MME: 256x64, 128x128, 64x256 on Gaudi 1);
    #: each GEMM runs in whichever shape (the default rows x cols included) finishes it first.
    shapes: list[tuple[Geometry, Geometry]] = field(default_factory=list)
    #: Folds overlap: the next streams in while the last drains (double-buffered accumulators), so fill and drain
    #: are paid once per task, not once per fold as SCALE-Sim counts them (accelsim.systolic.pipelined_cycles).
    pipelined_folds: StrictBool = False
    #: Achieved fraction of the rate SCALE-Sim's formulas give (stalls they do not see: operand fetch, draining
    #: between back-to-back GEMMs); 1: the formulas' ideal.
    efficiency: Efficiency = 1.0
    clock_ghz: ClockGhz | None = None
    #: The clock the arrays hold while they compute (power and thermal limits), where it is below the one the
    #: headline figures imply: GEMMs are costed at it, ``accelsim chips`` still shows the datasheet's peak.
    #: None: the group's clock.
    clock_under_load_ghz: ClockGhz | None = None
    #: Engines in the same ``shared_unit`` cannot run at the same time (e.g. tensor and CUDA cores of one SM).
    shared_unit: str | None = None


@pydantic_dataclass(config=STRICT)
class TiledMatrixEngines:
    """GPU tensor cores: a GEMM's output is cut into tile_m x tile_n tiles spread in waves over ``sms`` streaming
    multiprocessors, reaching ``efficiency`` of the peak MAC rate (fitted to measurements, see ``accelsim fit``)."""

    kind: Literal["matrix"]
    count: GroupSize
    #: MACs per cycle per engine (all its SMs together) for each dtype it supports.
    macs_per_cycle: dict[Dtype, Geometry]
    model: Literal["tiled"]
    sms: Geometry
    tile_m: Geometry
    tile_n: Geometry
    efficiency: Efficiency = 1.0
    #: Fixed cycles per wave of tiles (prologue, epilogue, pipeline fill), which short-K GEMMs feel most.
    wave_overhead_cycles: Cycles = 0
    clock_ghz: ClockGhz | None = None
    shared_unit: str | None = None


#: A matrix engine group is one of the two models; a profile that names no ``model`` is systolic.
MatrixEngines = SystolicMatrixEngines | TiledMatrixEngines
MATRIX_MODELS = ("systolic", "tiled")


def matrix_engine_model(value: Any) -> str:
    """The ``model`` tag of a matrix engine group, as written or as built (absent: systolic)."""
    if isinstance(value, dict):
        model = value.get("model", "systolic")
        return model if isinstance(model, str) else repr(model)
    return str(getattr(value, "model", "systolic"))


MatrixEngineSpec = Annotated[
    Annotated[SystolicMatrixEngines, Tag("systolic")] | Annotated[TiledMatrixEngines, Tag("tiled")],
    Discriminator(matrix_engine_model),
]


@pydantic_dataclass(config=STRICT)
class VectorEngines:
    """A group of SIMD cores (Gaudi TPC, TPU VPU, Trainium vector/scalar/gpsimd, Ascend vector core)."""

    kind: Literal["vector", "scalar", "gpsimd"]
    count: GroupSize
    #: Elements processed per vector instruction, per dtype (2048-bit SIMD: 64 fp32, 128 bf16).
    lanes: dict[Dtype, Geometry]
    vector_issue_per_cycle: Geometry = 1
    pipeline_latency_cycles: Cycles = 4
    local_memory_kb: Geometry | None = None
    clock_ghz: ClockGhz | None = None
    shared_unit: str | None = None


@pydantic_dataclass(config=STRICT)
class DmaEngines:
    """DMA channels that move data between HBM and on-chip memory."""

    kind: Literal["dma"]
    count: GroupSize
    bytes_per_cycle: BytesPerCycle
    clock_ghz: ClockGhz | None = None
    shared_unit: str | None = None


@pydantic_dataclass(config=STRICT)
class NetworkEngines:
    """A card's share of a system's fabric, as a system file adds it to each card (accelsim.system): collective
    tasks (all-reduce, all-gather) of a tensor-parallel group of ``cards`` cards run on it, each taking the time the
    network simulation (accelsim.network, accelsim.collectives) gives the whole group's collective on this fabric.
    Every card of the group does the same work at the same time, so one card's timeline stands for all of them."""

    #: "network": the tensor-parallel group's collectives (inside a node); "data_network": the replicas'.
    kind: Literal["network", "data_network"]
    count: GroupSize
    cards: GroupSize
    topology: Literal["all-to-all", "switch", "ring"]
    #: GB/s per direction of one link (all-to-all, ring: between a pair of cards; switch: a card's port).
    link_gbps: BandwidthGbps
    links: GroupSize
    latency_us: Annotated[float, Field(ge=0, le=1e6, allow_inf_nan=False)]
    algorithm: Literal["ring", "direct"] = "ring"
    #: Cards of the group per node: a group spanning nodes runs its collectives hierarchically (inside each node,
    #: then across nodes on ``inter_*``, the scale-out network); None: all in one node.
    cards_per_node: GroupSize | None = None
    inter_port_gbps: BandwidthGbps | None = None
    inter_ports: GroupSize = 1
    inter_latency_us: Annotated[float, Field(ge=0, le=1e6, allow_inf_nan=False)] = 0.0
    #: Time every collective costs beyond its messages (the library's set-up and the cards' synchronisation), us.
    overhead_us: Annotated[float, Field(ge=0, le=1e6, allow_inf_nan=False)] = 0.0
    clock_ghz: ClockGhz | None = None
    shared_unit: str | None = None


EngineSpec = Annotated[MatrixEngineSpec | VectorEngines | DmaEngines | NetworkEngines, Field(discriminator="kind")]


@pydantic_dataclass(config=STRICT)
class MemorySpec:
    """HBM and on-chip SRAM. HBM bandwidth is shared by every task that streams from it, SRAM bandwidth (where
    set) by every task that reads or writes a tensor kept on chip.

    A stream of b bytes moves as if it were ``b / bandwidth_efficiency`` bytes at the full rate: at most
    ``bandwidth_efficiency`` of the peak is reached. A stream with strided or broadcast operands (OpSpec.strided)
    reaches ``strided_bandwidth_efficiency`` instead, where set: narrow, scattered accesses waste part of each
    DRAM burst. Both default to the ideal; GPU profiles fit them."""

    hbm_gb: Capacity
    hbm_bandwidth_gbps: BandwidthGbps
    sram_mb: Capacity
    sram_bandwidth_gbps: BandwidthGbps | None = None
    bandwidth_efficiency: Efficiency = 1.0
    strided_bandwidth_efficiency: Efficiency | None = None


@pydantic_dataclass(config=STRICT)
class CompilerSpec:
    """How the chip's graph compiler maps a task graph onto its engines (accelsim.compiler). The defaults are an
    eager GPU runtime's: one kernel per op (which spreads itself over the SMs), no fusion, nothing kept on chip
    between kernels, no prefetch."""

    #: Split each op over every engine of the kind that runs it, as Gaudi's graph compiler spreads a GEMM over all
    #: MMEs and a TPC kernel over all TPCs. False: one task per op.
    split_over_engines: StrictBool = False
    #: With split_over_engines: cut each op into at least this many parts, so that a consumer can start on the
    #: first parts while the producer works on the rest (Gaudi's compiler slices GEMMs to pipeline MME and TPC).
    slices: GroupSize = 1
    #: Fuse chains of element-wise and row ops into one vector kernel whose intermediates never leave the chip.
    fuse_vector_chains: StrictBool = False
    #: Keep an op's output in SRAM until its consumers have read it, when it fits (short-lived tensors first).
    keep_on_chip: StrictBool = False
    #: The fraction of SRAM the compiler may give to tensors kept on chip (the rest: code, scratch, reserves, and
    #: the GEMMs' operand panels, Chip.panel_sram).
    on_chip_fraction: Fraction = 0.5
    #: Load each matrix op's weights into SRAM on the DMA engines this many matrix ops ahead (0: the op streams its
    #: weights itself). Needs DMA engines.
    prefetch_depth: Annotated[int, Strict(), Field(ge=0, le=MAX_ENGINES)] = 0
    #: Matrix ops in these dtypes first pass their M x K input once through HBM (read and written back, on the DMA
    #: engines, before the op starts): a relayout or rescale of the activation the matrix engine needs in that
    #: dtype. Needs DMA engines.
    input_pass_dtypes: list[Dtype] = field(default_factory=list)


@pydantic_dataclass(config=STRICT)
class ChipSpec:
    """The file's content, as written."""

    name: str
    clock_ghz: ClockGhz
    engines: dict[str, EngineSpec]
    memory: MemorySpec
    dispatch_overhead_cycles: Cycles = 0
    #: Cycles an engine stays busy after each task, not overlapped with anything (a GPU's gap between eager
    #: kernels); 0 where engines run command queues back to back.
    launch_gap_cycles: Cycles = 0
    description: str = ""
    #: Host time of each forward pass of a generation (a prefill, each decode step) that no engine sees: launching
    #: the step's graph, sampling, the serving loop (accelsim.generation).
    step_overhead_us: StepOverheadUs = 0.0
    #: Time the serving kernel of a mixture of experts spends on each expert it is given, per MoE layer and forward
    #: pass, whatever the routing (optimum-habana's dynamic MoE op is given every expert's weights and visits each;
    #: accelsim.generation.expert_visits).
    expert_overhead_us: StepOverheadUs = 0.0
    #: Optional per-op override of the vector instruction counts in accelsim.ops (op name -> instructions/element).
    vector_instructions: dict[str, InstructionsPerElement] = field(default_factory=dict)
    compiler: CompilerSpec = field(default_factory=CompilerSpec)


@dataclass(frozen=True)
class EngineGroup:
    """One group of identical engines as the simulation sees it."""

    name: str
    spec: MatrixEngines | VectorEngines | DmaEngines | NetworkEngines
    index: int  # position among the chip's groups
    first_instance: int  # global index of this group's first engine instance

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def count(self) -> int:
        return self.spec.count


@dataclass(frozen=True)
class Chip:
    """A validated chip profile with its engine instances numbered: ``mme0, mme1, tpc0, ...``."""

    spec: ChipSpec
    source: str

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def clock_ghz(self) -> float:
        return self.spec.clock_ghz

    @cached_property
    def fingerprint(self) -> str:
        """A hash of the validated profile's content (engine order included), which keys what is compiled for the
        chip: two profiles of one name but different engines, memory or compiler are different targets."""
        text = json.dumps(dataclasses.asdict(self.spec), default=str, allow_nan=True)
        return hashlib.sha256(text.encode()).hexdigest()

    @cached_property
    def groups(self) -> tuple[EngineGroup, ...]:
        out, first = [], 0
        for i, (name, spec) in enumerate(self.spec.engines.items()):
            out.append(EngineGroup(name, spec, i, first))
            first += spec.count
        return tuple(out)

    @cached_property
    def instance_group(self) -> tuple[int, ...]:
        """For each engine instance, the index of its group."""
        return tuple(g.index for g in self.groups for _ in range(g.count))

    @cached_property
    def units(self) -> EngineUnits:
        """What each engine instance occupies: engines of groups naming the same ``shared_unit`` share a unit and
        never run at once (accelsim.units)."""
        return EngineUnits.from_groups((g.count, g.spec.shared_unit) for g in self.groups)

    @cached_property
    def instance_names(self) -> tuple[str, ...]:
        return tuple(f"{g.name}{i}" for g in self.groups for i in range(g.count))

    @property
    def kinds(self) -> tuple[str, ...]:
        """Engine kinds present on the chip, in profile order, without repeats."""
        return tuple(dict.fromkeys(g.kind for g in self.groups))

    @property
    def hbm_bytes_per_cycle(self) -> float:
        return self.spec.memory.hbm_bandwidth_gbps / self.spec.clock_ghz

    def stream_bytes(self, nbytes: int, strided: bool = False) -> int:
        """The bytes a stream of ``nbytes`` costs at the full HBM rate (see MemorySpec); 0 stays 0."""
        mem = self.spec.memory
        efficiency = mem.bandwidth_efficiency
        if strided and mem.strided_bandwidth_efficiency is not None:
            efficiency = mem.strided_bandwidth_efficiency
        return nbytes if efficiency == 1.0 else math.ceil(nbytes / efficiency)

    @property
    def sram_bytes_per_cycle(self) -> float | None:
        """On-chip SRAM bandwidth in bytes per chip cycle, where the profile gives it."""
        gbps = self.spec.memory.sram_bandwidth_gbps
        return None if gbps is None else gbps / self.spec.clock_ghz

    @property
    def on_chip_capacity(self) -> int:
        """Bytes of SRAM the compiler may keep tensors in (CompilerSpec.on_chip_fraction of it)."""
        return int(self.spec.memory.sram_mb * 1e6 * self.spec.compiler.on_chip_fraction)

    @property
    def panel_sram(self) -> int:
        """Bytes of SRAM a GEMM stages its operand panels in (accelsim.panels): what the compiler leaves of the SRAM
        after the tensors it keeps on chip (all of it where it keeps none). Not divided among the matrix engines:
        the parts of one GEMM that run on them at once stream the same panel of the shared operand."""
        sram = int(self.spec.memory.sram_mb * 1e6)
        if self.spec.compiler.keep_on_chip:
            sram -= self.on_chip_capacity
        return max(1, sram)

    def group_clock_ghz(self, group: EngineGroup) -> float:
        return group.spec.clock_ghz or self.spec.clock_ghz

    def compute_clock_ghz(self, group: EngineGroup) -> float:
        """The clock a group computes at: a matrix group's clock under load where its profile gives one, else its
        own clock (what the headline uses)."""
        spec = group.spec
        if isinstance(spec, SystolicMatrixEngines) and spec.clock_under_load_ghz is not None:
            return spec.clock_under_load_ghz
        return self.group_clock_ghz(group)

    def cycles_to_us(self, cycles: float) -> float:
        """Microseconds that ``cycles`` of the chip's clock last: the conversion every report and trace uses."""
        return cycles / (self.spec.clock_ghz * 1e3)

    @property
    def cycles_per_second(self) -> float:
        """The chip's clock in Hz, for conversions between cycles and seconds or milliseconds."""
        return self.spec.clock_ghz * 1e9

    @property
    def hbm_bytes(self) -> float:
        """The bytes of the card's HBM (``hbm_gb`` binary gigabytes, vocabulary.GIB): what every fit is held to."""
        return self.spec.memory.hbm_gb * GIB

    def seconds_to_cycles(self, seconds: float) -> float:
        """Cycles (fractional: the caller rounds as its rule says) that ``seconds`` of the chip's clock hold."""
        return seconds * self.spec.clock_ghz * 1e9

    def headline(self) -> Headline:
        """Peak figures computed from the profile, to check against a datasheet."""
        matrix: dict[str, float] = {}
        vector: dict[str, float] = {}
        for g in self.groups:
            ghz = self.group_clock_ghz(g)
            spec = g.spec
            if isinstance(spec, MatrixEngines):
                for dt, macs in spec.macs_per_cycle.items():
                    matrix[dt] = matrix.get(dt, 0.0) + 2 * macs * spec.count * ghz / 1e3
            elif isinstance(spec, VectorEngines):
                for dt, lanes in spec.lanes.items():
                    rate = 2 * lanes * spec.vector_issue_per_cycle * spec.count * ghz / 1e3
                    vector[dt] = vector.get(dt, 0.0) + rate
        mem = self.spec.memory
        return Headline(
            name=self.name,
            clock_ghz=self.clock_ghz,
            engines={g.name: EngineCount(g.kind, g.count) for g in self.groups},
            peak_matrix_tflops={k: round(v, 2) for k, v in matrix.items()},
            peak_vector_tflops={k: round(v, 2) for k, v in vector.items()},
            hbm_tb_per_s=round(mem.hbm_bandwidth_gbps / 1e3, 3),
            hbm_gb=mem.hbm_gb,
            sram_mb=mem.sram_mb,
            dispatch_overhead_cycles=self.spec.dispatch_overhead_cycles,
            launch_gap_cycles=self.spec.launch_gap_cycles,
        )


@dataclass(frozen=True)
class EngineCount:
    """An engine group in a headline: its kind and how many engines it has."""

    kind: str
    count: int


@dataclass(frozen=True)
class Headline:
    """A chip's peak figures, computed from its profile (``accelsim chips``; ``asdict`` gives the JSON)."""

    name: str
    clock_ghz: float
    engines: dict[str, EngineCount]
    peak_matrix_tflops: dict[str, float]
    peak_vector_tflops: dict[str, float]
    hbm_tb_per_s: float
    hbm_gb: float
    sram_mb: float
    dispatch_overhead_cycles: int
    launch_gap_cycles: int


def chip_spec_dict(chip: Chip) -> dict[str, Any]:
    """A loaded profile as the dict its file would parse to (every default written out), to derive a profile from."""
    return dataclasses.asdict(chip.spec)


def chip_from_dict(data: dict, source: str = "<dict>") -> Chip:
    """Validate a profile given as a dict (the parsed TOML), e.g. one built by a sweep or a test."""
    spec = build(ChipSpec, data, source)
    if not spec.engines:
        raise AccelsimError("a chip needs at least one engine group", source=source, key="engines")
    for gname, g in spec.engines.items():
        if isinstance(g, MatrixEngines) and not g.macs_per_cycle:
            raise AccelsimError("needs at least one dtype", source=source, key=f"engines.{gname}.macs_per_cycle")
        if isinstance(g, SystolicMatrixEngines):
            for r, c in g.shapes:
                if r * c != g.rows * g.cols:
                    raise AccelsimError(
                        f"{r}x{c} has {r * c:,} cells; a shape rewires the {g.rows}x{g.cols} = {g.rows * g.cols:,}",
                        source=source,
                        key=f"engines.{gname}.shapes",
                    )
        if isinstance(g, VectorEngines) and not g.lanes:
            raise AccelsimError("needs at least one dtype", source=source, key=f"engines.{gname}.lanes")
    if spec.compiler.input_pass_dtypes and not any(isinstance(g, DmaEngines) for g in spec.engines.values()):
        raise AccelsimError(
            "input passes run on DMA engines: the chip needs a group of kind dma", source=source, key="compiler"
        )
    for op in spec.vector_instructions:
        if op not in OPS:
            raise AccelsimError(
                f"unknown op {op!r}; known ops: {', '.join(sorted(OPS))}", source=source, key="vector_instructions"
            )
    total = sum(g.count for g in spec.engines.values())
    if total > MAX_ENGINES:
        raise AccelsimError(
            f"the groups' counts add up to {total:,} engines; a chip may have at most {MAX_ENGINES:,}",
            source=source,
            key="engines",
        )
    chip = Chip(spec, source)
    owner: dict[str, int] = {}  # instance name -> its group's index
    for instance, group in zip(chip.instance_names, chip.instance_group, strict=True):
        other = owner.setdefault(instance, group)
        if other != group:
            first, second = chip.groups[other].name, chip.groups[group].name
            raise AccelsimError(
                f"engine groups {first!r} and {second!r} both name an engine {instance!r} (an engine is named by "
                "its group and its number); rename one group, e.g. so that it does not end in a digit",
                source=source,
                key=f"engines.{second}",
            )
    return chip


def load_chip(name_or_path: str | Path) -> Chip:
    """Load a chip profile by shipped name (``gaudi2``) or by path; every problem is an AccelsimError."""
    path = resolve(name_or_path, "chips")
    return chip_from_dict(read_toml(path), str(path))
