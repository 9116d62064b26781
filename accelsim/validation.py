"""Predictions against measurements: lower each measured record the way its code ran, simulate it on a chip
profile, and compare. Records follow ../shared/calibration/README.md (gemm, bmm, vector, attention, layer,
layer_train, concurrency); each is checked against its kind's typed model before anything is simulated (a bad one
is one AccelsimError naming the file, the line and the key), and a record of a kind accelsim does not predict is
listed as skipped, with the reason.

Each record becomes the kernels PyTorch launched, in order on one stream (each depends on the one before), as
``gpu_calib.py`` wrote them: ``softmax_unfused`` as QK^T, scale, mask, softmax and x V; ``sdpa_flash`` as one
fused kernel; eager layers kernel after kernel. A training step's backward is derived kernel by kernel (a GEMM's
backward is two GEMMs; an element-wise op's, one kernel reading the gradient and its saved input).

Sizes come from each record (B, H, S, D, d_model, heads); what the script fixes in its code and its records do
not carry (the window, the chunk, the MLP's width, the hybrid's split, the concurrency shapes, the dtype) comes
from one place, ``GPU_CALIB``.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import numpy as np
from pydantic import Field, Strict
from pydantic.dataclasses import dataclass as pydantic_dataclass

from .chip import Chip
from .config import STRICT, PosInt, build, read_input
from .errors import AccelsimError
from .generation_records import GenerationPrediction, LlmGenerateRecord, predict_generation, why_not_predicted
from .graph import TaskGraph, make_task
from .kernel_records import (
    CollectiveRecord,
    GemmKernelRecord,
    KernelPrediction,
    KernelRecord,
    is_kernel_record,
    predict_kernel,
)
from .kernel_records import why_not_predicted as why_not_kernel
from .ops import OPS
from .runner import run
from .train_records import TrainStepRecord, predict_train_step
from .train_records import why_not_predicted as why_not_train_step
from .vocabulary import DTYPE_BYTES, Dtype

MIN_MS = 0.05  # records below this are dominated by launch overhead and noise (calibration README)


@dataclass(frozen=True)
class CalibrationScript:
    """What ``../shared/calibration/gpu_calib.py`` hard-codes in its code and its records do not carry; each value
    mirrors the script's line cited. Change it here, and only here, if the script changes."""

    #: ``attn_window(q, k, v, w=256)`` (line 102): the ``window256`` variant's window and query block.
    window: int = 256
    #: ``attn_linear_chunked(q, k, v, c=64)`` (line 121): the ``linear_chunked`` variant's chunk.
    chunk: int = 64
    #: ``"w1": R(dm, 4 * dm)``, ``"w2": R(4 * dm, dm)`` (lines 180 and 193): the layers' MLP hidden width / d_model.
    mlp_ratio: int = 4
    #: ``hh = h // 2`` (line 167): a ``hybrid`` layer's first h // 2 heads are windowed, the rest linear.
    hybrid_window_divisor: int = 2
    #: ``a, bm = R(8192, 8192), R(8192, 8192)`` (line 210): the concurrency record's GEMM, M x K x N.
    concurrency_gemm: tuple[int, int, int] = (8192, 8192, 8192)
    #: ``x = R(65536, 4096)`` (line 211): the concurrency record's softmax input, rows x cols.
    concurrency_softmax: tuple[int, int] = (65536, 4096)
    #: ``dt = torch.bfloat16`` on a GPU (line 12; the device record's ``dtype``): every tensor is BF16.
    dtype: Dtype = "bf16"

    def window_heads(self, heads: int) -> int:
        """Heads of a hybrid layer that use windowed attention."""
        return heads // self.hybrid_window_divisor


GPU_CALIB = CalibrationScript()

#: A latency, or a rate derived from one: a positive, finite number (JSON's NaN and Infinity are refused).
Finite = Annotated[float, Strict(), Field(gt=0, allow_inf_nan=False)]
AttentionVariant = Literal["softmax_unfused", "sdpa_flash", "window256", "linear_chunked", "linear_outer"]


def _multiple(key: str, value: int, of: int, why: str) -> None:
    if value % of:
        raise AccelsimError(f"must be a multiple of {of} ({why}), got {value}", key=key)


# What a record ran (the keys lower_record reads), one class per kind; the records add what was measured. Field
# names are the records' keys (calibration README). A shape's ``check`` refuses what the script could not have run.


@pydantic_dataclass(config=STRICT, kw_only=True)
class GemmShape:
    kind: Literal["gemm"]
    M: PosInt
    K: PosInt
    N: PosInt
    dtype: Dtype = GPU_CALIB.dtype

    def check(self) -> None:
        pass


@pydantic_dataclass(config=STRICT, kw_only=True)
class BmmShape:
    kind: Literal["bmm"]
    B: PosInt
    M: PosInt
    K: PosInt
    N: PosInt
    dtype: Dtype = GPU_CALIB.dtype

    def check(self) -> None:
        pass


@pydantic_dataclass(config=STRICT, kw_only=True)
class VectorShape:
    kind: Literal["vector"]
    op: Literal["add", "gelu", "exp", "softmax", "layernorm", "rowsum"]
    rows: PosInt
    cols: PosInt
    dtype: Dtype = GPU_CALIB.dtype

    def check(self) -> None:
        pass


def _check_sequence(variant: str, S: int) -> None:
    """The sequence length a variant's reshapes need: whole windows, whole chunks."""
    if variant in ("window256", "hybrid"):
        _multiple("S", S, GPU_CALIB.window, f"the window of {variant}")
    if variant in ("linear_chunked", "hybrid"):
        _multiple("S", S, GPU_CALIB.chunk, f"the chunk of {variant}")


@pydantic_dataclass(config=STRICT, kw_only=True)
class AttentionShape:
    kind: Literal["attention"]
    variant: AttentionVariant
    B: PosInt
    H: PosInt
    S: PosInt
    D: PosInt
    dtype: Dtype = GPU_CALIB.dtype

    def check(self) -> None:
        _check_sequence(self.variant, self.S)


@pydantic_dataclass(config=STRICT, kw_only=True)
class LayerShape:
    kind: Literal["layer", "layer_train"]
    variant: AttentionVariant | Literal["hybrid"]
    B: PosInt
    S: PosInt
    d_model: PosInt
    heads: PosInt
    dtype: Dtype = GPU_CALIB.dtype

    def check(self) -> None:
        if self.d_model % self.heads:
            raise AccelsimError(f"must divide d_model ({self.d_model}) into whole heads, got {self.heads}", key="heads")
        if self.variant == "hybrid" and GPU_CALIB.window_heads(self.heads) == 0:
            raise AccelsimError(
                f"a hybrid layer needs at least {GPU_CALIB.hybrid_window_divisor} heads (some "
                f"windowed, the rest linear), got {self.heads}",
                key="heads",
            )
        _check_sequence(self.variant, self.S)


@pydantic_dataclass(config=STRICT, kw_only=True)
class GemmRecord(GemmShape):
    ms: Finite
    iters: PosInt | None = None
    tflops: Finite | None = None


@pydantic_dataclass(config=STRICT, kw_only=True)
class BmmRecord(BmmShape):
    ms: Finite
    iters: PosInt | None = None
    tflops: Finite | None = None


@pydantic_dataclass(config=STRICT, kw_only=True)
class VectorRecord(VectorShape):
    ms: Finite
    iters: PosInt | None = None
    gbps: Finite | None = None


@pydantic_dataclass(config=STRICT, kw_only=True)
class AttentionRecord(AttentionShape):
    ms: Finite
    iters: PosInt | None = None


@pydantic_dataclass(config=STRICT, kw_only=True)
class LayerRecord(LayerShape):
    ms: Finite
    iters: PosInt | None = None
    model: str | None = None  # the model the sizes come from, e.g. gpt2-small


@pydantic_dataclass(config=STRICT, kw_only=True)
class ConcurrencyRecord:
    """GPU_CALIB's GEMM and softmax, each alone, one after the other, and on two streams at once (ms)."""

    kind: Literal["concurrency"]
    gemm_ms: Finite
    softmax_ms: Finite
    serial_ms: Finite
    two_streams_ms: Finite

    def check(self) -> None:
        pass


Shape = GemmShape | BmmShape | VectorShape | AttentionShape | LayerShape
Record = GemmRecord | BmmRecord | VectorRecord | AttentionRecord | LayerRecord
SHAPES: dict[str, type[Shape]] = {
    "gemm": GemmShape,
    "bmm": BmmShape,
    "vector": VectorShape,
    "attention": AttentionShape,
    "layer": LayerShape,
    "layer_train": LayerShape,
}
LOWERED: dict[str, type[Record]] = {
    "gemm": GemmRecord,
    "bmm": BmmRecord,
    "vector": VectorRecord,
    "attention": AttentionRecord,
    "layer": LayerRecord,
    "layer_train": LayerRecord,
}
#: Every kind of record accelsim predicts, and what each must hold.
RECORDS: dict[
    str, type[Record] | type[ConcurrencyRecord] | type[LlmGenerateRecord] | type[TrainStepRecord] | type[KernelRecord]
] = {
    **LOWERED,
    "concurrency": ConcurrencyRecord,
    "llm_generate": LlmGenerateRecord,
    "train_step": TrainStepRecord,
    "collective": CollectiveRecord,
}
#: Records of a card's kernels and collectives (accelsim.kernel_records), told apart by their ``params``: a
#: ``gemm`` with ``params`` is this kind, one without is the GPU calibration's.
KERNEL_RECORDS: dict[str, type[KernelRecord]] = {"gemm": GemmKernelRecord, "collective": CollectiveRecord}
#: Kinds of record the calibration scripts write that accelsim does not predict, and why.
NOT_PREDICTED = {
    "device": "the GPU and its software, not a measurement",
    "done": "the end of the run, not a measurement",
}
#: The kinds of record lowered to kernels and predicted one by one (the concurrency record is predicted apart).
MEASURED = tuple(SHAPES)


@dataclass
class Kernel:
    op: str
    shape: tuple[int, ...]
    reads: int | None = None  # elements; None: the op's default operands
    writes: int | None = None


class _Stream:
    """Kernels launched one after another."""

    def __init__(self) -> None:
        self.kernels: list[Kernel] = []

    def k(self, op: str, shape: Sequence[int], reads: int | None = None, writes: int | None = None) -> None:
        self.kernels.append(Kernel(op, tuple(int(x) for x in shape), reads, writes))

    def vec(self, op: str, n: int, inputs: int = 1, writes: int | None = None) -> None:
        self.k(op, (n,), inputs * n, n if writes is None else writes)

    def row(self, op: str, rows: int, cols: int, inputs: int = 1, writes: int | None = None) -> None:
        """A row-wise op (softmax, layernorm, a reduction over the last dimension) of rows x cols."""
        n = rows * cols
        self.k(op, (rows, cols), inputs * n, n if writes is None else writes)


def _mask(st: _Stream, n: int, kernels: int) -> None:
    """Building a boolean mask of n elements (ones/arange, triu, compares...): small kernels, each one launch."""
    for _ in range(kernels):
        st.k("copy", (n,), 0, n)


def _masked_fill(st: _Stream, n: int) -> None:
    """``x.masked_fill(mask, v)`` out of place: a clone (a plain device copy), then the fill in place, which reads
    a broadcast mask element by element (a strided kernel)."""
    st.vec("copy", n)
    st.vec("masked_fill", n)


def _attention(st: _Stream, variant: str, B: int, H: int, S: int, D: int) -> None:
    """The kernels gpu_calib.py's attention functions launch, as a torch.profiler trace of them shows
    (tools/gpu_kernel_profile.py), for contiguous q, k, v."""
    G, X = B * H, B * H * S * D
    if variant == "softmax_unfused":
        P = G * S * S
        st.k("bmm", (G, S, D, S))
        st.vec("scale", P)
        _mask(st, S * S, 2)  # ones, triu
        _masked_fill(st, P)
        st.row("softmax", G * S, S)
        st.k("bmm", (G, S, S, D))
    elif variant == "sdpa_flash":
        st.k("flash_attn_causal", (G, S, D))
    elif variant == "window256":
        w = GPU_CALIB.window
        nb = S // w
        for _ in range(2):  # kp, vp: zeros for block 0, then a strided copy of the shifted blocks
            st.k("copy", (G * w * D,), 0, G * w * D)
            st.vec("strided_copy", G * w * D)
            if nb > 1:  # one block: nothing to shift
                st.vec("strided_copy", X - G * w * D)
        for _ in range(4):  # k2, v2: each a concatenation along the key axis, one strided copy per half
            st.vec("strided_copy", X)
        st.k("bmm", (G * nb, w, D, 2 * w))
        scores = 2 * G * S * w
        st.vec("scale", scores)
        _mask(st, nb * w * 2 * w, 8)  # two aranges, an add, two compares, an or, the expand's copy, block 0
        _masked_fill(st, scores)
        st.row("softmax", G * S, 2 * w)
        st.k("bmm", (G * nb, w, 2 * w, D))
    elif variant == "linear_chunked":
        c = GPU_CALIB.chunk
        n = S // c
        st_el = G * n * D * D
        for _ in range(2):  # phi(q), phi(k): elu, then + 1
            st.vec("elu1", X)
            st.vec("add", X)
        st.k("bmm", (G * n, D, c, D))  # per-chunk k^T v
        st.k("cumsum", (n, G * D * D), st_el, st_el)  # running state over the chunks
        st.vec("add", st_el, inputs=2)  # - kv: exclusive
        st.k("bmm", (G * n, c, D, D))  # q @ state
        st.row("reduce", G * S, D, writes=G * n * D)  # kc.sum(3)
        st.k("cumsum", (n, G * D), G * n * D, G * n * D)
        st.row("reduce", G * S, D, writes=G * n * D)  # kc.sum(3) again
        st.vec("add", G * n * D, inputs=2)
        _mask(st, c * c, 2)  # ones, tril
        st.k("bmm", (G * n, c, D, c))  # q k^T within the chunk
        _mask(st, c * c, 1)  # ~m
        _masked_fill(st, G * S * c)
        st.k("bmm", (G * n, c, c, D))  # x v
        st.k("broadcast_mul", (X,), X + G * n * D, X)  # q * ks
        st.row("reduce", G * S, D, writes=G * S)
        st.row("reduce", G * S, c, writes=G * S)
        st.vec("add", G * S, inputs=2)
        st.vec("add", G * S)
        st.vec("add", X, inputs=2)  # inter + intra
        st.k("broadcast_divide", (X,), X + G * S, X)
    elif variant == "linear_outer":
        for _ in range(2):
            st.vec("elu1", X)
            st.vec("add", X)
        outer = G * S * D * D
        st.k("broadcast_mul", (outer,), 2 * X, outer)  # k_i v_i^T for every token
        st.k("cumsum", (S, G * D * D), outer, outer)
        st.k("bmm", (G * S, 1, D, D))
        st.k("cumsum", (S, G * D), X, X)  # cumsum of k
        st.vec("mul", X, inputs=2)
        st.row("reduce", G * S, D, writes=G * S)
        st.vec("add", G * S)
        st.k("broadcast_divide", (X,), X + G * S, X)
    else:
        raise AccelsimError(f"unknown attention variant {variant!r}", key="variant")


def _layer(st: _Stream, variant: str, B: int, S: int, dm: int, h: int) -> None:
    """gpu_calib.py's ``layer_fn``: a pre-layernorm block, with the attention its variant names."""
    T = B * S
    hidden = GPU_CALIB.mlp_ratio * dm
    st.row("layernorm", T, dm)
    st.k("gemm", (T, dm, 3 * dm))
    if variant != "sdpa_flash":  # q, k, v are strided views of the QKV output; eager ops copy them first
        for _ in range(3):
            st.vec("strided_copy", T * dm // 3 if variant == "hybrid" else T * dm)
    if variant == "hybrid":
        windowed = GPU_CALIB.window_heads(h)
        _attention(st, "window256", B, windowed, S, dm // h)
        _attention(st, "linear_chunked", B, h - windowed, S, dm // h)
        st.vec("strided_copy", T * dm)  # torch.cat of the two halves along the heads
    else:
        _attention(st, variant, B, h, S, dm // h)
    if variant != "sdpa_flash":  # cuDNN writes its output already in (B, S, H, D) order
        st.vec("strided_copy", T * dm)  # transpose(1, 2).reshape
    st.k("gemm", (T, dm, dm))
    st.vec("add", T * dm, inputs=2)
    st.row("layernorm", T, dm)
    st.k("gemm", (T, dm, hidden))
    st.vec("gelu", T * hidden)
    st.k("gemm", (T, hidden, dm))
    st.vec("add", T * dm, inputs=2)


#: The gradient kernel of a one-input forward kernel (an op not listed is its own gradient's kind).
_GRAD = {"gelu": "gelu_grad", "softmax": "softmax_grad", "elu1": "elu1_grad", "exp": "mul", "reduce": "copy"}


def _backward(forward: list[Kernel]) -> list[Kernel]:
    """Kernels of autograd's backward pass, in reverse order of the forward kernels (as a profile of the
    calibration's training step lists them: a product's gradient is one kernel per input, plus a reduction for a
    broadcast input; a scan's is a flipped scan; layernorm's is the input's and the weights' gradients)."""
    out: list[Kernel] = []
    for k in reversed(forward):
        n = math.prod(k.shape)
        if k.op == "gemm":
            m, kk, nn = k.shape
            out += [Kernel("gemm", (m, nn, kk)), Kernel("gemm", (kk, m, nn))]
        elif k.op == "bmm":
            b, m, kk, nn = k.shape
            out += [Kernel("bmm", (b, m, nn, kk)), Kernel("bmm", (b, kk, m, nn))]
        elif k.op == "flash_attn_causal":
            g, s, d = k.shape  # FlashAttention-2's backward: rowsum(dO * O), five matmuls to the forward's two,
            x = g * s * d  # and dQ accumulated in FP32 converted to BF16
            out += [
                Kernel("reduce", (g * s, d), 2 * x, g * s),
                Kernel("flash_attn_causal", (math.ceil(g * 2.5), s, d)),
                Kernel("copy", (x,), 2 * x, x),
            ]
        elif k.op == "add" or (k.op == "copy" and k.reads == 0):
            continue  # gradients pass through an add; accumulation is counted below; masks need none
        elif k.op == "cumsum":
            out += [
                Kernel("strided_copy", (n,)),
                Kernel("cumsum", k.shape, k.reads, k.writes),
                Kernel("strided_copy", (n,)),
            ]  # flip, scan, flip
        elif k.op in ("mul", "broadcast_mul", "broadcast_divide"):
            op = "mul" if k.op == "mul" else "broadcast_mul"
            out += [Kernel(op, (n,), 2 * n, n), Kernel(op, (n,), 2 * n, n)]  # one gradient per input
            if k.op != "mul":  # the broadcast input's gradient is summed over the broadcast axis
                out.append(Kernel("reduce", (n,), n, (k.reads or 2 * n) - n))
        elif k.op == "layernorm":
            rows, cols = k.shape
            out += [Kernel("layernorm_grad", k.shape, 2 * n, n), Kernel("reduce", k.shape, 2 * n, 2 * cols)]
        else:
            grad = _GRAD.get(k.op, k.op)
            shape = k.shape if OPS[grad].row_passes > 1 else (n,)
            out.append(Kernel(grad, shape, 2 * n, n))
    return out


def lower_record(rec: Mapping[str, Any] | Shape) -> TaskGraph:
    """The kernels of one measured record, each after the one before, in the record's ``dtype`` (default: what
    gpu_calib.py ran, GPU_CALIB.dtype): an fp8 GEMM record is costed at the fp8 rate. A mapping is checked first
    (as a record where it carries ``ms``, else as what ran); a bad one is an AccelsimError naming the key."""
    r = rec if isinstance(rec, GemmShape | BmmShape | VectorShape | AttentionShape | LayerShape) else _shape(rec)
    st = _Stream()
    if isinstance(r, GemmShape):
        st.k("gemm", (r.M, r.K, r.N))
    elif isinstance(r, BmmShape):
        st.k("bmm", (r.B, r.M, r.K, r.N))
    elif isinstance(r, VectorShape):
        n, rows, cols = r.rows * r.cols, r.rows, r.cols
        op = {
            "add": "add",
            "gelu": "gelu",
            "exp": "exp",
            "softmax": "softmax",
            "layernorm": "layernorm",
            "rowsum": "reduce",
        }[r.op]
        shape = (rows, cols)
        st.k(
            op,
            shape,
            (2 * n if op == "add" else n) + (2 * cols if op == "layernorm" else 0),
            rows if op == "reduce" else n,
        )
    elif isinstance(r, AttentionShape):
        _attention(st, r.variant, r.B, r.H, r.S, r.D)
    else:
        _layer(st, r.variant, r.B, r.S, r.d_model, r.heads)
        if r.kind == "layer_train":
            T = r.B * r.S * r.d_model
            st.vec("copy", T)  # .float()
            st.vec("reduce", T, writes=1)  # .sum()
            forward = list(st.kernels)
            st.kernels += _backward(forward)
            st.vec("add", T, inputs=2)  # the residual stream's gradients accumulate twice per layer
            st.vec("add", T, inputs=2)
    return _graph(st.kernels, r.kind, r.dtype)


def _shape(rec: Mapping[str, Any]) -> Shape:
    kind = _kind(rec, "<record>", None)
    if kind not in SHAPES:
        raise AccelsimError(f"cannot lower a {kind!r} record; lowered kinds: {', '.join(SHAPES)}", key="kind")
    return _checked(LOWERED[kind] if "ms" in rec else SHAPES[kind], rec, "<record>", None)


def _where(line: int | None, key: str | None) -> str | None:
    """``line 3: ms``: a problem's place in a measurement file (no line: in a record given as a mapping)."""
    parts = [p for p in (None if line is None else f"line {line}", key) if p]
    return ": ".join(parts) or None


def _kind(rec: Any, source: str, line: int | None) -> str:
    if not isinstance(rec, Mapping):
        got = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(type(rec), "a number")
        raise AccelsimError(
            f'expected a JSON object ({{"kind": ..., ...}}), got {got}', source=source, key=_where(line, None)
        )
    if "kind" not in rec:
        raise AccelsimError(
            f"required key is missing (the record's kind: {', '.join(RECORDS)}, ...)",
            source=source,
            key=_where(line, "kind"),
        )
    kind = rec["kind"]
    if not isinstance(kind, str):
        raise AccelsimError(
            f"must be a string naming the record's kind, got {kind!r}", source=source, key=_where(line, "kind")
        )
    return kind


_Spec = TypeVar("_Spec", bound=Shape | ConcurrencyRecord | LlmGenerateRecord | TrainStepRecord | KernelRecord)


def _checked(model: type[_Spec], rec: Mapping[str, Any], source: str, line: int | None) -> _Spec:
    """``rec`` as ``model``, its keys' types, values and combinations checked; one AccelsimError for the first
    problem, naming the line and the key."""
    try:
        spec = build(model, dict(rec), source)
        spec.check()
    except AccelsimError as exc:
        raise AccelsimError(exc.detail, source=source, key=_where(line, exc.key)) from None
    return spec


def _graph(kernels: list[Kernel], name: str, dtype: str) -> TaskGraph:
    names = [f"k{i}.{k.op}" for i, k in enumerate(kernels)]
    size = DTYPE_BYTES[dtype]
    tasks = [
        make_task(
            names[i],
            k.op,
            k.shape,
            dtype=dtype,
            bytes_read=None if k.reads is None else size * k.reads,
            bytes_written=None if k.writes is None else size * k.writes,
            deps=names[i - 1 : i],
        )
        for i, k in enumerate(kernels)
    ]
    return TaskGraph(tasks, name=name, source="<measurement>")


@dataclass(frozen=True)
class Measured:
    """A record accelsim predicts: where it is, what it holds as read (every key kept), and that checked."""

    line: int
    record: Mapping[str, Any]
    spec: Record | ConcurrencyRecord | LlmGenerateRecord | TrainStepRecord | KernelRecord


@dataclass(frozen=True)
class Skipped:
    """A record of a kind accelsim does not predict, and why; ``validate`` lists it, never drops it unsaid."""

    line: int
    kind: str
    reason: str


@dataclass(frozen=True)
class Measurements:
    """A measurement file's records, checked: those accelsim predicts (concurrency included) and those skipped."""

    source: str
    records: tuple[Measured, ...]
    skipped: tuple[Skipped, ...] = ()
    #: (line, name) of the device record (gpu_calib.py's first line): the device the kernels were measured on.
    device: tuple[int, str] | None = None


class _DuplicateKey(Exception):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(k)
        out[k] = v
    return out


def read_records(path: str | Path) -> Measurements:
    """A JSON-lines measurement file (../shared/calibration/README.md), every record checked: a line that is not
    UTF-8, not a JSON object or not a valid record of its kind is one AccelsimError naming the file, the line and
    the key; a record of a kind accelsim does not predict is skipped, with its reason."""
    source = str(path)
    data = read_input(path, "a JSON-lines file")
    rows: list[tuple[int, Any]] = []
    for n, raw in enumerate(data.splitlines(), 1):
        try:
            text = raw.decode("utf-8-sig" if n == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            raise AccelsimError(
                f"not UTF-8 text (byte {raw[exc.start]:#04x} at column {exc.start + 1})", source=source, key=f"line {n}"
            ) from None
        if not text.strip():
            continue
        try:
            rows.append((n, json.loads(text, object_pairs_hook=_no_duplicates)))
        except json.JSONDecodeError as exc:
            raise AccelsimError(
                f"not a JSON object ({exc.msg} at column {exc.colno})", source=source, key=f"line {n}"
            ) from None
        except _DuplicateKey as exc:
            raise AccelsimError(f"key {exc.args[0]!r} is given twice", source=source, key=f"line {n}") from None
        except RecursionError:
            raise AccelsimError("not a JSON object (nested too deeply)", source=source, key=f"line {n}") from None
    if not rows:
        raise AccelsimError(
            "no records: the file is empty; expected one JSON object per line (../shared/calibration/README.md)",
            source=source,
        )
    return _check_rows(rows, source)


def measurements(records: Measurements | Sequence[Mapping[str, Any]]) -> Measurements:
    """Measurements as read, or records given as mappings (numbered from 1), checked as a file's are."""
    return records if isinstance(records, Measurements) else _check_rows(list(enumerate(records, 1)), "<records>")


def _check_rows(rows: Sequence[tuple[int, Any]], source: str) -> Measurements:
    records: list[Measured] = []
    skipped: list[Skipped] = []
    concurrency_line = None
    device = None
    for n, rec in rows:
        kind = _kind(rec, source, n)
        if kind == "device" and device is None and isinstance(rec.get("name"), str):
            device = (n, rec["name"])
        if kind not in RECORDS:
            reason = NOT_PREDICTED.get(kind, f"not a kind accelsim predicts ({', '.join(RECORDS)})")
            skipped.append(Skipped(n, kind, reason))
            continue
        spec = _checked(KERNEL_RECORDS[kind] if is_kernel_record(rec) else RECORDS[kind], rec, source, n)
        if isinstance(spec, ConcurrencyRecord):
            if concurrency_line is not None:
                skipped.append(
                    Skipped(
                        n, kind, f"a second concurrency record; the first (line {concurrency_line}) is the one compared"
                    )
                )
                continue
            concurrency_line = n
        records.append(Measured(n, rec, spec))
    return Measurements(source, tuple(records), tuple(skipped), device)


def _alnum(text: str) -> str:
    return "".join(c for c in text.lower() if c.isalnum())


def device_warning(chip: Chip | None, m: Measurements) -> str | None:
    """Why kernel records measured on one device and predicted on a chip profile of another compare two chips
    (``validate --chip gaudi1`` on H200 records), or None: no device record, no kernel record, or the device's
    name holds the chip's (``NVIDIA H200`` and h200)."""
    kernels = any(not isinstance(r.spec, TrainStepRecord | LlmGenerateRecord) for r in m.records)
    if chip is None or m.device is None or not kernels:
        return None
    line, name = m.device
    if _alnum(chip.name) in _alnum(name):
        return None
    return (
        f"{m.source}: line {line}: the kernel records were measured on {name}, not on {chip.name}: each error "
        f"below compares two different chips (give --chip the profile of {name})"
    )


def predict_ms(chip: Chip, graph: TaskGraph) -> float:
    return run(chip, graph, "naive").latency_us / 1e3


def lower_at(spec: Mapping[str, Any] | Shape, source: str, line: int) -> TaskGraph:
    """``lower_record``, a failure (sizes past what 64-bit counters hold) named by the record's file and line."""
    try:
        return lower_record(spec)
    except AccelsimError as exc:
        detail = f"{exc.key}: {exc.detail}" if exc.key else exc.detail
        raise AccelsimError(f"sizes too large to simulate: {detail}", source=source, key=f"line {line}") from None


def predict_at(chip: Chip, graph: TaskGraph, source: str, line: int) -> float:
    """``predict_ms``, a failure named by the record's file and line: a dtype or op the chip cannot run, sizes
    past what 64-bit counters hold, a latency that is not a finite number."""
    where = f"line {line}"
    try:
        ms = predict_ms(chip, graph)
    except AccelsimError as exc:
        detail = f"{exc.key}: {exc.detail}" if exc.key else exc.detail
        raise AccelsimError(f"cannot simulate it on {chip.name}: {detail}", source=source, key=where) from None
    except OverflowError:
        raise AccelsimError(
            "sizes too large to simulate (a kernel's bytes or cycles overflow 64 bits)", source=source, key=where
        ) from None
    if not math.isfinite(ms) or ms <= 0:
        raise AccelsimError(
            f"cannot simulate it on {chip.name}: the predicted latency is {ms} ms", source=source, key=where
        )
    return ms


@dataclass(frozen=True)
class Concurrency:
    """The concurrency record, predicted (ms) next to what was measured."""

    gemm_ms: float
    softmax_ms: float
    serial_ms: float
    two_streams_ms: float
    measured_two_streams_ms: float
    measured_serial_ms: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def concurrency(
    chip: Chip, rec: Mapping[str, Any] | ConcurrencyRecord, source: str = "<record>", line: int = 1
) -> Concurrency:
    """The concurrency record: a GEMM and a softmax (GPU_CALIB's shapes), alone, in a row and on two streams."""
    if not isinstance(rec, ConcurrencyRecord):
        rec = _checked(ConcurrencyRecord, rec, source, None)
    gemm = make_task("gemm", "gemm", GPU_CALIB.concurrency_gemm, dtype=GPU_CALIB.dtype)
    soft = make_task("softmax", "softmax", GPU_CALIB.concurrency_softmax, dtype=GPU_CALIB.dtype)
    alone = {t.name: predict_at(chip, TaskGraph([t]), source, line) for t in (gemm, soft)}
    after = make_task("softmax", "softmax", GPU_CALIB.concurrency_softmax, dtype=GPU_CALIB.dtype, deps=["gemm"])
    serial = predict_at(chip, TaskGraph([gemm, after]), source, line)
    both = predict_at(chip, TaskGraph([gemm, soft]), source, line)
    return Concurrency(
        gemm_ms=alone["gemm"],
        softmax_ms=alone["softmax"],
        serial_ms=serial,
        two_streams_ms=both,
        measured_two_streams_ms=rec.two_streams_ms,
        measured_serial_ms=rec.serial_ms,
    )


@dataclass(frozen=True)
class Prediction:
    """One measured record (as read, every key kept) with its predicted latency."""

    record: Mapping[str, Any]
    measured_ms: float
    predicted_ms: float
    rel_error: float  # predicted / measured - 1

    @property
    def kind(self) -> str:
        return str(self.record["kind"])

    @property
    def counted(self) -> bool:
        """Whether it counts in the error statistics (records under MIN_MS are launch overhead and noise)."""
        return self.measured_ms >= MIN_MS

    def to_dict(self) -> dict[str, Any]:
        """The record's keys, then measured_ms, predicted_ms and rel_error (the JSON ``validate`` prints)."""
        return {
            **self.record,
            "measured_ms": self.measured_ms,
            "predicted_ms": self.predicted_ms,
            "rel_error": self.rel_error,
        }


@dataclass(frozen=True)
class ErrorStats:
    """|error| statistics over the records of one kind (or all of them) of at least MIN_MS."""

    records: int
    median_abs_error: float
    p90_abs_error: float


@dataclass(frozen=True)
class Validation:
    """Predicted against measured milliseconds for every record a chip profile was checked on."""

    chip: str
    records: tuple[Prediction | GenerationPrediction | KernelPrediction, ...]
    summary: Mapping[str, ErrorStats]  # by record kind, then "overall"
    concurrency: Concurrency | None
    skipped: tuple[Skipped, ...] = ()  # records of kinds accelsim does not predict, with the reason
    #: What the command warns of on stderr (device_warning).
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The JSON ``accelsim validate --json`` prints."""
        return {
            "chip": self.chip,
            "records": [r.to_dict() for r in self.records],
            "summary": {kind: asdict(stats) for kind, stats in self.summary.items()},
            "concurrency": None if self.concurrency is None else self.concurrency.to_dict(),
            "skipped": [asdict(s) for s in self.skipped],
        }


def validate(chip: Chip | None, records: Measurements | Sequence[Mapping[str, Any]]) -> Validation:
    """Predicted against measured milliseconds per record, and |error| statistics over records >= MIN_MS. Records
    given as mappings are checked as a file's are; none that accelsim predicts is an AccelsimError that gives each
    skipped record's reason. Without a chip only train_step records are predicted, each on its system's chip."""
    m = measurements(records)
    others = sorted({r.spec.kind for r in m.records if not isinstance(r.spec, TrainStepRecord)})

    def the_chip() -> Chip:
        if chip is None:
            raise AccelsimError(
                f"give --chip: only train_step records name their chip (their system's); found {', '.join(others)}",
                source=m.source,
                key="--chip",
            )
        return chip

    if others:
        the_chip()
    rows: list[Prediction | GenerationPrediction | KernelPrediction] = []
    skipped = list(m.skipped)
    conc = None
    for r in m.records:
        if isinstance(r.spec, ConcurrencyRecord):
            conc = concurrency(the_chip(), r.spec, m.source, r.line)
            continue
        if isinstance(r.spec, GemmKernelRecord | CollectiveRecord):
            why = why_not_kernel(r.spec, the_chip())
            if why is None:
                rows.append(predict_kernel(the_chip(), r.spec, r.record, m.source, r.line))
            else:
                skipped.append(Skipped(r.line, r.spec.kind, why))
            continue
        if isinstance(r.spec, TrainStepRecord | LlmGenerateRecord):
            spec = r.spec
            reason = (
                why_not_train_step(spec, chip)
                if isinstance(spec, TrainStepRecord)
                else why_not_predicted(spec, the_chip())
            )
            try:
                if reason is None and isinstance(spec, TrainStepRecord):
                    ms = predict_train_step(spec, m.source)
                    rows.append(Prediction(r.record, spec.ms, round(ms, 5), round(ms / spec.ms - 1, 4)))
                elif reason is None and isinstance(spec, LlmGenerateRecord):
                    rows.append(predict_generation(the_chip(), spec, r.record))
            except AccelsimError as exc:
                detail = f"{exc.key}: {exc.detail}" if exc.key else exc.detail
                on = chip.name if chip else getattr(spec, "system", "its system")
                reason = f"cannot predict it on {on}: {detail}"
            if reason is not None:
                skipped.append(Skipped(r.line, spec.kind, reason))
            continue
        pred = predict_at(the_chip(), lower_at(r.spec, m.source, r.line), m.source, r.line)
        rows.append(
            Prediction(
                r.record, measured_ms=r.spec.ms, predicted_ms=round(pred, 5), rel_error=round(pred / r.spec.ms - 1, 4)
            )
        )
    if not rows and conc is None:
        kinds = Counter(s.kind for s in skipped)
        found = ", ".join(f"{n} {k}" for k, n in kinds.items()) or "none"
        reasons = "; ".join(f"line {s.line}: {s.reason}" for s in sorted(skipped, key=lambda s: s.line)[:20])
        more = f" (and {len(skipped) - 20} more)" if len(skipped) > 20 else ""
        raise AccelsimError(
            f"no record accelsim predicts ({', '.join(RECORDS)}) on {chip.name if chip else 'their systems'}; records "
            f"found: {found}" + (f"; skipped: {reasons}{more}" if reasons else ""),
            source=m.source,
        )
    return Validation(
        chip=chip.name if chip else "each record's system",
        records=tuple(rows),
        summary=summarize(rows),
        concurrency=conc,
        skipped=tuple(sorted(skipped, key=lambda s: s.line)),
        warnings=tuple(w for w in (device_warning(chip, m),) if w),
    )


def summarize(rows: Sequence[Prediction | GenerationPrediction | KernelPrediction]) -> dict[str, ErrorStats]:
    out: dict[str, ErrorStats] = {}
    kinds = sorted({r.kind for r in rows})
    for kind in [*kinds, "overall"]:
        errs = np.array([abs(r.rel_error) for r in rows if r.counted and (kind == "overall" or r.kind == kind)])
        if len(errs):
            out[kind] = ErrorStats(
                records=int(len(errs)),
                median_abs_error=round(float(np.median(errs)), 4),
                p90_abs_error=round(float(np.percentile(errs, 90)), 4),
            )
    return out
