"""Published kernel and collective measurements on a card (../shared/calibration/gaudi/README.md, the file kind of
``gaudi_kernels.jsonl``): a ``gemm`` record is one matrix product timed on one card, its rate in TFLOPS; a
``collective`` record is one collective over ``ranks`` cards, its bus bandwidth in GB/s (hccl_demo's "NW
Bandwidth", the nccl-tests busbw convention). Each carries the chip it ran on and what ran under ``params``.

A ``gemm`` record of this kind is told from the GPU calibration's (accelsim.validation's ``GemmRecord``: M, K, N
and ``ms`` at the top level) by its ``params``. A GEMM is predicted the way any graph is (the chip's compiler, a
scheduler, the simulation), a collective by the network simulation of the chip's shipped system (accelsim.network,
accelsim.collectives): the same models a generation's tensor-parallel all-reduces use.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, cast

from pydantic import Field, Strict
from pydantic.dataclasses import dataclass as pydantic_dataclass

from .chip import Chip, NetworkEngines
from .collective_costs import Fabric, collective_seconds
from .collectives import busbw
from .config import STRICT, PosInt
from .errors import AccelsimError
from .vocabulary import DTYPE_BYTES, Dtype

Finite = Annotated[float, Strict(), Field(gt=0, allow_inf_nan=False)]
#: FLOPs a GEMM record's rate counts: ``M*N*(2K-1)`` (the multiplies and the adds, as the Gaudi file's source
#: counts them) or ``2*M*N*K``.
FlopFormula = Literal["M*N*(2K-1)", "2*M*N*K"]


def record_dtype(written: str) -> Dtype:
    """The dtype a record's ``dtype`` names, as written by its source: its first word ("bf16 (FP32 accumulate)" is
    bf16, "fp8 E4M3 (default fp8_type), bf16 output" fp8)."""
    word = written.split(" ", 1)[0].strip().lower()
    if word not in DTYPE_BYTES:
        raise AccelsimError(
            f"must start with a dtype ({', '.join(DTYPE_BYTES)}), then anything, e.g. 'bf16 (FP32 accumulate)'; "
            f"got {written!r}",
            key="params.dtype",
        )
    return cast(Dtype, word)


@pydantic_dataclass(config=STRICT, kw_only=True)
class GemmParams:
    """What one timed GEMM ran: (M x K) @ (K x N) on one card."""

    M: PosInt
    K: PosInt
    N: PosInt
    #: As the source wrote it; the first word is the operands' dtype (bf16, fp8, ...).
    dtype: str
    cards: Literal[1] = 1
    flop_formula: FlopFormula = "2*M*N*K"
    #: fp8 scaling: one scale per tensor, or one per row (accelsim costs both alike: not modelled).
    scaling_granularity: Literal["per-tensor", "rowwise"] | None = None
    op: str = ""
    timing: str = ""
    software: str = ""
    scale: str = ""
    #: The source's derived figures, kept as read (the measurement is ``value``).
    derived_ms: Finite | None = None
    mfu_vs_432: Finite | None = None
    mfu_vs_865: Finite | None = None


@pydantic_dataclass(config=STRICT, kw_only=True)
class GemmKernelRecord:
    kind: Literal["gemm"]
    chip: str
    params: GemmParams
    #: The measured rate.
    value: Finite
    unit: Literal["TFLOPS"]
    source: str = ""
    note: str = ""

    def check(self) -> None:
        record_dtype(self.params.dtype)

    @property
    def dtype(self) -> Dtype:
        return record_dtype(self.params.dtype)

    @property
    def flops(self) -> int:
        p = self.params
        return p.M * p.N * (2 * p.K - 1) if p.flop_formula == "M*N*(2K-1)" else 2 * p.M * p.N * p.K

    @property
    def ms(self) -> float:
        """The measured time of one GEMM, from its rate and the FLOPs the source counted."""
        return self.flops / (self.value * 1e12) * 1e3


CollectiveOpName = Literal["all_reduce", "all_gather", "reduce_scatter"]


@pydantic_dataclass(config=STRICT, kw_only=True)
class CollectiveParams:
    """What one collective benchmark ran: ``op`` over ``ranks`` cards on ``nodes`` servers, with ``bytes_per_rank``
    (all-reduce, reduce-scatter: each rank's buffer) or ``bytes_per_rank_input`` (all-gather: each rank's part)."""

    op: CollectiveOpName
    ranks: PosInt
    nodes: PosInt = 1
    ranks_per_node: PosInt | None = None
    bytes_per_rank: PosInt | None = None
    bytes_per_rank_input: PosInt | None = None
    tool: str = ""
    system: str = ""
    dtype: str = ""
    loop: PosInt | None = None
    software: str = ""
    scale_out: str = ""
    #: The source's derived figures, kept as read (the measurement is ``value``, the bus bandwidth).
    algo_bw_GBps: Finite | None = None
    time_total_s_1000_iters: Finite | None = None
    derived_time_per_op_ms: Finite | None = None
    derived_time_per_op_us: Finite | None = None


@pydantic_dataclass(config=STRICT, kw_only=True)
class CollectiveRecord:
    kind: Literal["collective"]
    chip: str
    params: CollectiveParams
    #: The measured bus bandwidth, GB/s (nccl-tests' busbw: algbw x 2(n-1)/n for all-reduce, x (n-1)/n for
    #: all-gather and reduce-scatter over the whole gathered buffer; hccl_demo's "NW Bandwidth" is the same).
    value: Finite
    unit: str
    source: str = ""
    note: str = ""

    def check(self) -> None:
        p = self.params
        if (p.bytes_per_rank is None) == (p.bytes_per_rank_input is None):
            raise AccelsimError(
                "give exactly one of bytes_per_rank (all_reduce, reduce_scatter) and bytes_per_rank_input (all_gather)",
                key="params.bytes_per_rank",
            )
        if (p.op == "all_gather") != (p.bytes_per_rank_input is not None):
            raise AccelsimError(
                f"{p.op} takes {'bytes_per_rank_input' if p.op == 'all_gather' else 'bytes_per_rank'}",
                key="params.bytes_per_rank",
            )
        if p.ranks < 2:
            raise AccelsimError(f"a collective needs at least 2 ranks, got {p.ranks}", key="params.ranks")
        per_node = p.ranks_per_node or p.ranks // p.nodes
        if p.ranks % p.nodes or per_node * p.nodes != p.ranks:
            raise AccelsimError(
                f"{p.ranks} ranks on {p.nodes} nodes: the ranks must be the nodes times ranks_per_node",
                key="params.ranks",
            )
        if not self.unit.startswith("GB/s"):
            raise AccelsimError(f"must be GB/s (the bus bandwidth), got {self.unit!r}", key="unit")

    @property
    def nbytes(self) -> int:
        """The collective's buffer as accelsim.collectives counts it: an all-gather's whole gathered output."""
        p = self.params
        if p.bytes_per_rank_input is not None:
            return p.bytes_per_rank_input * p.ranks
        return p.bytes_per_rank or 0

    @property
    def ms(self) -> float:
        """The measured time of one collective, from its bus bandwidth."""
        p = self.params
        return self.nbytes / (self.value * 1e9 / busbw(p.op, 1.0, 1.0, p.ranks)) * 1e3


KernelRecord = GemmKernelRecord | CollectiveRecord


def is_kernel_record(rec: Mapping[str, Any]) -> bool:
    """A record of this file kind: a ``gemm`` or ``collective`` with ``params`` (a GPU ``gemm`` has none)."""
    return rec.get("kind") in ("gemm", "collective") and "params" in rec


def why_not_predicted(rec: KernelRecord, chip: Chip) -> str | None:
    """Why this record cannot be predicted on ``chip`` (None: it can)."""
    if rec.chip != chip.name:
        return f"measured on {rec.chip}, not on {chip.name}"
    return None


@dataclass(frozen=True)
class KernelPrediction:
    """One kernel or collective record (as read, every key kept), measured and predicted: the time of one op and
    its rate in the record's unit (TFLOPS; busbw GB/s)."""

    record: Mapping[str, Any]
    label: str
    measured_ms: float
    predicted_ms: float
    measured_rate: float
    predicted_rate: float
    rel_error: float  # predicted rate / measured rate - 1 (= measured / predicted time - 1)

    @property
    def kind(self) -> str:
        """The summary's row: ``gemm bf16``, ``gemm fp8``, ``collective``."""
        return self.label

    @property
    def counted(self) -> bool:
        """Every such record counts: each is an average over hundreds of back-to-back ops, never noise-sized."""
        return True

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.record,
            "measured_ms": self.measured_ms,
            "predicted_ms": self.predicted_ms,
            "predicted_value": self.predicted_rate,
            "rel_error": self.rel_error,
        }


def collective_fabric(chip: Chip, p: CollectiveParams) -> NetworkEngines:
    """The network engine of one card of ``ranks`` cards on ``nodes`` nodes of the chip's shipped system, the
    group's collectives running on it: inside a node on its fabric, across nodes hierarchically."""
    from .generation import default_system  # generation imports this module's users; import here, once needed

    system = default_system(chip)
    card = system.card_chip(1, p.ranks, p.nodes)
    return next(g.spec for g in card.groups if g.name == "net_dp" and isinstance(g.spec, NetworkEngines))


def predict_kernel(
    chip: Chip, rec: KernelRecord, record: Mapping[str, Any], source: str, line: int
) -> KernelPrediction:
    """The record's op on ``chip``: a GEMM compiled and simulated on one card, a collective on the chip's system."""
    from .validation import GemmShape, lower_at, predict_at  # validation reads these records: import when used

    if isinstance(rec, GemmKernelRecord):
        p = rec.params
        shape = GemmShape(kind="gemm", M=p.M, K=p.K, N=p.N, dtype=rec.dtype)
        ms = predict_at(chip, lower_at(shape, source, line), source, line)
        rate = rec.flops / (ms * 1e-3) / 1e12
        label = f"gemm {rec.dtype}"
    else:
        p2 = rec.params
        try:  # the system's nodes, then the network's own limits (at most 1,024 cards)
            seconds = collective_seconds(p2.op, rec.nbytes, Fabric.of(collective_fabric(chip, p2)))
        except AccelsimError as exc:
            detail = f"{exc.key}: {exc.detail}" if exc.key else exc.detail
            raise AccelsimError(
                f"cannot place it on {chip.name}'s system: {detail}", source=source, key=f"line {line}"
            ) from None
        ms = seconds * 1e3
        rate = busbw(p2.op, rec.nbytes, seconds, p2.ranks) / 1e9
        label = "collective" if p2.nodes == 1 else "collective, several nodes"
    if not math.isfinite(ms) or ms <= 0:
        raise AccelsimError(f"cannot predict it on {chip.name}: {ms} ms", source=source, key=f"line {line}")
    return KernelPrediction(
        record,
        label=label,
        measured_ms=round(rec.ms, 5),
        predicted_ms=round(ms, 5),
        measured_rate=rec.value,
        predicted_rate=round(rate, 2),
        rel_error=round(rec.ms / ms - 1, 4),
    )
