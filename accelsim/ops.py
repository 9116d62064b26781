"""The ops a task can be, with the figures the cost models need: FLOPs and vector instructions per element.

A matrix op's *element* is one multiply-accumulate; a vector op's is one tensor element. Instruction counts are
vector-ALU instructions per element on a SIMD core with FMA and no transcendental unit (as the Gaudi TPC), taken
from the usual instruction sequences; a chip profile may override them (``vector_instructions``):

- add / mul / scale / mask / copy: 1 (one ALU op, or one select for a mask).
- exp: 6. Range reduction (1 FMA + 1 round + 1 exponent insert) and a degree-3 minimax polynomial in Horner form
  (3 FMAs), the standard expf sequence in SIMD math libraries; a TPC has no hardware exp.
- reciprocal / divide: 4. Table estimate (1), one Newton-Raphson step (2 FMAs), final multiply (1).
- reduction (sum/max along a row): 1 per element plus a log2(lanes) tree per row, counted as a dependent step.
- softmax: max (1) + subtract (1) + exp (6) + sum (1) + reciprocal-multiply (1, reciprocal per row) = 10, in
  three dependent passes over the row.
- layernorm: mean (1) + subtract (1) + square-accumulate (1) + scale (1) + affine FMA (1) = 5, three passes.
- strided_copy / masked_fill / broadcast_mul / broadcast_divide / cumsum: as copy / mask / mul / divide / add, but
  their operands are strided or broadcast (a transpose, a concatenation along an inner axis, a mask or a
  per-row factor repeated over a tensor, a scan along an outer axis), so a GPU cannot use wide vector loads and
  reaches a lower fraction of its bandwidth (``strided`` below; MemorySpec.strided_bandwidth_efficiency).
- gelu (tanh form): x^3 (2) + FMA (1) + tanh via exp and divide (6 + 4) + final FMA (2) = 15.
- elu1 (elu(x)+1, linear attention's feature map): exp (6) + select (1) + add (1) = 8.
- silu (x * sigmoid(x), SwiGLU's activation): exp (6) + add (1) + reciprocal (4) + multiply (1) = 12.
- relu: one select = 1.
- rmsnorm: square-accumulate (1) + scale by the reciprocal root (1) + weight multiply (1) = 3, two passes.
- rope (rotary positions, x cos + rotate_half(x) sin): two multiplies and an add, plus a lane shuffle = 4.
- adam: two moment FMAs (2+2), sqrt (~4), divide (4), update FMA (2) = 14.
Backward ops count the same way (gelu_grad re-evaluates tanh: 17; softmax_grad y*(dy - sum(y*dy)): 4 in two
passes; layernorm_grad: 9 in three passes; elu1_grad: exp + select = 7; silu_grad re-evaluates the sigmoid
(11) and forms s (1 + x (1 - s)) (5): 16; relu_grad: 1; rmsnorm_grad: 6 in three passes; rope_grad: as rope).
FLOPs per element follow the convention of counting each add, multiply, exp or divide as one FLOP.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

Shape = tuple[int, ...]
#: One batched GEMM: (batch, M, K, N), i.e. batch x (M x K) @ (K x N).
Gemm = tuple[int, int, int, int]


def elements(shape: Shape) -> int:
    return math.prod(shape)


@dataclass(frozen=True, kw_only=True)
class OpSpec:
    """An element-wise or row-wise op: its category, how its shape reads, and its work per tensor element.

    Everything the cost models and the lowering need to know of an op is on its spec (the subclasses below
    override what differs), so a new op is one entry in ``OPS``."""

    name: str
    category: str = "vector"  # "matrix", "vector" or "dma"
    arity: int = 0  # number of dimensions of the shape; 0 = any
    shape_doc: str = "(any shape: elements = product; rows are the last dimension)"
    flops_per_element: float = 0
    instructions_per_element: float = 0
    dependent_steps: int = 1
    default_engines: tuple[str, ...] = ("vector",)
    #: Reads of each row a row op makes when a row does not fit on chip: softmax reads it for the max, the sum of
    #: exponentials and the output; layernorm for the statistics (Welford, one pass) and the output.
    row_passes: int = 1
    #: Strided or broadcast operands: the memory model may charge such a stream a lower achievable bandwidth.
    strided: bool = False
    #: A scan (running sum) along the first axis of its (length, columns) shape: each of the ``length`` steps
    #: depends on the one before, so it pays the engine's pipeline latency per step, not ``dependent_steps``.
    scan: bool = False
    #: The output is a copy of data already in memory (a DMA load): when it cannot stay on chip, nothing is
    #: written back.
    copies_memory: bool = False
    #: Dimensions along which a compiler may cut a task into independent parts, most preferred first; None: every
    #: dimension but a row op's last (its rows) and a scan's first (its steps).
    splittable: tuple[int, ...] | None = None

    def split_dims(self, shape: Shape) -> tuple[int, ...]:
        """Dimensions of ``shape`` a task may be split along into independent parts, most preferred first."""
        if self.splittable is not None:
            return tuple(d for d in self.splittable if d < len(shape))
        dims = range(len(shape))
        row_op = self.dependent_steps > 1 or self.row_passes > 1
        return tuple(
            d for d in dims if not (row_op and len(shape) > 1 and d == len(shape) - 1) and not (self.scan and d == 0)
        )

    def flops(self, shape: Shape) -> int:
        """The FLOPs a task of this shape does (each add, multiply, exp or divide counts one)."""
        return int(self.flops_per_element * elements(shape))

    def instructions(self, shape: Shape, per_element: float | None = None) -> float:
        """Element-instructions a vector core issues for it (before dividing by its lanes); ``per_element``
        overrides the spec's count (a chip profile's ``vector_instructions``)."""
        return (self.instructions_per_element if per_element is None else per_element) * elements(shape)

    def traffic(self, shape: Shape, dtype_bytes: int) -> tuple[int, int]:
        """(bytes read, bytes written) when the task streams its operands once: one tensor in, one out."""
        n = elements(shape) * dtype_bytes
        return n, n

    def gemms(self, shape: Shape) -> tuple[Gemm, ...]:
        """A matrix op as batched GEMMs; other ops have none."""
        return ()

    def macs(self, shape: Shape) -> int:
        return sum(b * m * k * n for b, m, k, n in self.gemms(shape))


@dataclass(frozen=True, kw_only=True)
class MatrixOp(OpSpec):
    """A matrix product: its element is one multiply-accumulate. ``decompose`` gives it as batched GEMMs and
    ``operands`` its (elements read, elements written)."""

    decompose: Callable[[Shape], tuple[Gemm, ...]]
    operands: Callable[[Shape], tuple[int, int]]
    category: str = "matrix"
    flops_per_element: float = 2
    instructions_per_element: float = 1
    default_engines: tuple[str, ...] = ("matrix",)

    def gemms(self, shape: Shape) -> tuple[Gemm, ...]:
        return self.decompose(shape)

    def flops(self, shape: Shape) -> int:
        return 2 * self.macs(shape)

    def instructions(self, shape: Shape, per_element: float | None = None) -> float:
        return float(self.macs(shape))  # one FMA per MAC on a vector core

    def traffic(self, shape: Shape, dtype_bytes: int) -> tuple[int, int]:
        read, written = self.operands(shape)
        return read * dtype_bytes, written * dtype_bytes


@dataclass(frozen=True, kw_only=True)
class WindowAttentionOp(OpSpec):
    """Windowed softmax attention on vector cores, as GFormer's TPC kernel: each of S queries against its w most
    recent keys, per (batch*head): QK^T and x V are 2*S*w*D MACs, the softmax is over S*w scores.
    ``instructions_per_element`` is per score (softmax's); the backward (``passes = 2``) does everything twice."""

    passes: int = 1
    arity: int = 4
    shape_doc: str = "(batch*heads, S, w, D)"
    instructions_per_element: float = 10
    dependent_steps: int = 3

    def _macs_and_scores(self, shape: Shape) -> tuple[int, int]:
        g, s, w, d = shape
        return 2 * g * s * w * d, g * s * w

    def flops(self, shape: Shape) -> int:
        macs, scores = self._macs_and_scores(shape)
        return self.passes * (2 * macs + 5 * scores)

    def instructions(self, shape: Shape, per_element: float | None = None) -> float:
        macs, scores = self._macs_and_scores(shape)
        per_score = self.instructions_per_element if per_element is None else per_element
        return self.passes * (macs + per_score * scores)

    def traffic(self, shape: Shape, dtype_bytes: int) -> tuple[int, int]:
        g, s, _, d = shape
        return self.passes * 3 * g * s * d * dtype_bytes, self.passes * g * s * d * dtype_bytes


@dataclass(frozen=True, kw_only=True)
class DmaOp(OpSpec):
    """A DMA transfer of ``shape[0]`` bytes: no compute, only traffic."""

    category: str = "dma"
    arity: int = 1
    shape_doc: str = "(bytes,)"
    default_engines: tuple[str, ...] = ("dma",)
    copies_memory: bool = True

    def instructions(self, shape: Shape, per_element: float | None = None) -> float:
        return 0.0

    def traffic(self, shape: Shape, dtype_bytes: int) -> tuple[int, int]:
        return shape[0], 0


def _flash_gemms(shape: Shape) -> tuple[Gemm, ...]:
    g, s, d = shape  # QK^T and P V, each over the causal half of the S x S scores
    half = (s + 1) // 2
    return (g, s, d, half), (g, s, half, d)


OPS: dict[str, OpSpec] = {}


def _op(spec: OpSpec) -> None:
    OPS[spec.name] = spec


_op(
    MatrixOp(
        name="gemm",
        arity=3,
        shape_doc="(M, K, N)",
        splittable=(0, 2),
        decompose=lambda s: ((1, s[0], s[1], s[2]),),
        operands=lambda s: (s[0] * s[1] + s[1] * s[2], s[0] * s[2]),
    )
)
_op(
    MatrixOp(
        name="bmm",
        arity=4,
        shape_doc="(batch, M, K, N)",
        splittable=(0, 1, 3),
        decompose=lambda s: ((s[0], s[1], s[2], s[3]),),
        operands=lambda s: (s[0] * (s[1] * s[2] + s[2] * s[3]), s[0] * s[1] * s[3]),
    )
)
# Sum over n of outer products k_i v_i^T, batch times: as a GEMM (dk x n) @ (n x dv). GFormer splits this work.
_op(
    MatrixOp(
        name="outer_acc",
        arity=4,
        shape_doc="(batch, n, dk, dv)",
        default_engines=("matrix", "vector"),
        splittable=(0, 2, 3),
        decompose=lambda s: ((s[0], s[2], s[1], s[3]),),
        operands=lambda s: (s[0] * s[1] * (s[2] + s[3]), s[0] * s[2] * s[3]),
    )
)
# A fused causal attention kernel (FlashAttention): QK^T and P V over the causal half of the S x S scores.
_op(
    MatrixOp(
        name="flash_attn_causal",
        arity=3,
        shape_doc="(batch*heads, S, D)",
        decompose=_flash_gemms,
        splittable=(0,),
        operands=lambda s: (3 * s[0] * s[1] * s[2], s[0] * s[1] * s[2]),
    )
)
# Fused attention with a KV cache: each of ``queries`` rows against ``keys`` keys (their causal average), QK^T and
# P V in one kernel; its traffic (queries, keys and values once, the output) is the lowering's to give.
_op(
    MatrixOp(
        name="flash_attn",
        arity=4,
        shape_doc="(batch*heads, queries, keys, D)",
        decompose=lambda s: ((s[0], s[1], s[3], s[2]), (s[0], s[1], s[2], s[3])),
        splittable=(0, 1),
        operands=lambda s: (s[0] * (s[1] * s[3] + 2 * s[2] * s[3]), s[0] * s[1] * s[3]),
    )
)
# Element-wise and row-wise ops: the element is one tensor element.
_ROW_PASSES = {"softmax": 3, "layernorm": 2, "softmax_grad": 2, "layernorm_grad": 2, "rmsnorm": 2, "rmsnorm_grad": 2}
for _name, _flops, _instr, _steps in (
    ("add", 1, 1, 1),
    ("mul", 1, 1, 1),
    ("scale", 1, 1, 1),
    ("mask", 1, 1, 1),
    ("copy", 0, 1, 1),
    ("exp", 1, 6, 1),
    ("divide", 1, 4, 1),
    ("reduce", 1, 1, 2),
    ("softmax", 5, 10, 3),
    ("layernorm", 8, 5, 3),
    ("gelu", 8, 15, 1),
    ("elu1", 3, 8, 1),
    ("adam", 14, 14, 1),
    ("gelu_grad", 10, 17, 1),
    ("softmax_grad", 4, 4, 2),
    ("layernorm_grad", 12, 9, 3),
    ("elu1_grad", 2, 7, 1),
    ("silu", 4, 12, 1),
    ("relu", 1, 1, 1),
    ("rmsnorm", 4, 3, 2),
    ("rope", 3, 4, 1),
    ("silu_grad", 7, 16, 1),
    ("relu_grad", 1, 1, 1),
    ("rmsnorm_grad", 8, 6, 3),
    ("rope_grad", 3, 4, 1),
):
    _op(
        OpSpec(
            name=_name,
            flops_per_element=_flops,
            instructions_per_element=_instr,
            dependent_steps=_steps,
            row_passes=_ROW_PASSES.get(_name, 1),
        )
    )
for _name, _flops, _instr in (
    ("strided_copy", 0, 1),
    ("masked_fill", 1, 1),
    ("broadcast_mul", 1, 1),
    ("broadcast_divide", 1, 4),
):
    _op(
        OpSpec(
            name=_name,
            shape_doc="(any shape: elements = product)",
            flops_per_element=_flops,
            instructions_per_element=_instr,
            strided=True,
        )
    )
# A running sum along an outer axis (torch.cumsum over the sequence): strided, and one dependent step per position.
_op(
    OpSpec(
        name="cumsum",
        arity=2,
        shape_doc="(length, columns)",
        flops_per_element=1,
        instructions_per_element=1,
        strided=True,
        scan=True,
    )
)


@dataclass(frozen=True, kw_only=True)
class CollectiveOp(OpSpec):
    """A collective over one of a card's parallel groups: the card's buffer of ``elements``, read from HBM and the
    result written back; its time is the network's (accelsim.collective_costs). The reduction's adds are not
    counted."""

    collective: str  # accelsim.collectives' name
    category: str = "network"
    arity: int = 1
    shape_doc: str = "(elements,)"
    splittable: tuple[int, ...] | None = ()


for _name, _collective, _kind in (
    ("all_reduce", "all_reduce", "network"),  # the tensor-parallel group's
    ("all_gather", "all_gather", "network"),
    ("reduce_scatter", "reduce_scatter", "network"),  # sequence parallelism: each card keeps 1/tp of the rows
    ("grad_all_reduce", "all_reduce", "data_network"),  # data parallelism: a bucket of gradients
    ("grad_reduce_scatter", "reduce_scatter", "data_network"),  # ZeRO-1: each replica keeps 1/dp of the sum
    ("param_all_gather", "all_gather", "data_network"),  # ZeRO-1: the updated shards back to every replica
):
    _op(CollectiveOp(name=_name, collective=_collective, default_engines=(_kind,)))
_op(WindowAttentionOp(name="window_attn", splittable=(0, 1)))
_op(WindowAttentionOp(name="window_attn_grad", passes=2, splittable=(0, 1)))
_op(DmaOp(name="dma"))


def default_flops(op: str, shape: Shape) -> int:
    """The FLOP count a task of this op and shape has unless the task says otherwise."""
    return OPS[op].flops(shape)


def default_bytes(op: str, shape: Shape, dtype_bytes: int) -> tuple[int, int]:
    """(bytes read, bytes written) for a task that streams its operands once from and to memory."""
    return OPS[op].traffic(shape, dtype_bytes)
