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
- adam: two moment FMAs (2+2), sqrt (~4), divide (4), update FMA (2) = 14.
Backward ops count the same way (gelu_grad re-evaluates tanh: 17; softmax_grad y*(dy - sum(y*dy)): 4 in two
passes; layernorm_grad: 9 in three passes; elu1_grad: exp + select = 7).
FLOPs per element follow the convention of counting each add, multiply, exp or divide as one FLOP.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
Shape = tuple[int, ...]


@dataclass(frozen=True)
class OpSpec:
    """One op: its category, how its shape reads, and per-element work on a vector core."""

    name: str
    category: str  # "matrix", "vector" or "dma"
    arity: int  # number of dimensions of the shape; 0 = any
    shape_doc: str
    flops_per_element: float
    instructions_per_element: float
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


OPS: dict[str, OpSpec] = {}


def _op(spec: OpSpec) -> None:
    OPS[spec.name] = spec


# Matrix products: the element is one MAC.
_op(OpSpec("gemm", "matrix", 3, "(M, K, N)", 2, 1, 1, ("matrix",)))
_op(OpSpec("bmm", "matrix", 4, "(batch, M, K, N)", 2, 1, 1, ("matrix",)))
# Sum over n of outer products k_i v_i^T, batch times: as a GEMM (dk x n) @ (n x dv). GFormer splits this work.
_op(OpSpec("outer_acc", "matrix", 4, "(batch, n, dk, dv)", 2, 1, 1, ("matrix", "vector")))
# A fused causal attention kernel (FlashAttention): QK^T and P V over the causal half of the S x S scores.
_op(OpSpec("flash_attn_causal", "matrix", 3, "(batch*heads, S, D)", 2, 1, 1, ("matrix",)))
# Element-wise and row-wise ops: the element is one tensor element.
_ROW_PASSES = {"softmax": 3, "layernorm": 2, "softmax_grad": 2, "layernorm_grad": 2}
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
):
    _op(OpSpec(_name, "vector", 0, "(any shape: elements = product; rows are the last dimension)", _flops, _instr,
               _steps, row_passes=_ROW_PASSES.get(_name, 1)))
for _name, _flops, _instr in (("strided_copy", 0, 1), ("masked_fill", 1, 1), ("broadcast_mul", 1, 1),
                              ("broadcast_divide", 1, 4)):
    _op(OpSpec(_name, "vector", 0, "(any shape: elements = product)", _flops, _instr, strided=True))
# A running sum along an outer axis (torch.cumsum over the sequence): strided, and one dependent step per position.
_op(OpSpec("cumsum", "vector", 2, "(length, columns)", 1, 1, strided=True, scan=True))
# Windowed softmax attention on vector cores, as GFormer's TPC kernel: each of S queries against its w most recent
# keys, per (batch*head): QK^T and x V are 2*S*w*D MACs, the softmax is over S*w scores.
_op(OpSpec("window_attn", "vector", 4, "(batch*heads, S, w, D)", 0, 0, 3))
_op(OpSpec("window_attn_grad", "vector", 4, "(batch*heads, S, w, D)", 0, 0, 3))
_op(OpSpec("dma", "dma", 1, "(bytes,)", 0, 0, 1, ("dma",)))


def elements(shape: Shape) -> int:
    return math.prod(shape)


def matrix_macs(op: str, shape: Shape) -> int:
    """MACs of a matrix op."""
    if op == "flash_attn_causal":
        g, s, d = shape
        return 2 * g * s * ((s + 1) // 2) * d
    return math.prod(shape)


def window_macs_and_scores(shape: Shape) -> tuple[int, int]:
    g, s, w, d = shape
    return 2 * g * s * w * d, g * s * w


def default_flops(op: str, shape: Shape) -> int:
    """The FLOP count a task of this op and shape has unless the task says otherwise."""
    spec = OPS[op]
    if spec.category == "matrix":
        return 2 * matrix_macs(op, shape)
    if op in ("window_attn", "window_attn_grad"):
        macs, scores = window_macs_and_scores(shape)
        factor = 1 if op == "window_attn" else 2  # backward: dQ, dK, dV, dP from the same MACs twice over
        return factor * (2 * macs + 5 * scores)
    if spec.category == "dma":
        return 0
    return int(spec.flops_per_element * elements(shape))


def vector_instructions(op: str, shape: Shape, overrides: dict[str, float] | None = None) -> float:
    """Element-instructions a vector core issues for this op (before dividing by its lanes)."""
    spec = OPS[op]
    if spec.category == "matrix":
        return float(matrix_macs(op, shape))  # one FMA per MAC
    if op in ("window_attn", "window_attn_grad"):
        macs, scores = window_macs_and_scores(shape)
        per_score = (overrides or {}).get(op, OPS["softmax"].instructions_per_element)
        factor = 1 if op == "window_attn" else 2
        return factor * (macs + per_score * scores)
    per = (overrides or {}).get(op, spec.instructions_per_element)
    return per * elements(shape)


def default_bytes(op: str, shape: Shape, dtype_bytes: int) -> tuple[int, int]:
    """(bytes read, bytes written) for a task that streams its operands once from and to memory."""
    spec = OPS[op]
    if op == "gemm":
        m, k, n = shape
        return (m * k + k * n) * dtype_bytes, m * n * dtype_bytes
    if op == "bmm":
        b, m, k, n = shape
        return b * (m * k + k * n) * dtype_bytes, b * m * n * dtype_bytes
    if op == "outer_acc":
        b, n, dk, dv = shape
        return b * n * (dk + dv) * dtype_bytes, b * dk * dv * dtype_bytes
    if op == "flash_attn_causal":
        g, s, d = shape
        return 3 * g * s * d * dtype_bytes, g * s * d * dtype_bytes
    if op in ("window_attn", "window_attn_grad"):
        g, s, w, d = shape
        factor = 1 if op == "window_attn" else 2
        return factor * 3 * g * s * d * dtype_bytes, factor * g * s * d * dtype_bytes
    if spec.category == "dma":
        return shape[0], 0
    n = elements(shape) * dtype_bytes
    return n, n

