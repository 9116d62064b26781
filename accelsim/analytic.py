"""Closed-form FLOPs and HBM traffic of a workload, written from the model's algebra, not from its task graph.

The lowering must conserve these totals at every granularity (tests/test_lowering.py). Conventions are the
lowering's: each op reads its operands and writes its result once (a tiled op reuses shared operands from SRAM),
element-wise FLOPs per element from accelsim.ops, a matrix product 2 FLOPs per MAC.

It is a second description on purpose, so it must change, by hand, whenever the lowering (accelsim.lowering,
accelsim.attention) changes one of the decisions it mirrors:

- the traffic rule: operands read and the result written once per op; a tiled GEMM's panels and a row op's
  parameters (layernorm scale and shift) fetched once; what a unit op declares ``shared``;
- the layer's op list (``layer_forward``): layernorm, QKV, the split-heads and merge-heads copies, projection,
  residual adds, the MLP with ``Workload.d_ff`` and GELU;
- each attention variant's op table (``softmax_ops``, ``window_ops``, ``linear_ops``: ops, sizes, which chunks
  have a state update), causal or not, and the hybrid's split of heads (``Workload.linear_heads``);
- training's backward (``layer_backward``): a data-gradient and a weight-gradient GEMM per weight, the gradient
  kernels, layernorm's parameter reductions, the attention tables' backward ops;
- Adam: 4 elements read and 3 written per parameter, for every weight, the layernorms, embeddings and heads;
- the ends (``_EmbeddingsAndHeads``): GPT gather, positions, final layernorm, LM head and cross-entropy; ViT
  patchify, patch GEMM, pooling, classifier; their backward; and without embeddings the input (and output
  gradient) copies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .ops import OPS
from .vocabulary import DTYPE_BYTES

if TYPE_CHECKING:  # workloads check their totals with this module: the type only, not a cycle
    from .workload import Workload


def _f(op: str) -> float:
    return OPS[op].flops_per_element


@dataclass
class Count:
    flops: float = 0.0
    elements: float = 0.0  # elements moved (read + written)

    def vec(self, op: str, n: float, reads: float | None = None, writes: float | None = None) -> None:
        self.flops += _f(op) * n
        self.elements += (n if reads is None else reads) + (n if writes is None else writes)

    def mm(self, macs: float, moved: float) -> None:
        self.flops += 2 * macs
        self.elements += moved


def _attention(c: Count, wl: Workload, variant: str, heads: int, backward: bool) -> None:
    B, S, D = wl.spec.run.batch, wl.seq_len, wl.d_head
    G = B * heads
    if not G:
        return
    causal = wl.causal
    if variant == "softmax":
        P = G * S * S  # score elements
        if not backward:
            c.mm(G * S * S * D, G * S * D * 2 + P)  # QK^T: Q, K in; scores out
            c.vec("scale", P)
            if causal:
                c.vec("mask", P)
            c.vec("softmax", P)
            c.mm(G * S * S * D, P + G * S * D * 2)  # x V
        else:
            c.mm(G * S * S * D, 2 * G * S * D + P)  # dP = dO V^T
            c.mm(G * S * S * D, P + 2 * G * S * D)  # dV = P^T dO
            c.vec("softmax_grad", P, reads=2 * P)
            if causal:
                c.vec("mask", P)
            c.vec("scale", P)
            c.mm(G * S * S * D, P + 2 * G * S * D)  # dQ = dS K
            c.mm(G * S * S * D, P + 2 * G * S * D)  # dK = dS^T Q
        return
    if variant == "window":
        w = wl.spec.attention.window
        k = 1 if not backward else 2
        c.flops += k * (2 * (2 * G * S * w * D) + 5 * G * S * w)
        c.elements += k * 4 * G * S * D
        return
    ch = wl.spec.attention.chunk
    n = S // ch
    X = G * S * D  # elements of one of q, k, v
    st = G * D * D  # one state
    if not backward:
        c.vec("elu1", 2 * X)
        c.mm(G * S * D * D, 2 * X + n * st)  # per-chunk k^T v
        if causal:
            c.vec("add", (n - 1) * st, reads=2 * (n - 1) * st, writes=(n - 1) * st)
            c.mm(G * S * D * D, X + n * st + X)  # q @ state per chunk
            c.mm(G * S * ch * D, 2 * X + G * S * ch)  # intra-chunk scores
            c.vec("mask", G * S * ch)
            c.mm(G * S * ch * D, G * S * ch + 2 * X)  # masked scores x v
            c.vec("reduce", X, reads=X, writes=n * G * D)
            c.vec("add", (n - 1) * G * D, reads=2 * (n - 1) * G * D, writes=(n - 1) * G * D)
            c.vec("reduce", G * S * (D + ch), reads=G * S * (D + ch) + n * G * D, writes=G * S)
            c.vec("add", X, reads=2 * X, writes=X)
        else:
            c.vec("add", (n - 1) * st, reads=2 * (n - 1) * st, writes=st if n > 1 else 0)
            c.mm(G * S * D * D, X + st + X)
            c.vec("reduce", X, reads=X, writes=n * G * D)
            c.vec("add", (n - 1) * G * D, reads=2 * (n - 1) * G * D, writes=G * D if n > 1 else 0)
            c.vec("reduce", X, reads=X + G * D, writes=G * S)
        c.vec("divide", X, reads=X + G * S, writes=X)
        return
    c.vec("divide", 2 * X, reads=2 * X + G * S, writes=X + G * S)
    c.mm(G * S * D * D, X + n * st + X if causal else X + st + X)  # dq from q @ state
    c.mm(G * S * D * D, 2 * X + n * st)  # d(state) = q^T d(inter): the outer products again
    if causal:
        c.vec("add", (n - 1) * st, reads=2 * (n - 1) * st, writes=(n - 1) * st)
        m = (n - 1) * G * ch * D * D  # the last chunk's k and v feed no later state
        c.mm(m, (n - 1) * (G * ch * D + st) + (n - 1) * G * ch * D)  # dk from the state
        c.mm(m, (n - 1) * (G * ch * D + st) + (n - 1) * G * ch * D)  # dv from the state
        c.mm(G * S * ch * D, 2 * X + G * S * ch)  # d(scores)
        c.mm(G * S * ch * D, G * S * ch + 2 * X)  # dv intra
        c.vec("mask", G * S * ch)
        c.mm(G * S * ch * D, G * S * ch + 2 * X)  # dq intra
        c.mm(G * S * ch * D, G * S * ch + 2 * X)  # dk intra
        c.vec("mul", G * S * (D + ch), reads=G * S * (D + ch) + G * S, writes=G * S * (D + ch))
        c.vec("add", (n - 1) * G * D, reads=2 * (n - 1) * G * D, writes=(n - 1) * G * D)
    else:
        c.vec("add", (n - 1) * st, reads=2 * (n - 1) * st, writes=st if n > 1 else 0)
        c.mm(G * S * D * D, X + st + X)
        c.mm(G * S * D * D, X + st + X)
        c.vec("mul", X, reads=X + G * S, writes=X)
        c.vec("add", (n - 1) * G * D, reads=2 * (n - 1) * G * D, writes=G * D if n > 1 else 0)
    c.vec("elu1_grad", 2 * X, reads=4 * X, writes=2 * X)


def _layer(c: Count, wl: Workload, backward: bool) -> None:
    T, d, dff = wl.tokens, wl.spec.model.d_model, wl.d_ff
    variant = wl.spec.attention.variant
    lin = wl.linear_heads
    heads = {
        "softmax": wl.spec.model.heads if variant == "softmax" else 0,
        "window": wl.spec.model.heads - lin if variant in ("window", "hybrid") else 0,
        "linear": lin,
    }

    def gemm(K: int, N: int) -> None:  # activations (T x K) @ weights (K x N)
        c.mm(T * K * N, T * K + K * N + T * N)

    def wgrad(K: int, N: int) -> None:  # dW = X^T dY, then Adam on it
        c.mm(K * T * N, K * T + T * N + K * N)
        c.vec("adam", K * N, reads=4 * K * N, writes=3 * K * N)

    if not backward:
        c.vec("layernorm", T * d, reads=T * d + 2 * d)
        gemm(d, 3 * d)
        c.vec("copy", 3 * T * d)
        for v, h in heads.items():
            _attention(c, wl, v, h, backward=False)
        c.vec("copy", T * d)
        gemm(d, d)
        c.vec("add", T * d, reads=2 * T * d)
        c.vec("layernorm", T * d, reads=T * d + 2 * d)
        gemm(d, dff)
        c.vec("gelu", T * dff)
        gemm(dff, d)
        c.vec("add", T * d, reads=2 * T * d)
        return
    gemm(d, dff)  # d(act) = dY W_down^T
    wgrad(dff, d)
    c.vec("gelu_grad", T * dff, reads=2 * T * dff)
    gemm(dff, d)
    wgrad(d, dff)
    c.vec("layernorm_grad", T * d, reads=2 * T * d + 2 * d)
    c.vec("reduce", 2 * T * d, writes=2 * d)
    c.vec("add", T * d, reads=2 * T * d)
    gemm(d, d)
    wgrad(d, d)
    c.vec("copy", T * d)
    for v, h in heads.items():
        _attention(c, wl, v, h, backward=True)
    c.vec("copy", 3 * T * d)
    gemm(3 * d, d)
    wgrad(d, 3 * d)
    c.vec("layernorm_grad", T * d, reads=2 * T * d + 2 * d)
    c.vec("reduce", 2 * T * d, writes=2 * d)
    c.vec("adam", 4 * d, reads=16 * d, writes=12 * d)
    c.vec("add", T * d, reads=2 * T * d)


def _ends(c: Count, wl: Workload, training: bool) -> None:
    m = wl.spec.model
    T, d, B, S = wl.tokens, m.d_model, wl.spec.run.batch, wl.seq_len
    if not m.embeddings:
        c.vec("copy", T * d)  # the input activations
        if training:
            c.vec("copy", T * d)  # the output gradient
        return
    if m.family == "gpt":
        V = m.vocab or 0
        c.vec("copy", T * d)  # token embedding gather
        c.vec("add", T * d, reads=2 * T * d)  # + positions
        c.vec("layernorm", T * d, reads=T * d + 2 * d)
        c.mm(T * d * V, T * d + d * V + T * V)  # LM head
        if training:
            c.vec("softmax_grad", T * V)  # cross-entropy and its gradient
            c.mm(T * V * d, T * V + V * d + T * d)
            c.mm(d * T * V, d * T + T * V + d * V)
            c.vec("adam", d * V, reads=4 * d * V, writes=3 * d * V)
            c.vec("layernorm_grad", T * d, reads=2 * T * d + 2 * d)
            c.vec("add", T * d, reads=2 * T * d)  # scatter into the embedding table's gradient
            c.vec("reduce", T * d, writes=S * d)  # positions' gradient
            c.vec("adam", V * d, reads=4 * V * d, writes=3 * V * d)
            c.vec("adam", S * d, reads=4 * S * d, writes=3 * S * d)
        return
    P, cpp, C = wl.patches, m.channels * (m.patch_size or 0) ** 2, m.classes or 0
    c.vec("copy", B * P * cpp)  # patchify
    c.mm(B * P * cpp * d, B * P * cpp + cpp * d + B * P * d)
    c.vec("add", T * d, reads=2 * T * d)  # class token and positions
    if m.class_token:
        c.vec("copy", B * d)
    else:
        c.vec("reduce", T * d, writes=B * d)
    c.vec("layernorm", B * d, reads=B * d + 2 * d)
    c.mm(B * d * C, B * d + d * C + B * C)
    if training:
        c.vec("softmax_grad", B * C)
        c.mm(B * C * d, B * C + C * d + B * d)
        c.mm(d * B * C, d * B + B * C + d * C)
        c.vec("adam", d * C, reads=4 * d * C, writes=3 * d * C)
        c.vec("layernorm_grad", B * d, reads=2 * B * d + 2 * d)
        c.vec("copy", T * d)
        c.mm(cpp * B * P * d, cpp * B * P + B * P * d + cpp * d)
        c.vec("adam", cpp * d, reads=4 * cpp * d, writes=3 * cpp * d)
        c.vec("reduce", T * d, writes=S * d)
        c.vec("adam", S * d, reads=4 * S * d, writes=3 * S * d)


def analytic_counts(wl: Workload) -> tuple[int, int]:
    """(FLOPs, bytes) of one inference pass or training step of ``wl``."""
    c = Count()
    training = wl.spec.run.mode == "training"
    _ends(c, wl, training)
    layer = Count()  # every layer is the same: count one, times the layers
    _layer(layer, wl, backward=False)
    if training:
        _layer(layer, wl, backward=True)
    c.flops += wl.spec.model.layers * layer.flops
    c.elements += wl.spec.model.layers * layer.elements
    return int(round(c.flops)), int(round(c.elements)) * DTYPE_BYTES[wl.spec.run.dtype]
