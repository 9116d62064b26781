"""Closed-form FLOPs and HBM traffic of a workload, written from the model's algebra, not from its task graph.

The lowering must conserve these totals at every granularity (tests/test_lowering.py). Conventions are the
lowering's: each op reads its operands and writes its result once (a tiled op reuses shared operands from SRAM),
element-wise FLOPs per element from accelsim.ops, a matrix product 2 FLOPs per MAC.

It is a second description on purpose, so it must change, by hand, whenever the lowering (accelsim.lowering,
accelsim.attention) changes one of the decisions it mirrors:

- the traffic rule: operands read and the result written once per op; a tiled GEMM's panels and a row op's
  parameters (layernorm scale and shift) fetched once; what a unit op declares ``shared``;
- the layer's op list (``layer_forward``): layernorm, QKV, the split-heads and merge-heads copies, projection,
  residual adds, the MLP with ``Workload.d_ff`` and GELU (the same ops, in another order, with post-norm);
- each attention variant's op table (``softmax_ops``, ``window_ops``, ``linear_ops``: ops, sizes, which chunks
  have a state update), causal or not, and the hybrid's split of heads (``Workload.linear_heads``);
- training's backward (``layer_backward``): a data-gradient and a weight-gradient GEMM per weight, the gradient
  kernels, layernorm's parameter reductions, the attention tables' backward ops;
- Adam: 4 elements read and 3 written per parameter, for every weight, the layernorms, embeddings and heads;
- data parallelism (``flush_gradients``, ``zero3_gather``): a bucket per layer and end, all-reduced (ZeRO 0) or
  reduce-scattered with one Adam over the shard (and ZeRO 1-2's all-gather); ZeRO 2-3's reduce-scatter in a
  micro-batch without the update; ZeRO 3's gathers of each layer's and end's parameters, twice;
- which products read run.matmul_dtype: weight GEMMs, their data and weight gradients, attention's matmuls; not
  the LM head's or the patch embedding's;
- the ends (``_EmbeddingsAndHeads``): GPT gather, token types, positions, an encoder's embedding norm, final
  layernorm (or the MLM head's transform and norm), LM head and cross-entropy; ViT
  patchify, patch GEMM, pooling, classifier; their backward; and without embeddings the input (and output
  gradient) copies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .attention import flash_keys
from .ops import OPS
from .vocabulary import DTYPE_BYTES

if TYPE_CHECKING:  # workloads check their totals with this module: the type only, not a cycle
    from .workload import Workload


def _f(op: str) -> float:
    return OPS[op].flops_per_element


@dataclass
class Count:
    flops: float = 0.0
    elements: float = 0.0  # elements moved (read + written) in run.dtype
    low: float = 0.0  # elements read in run.matmul_dtype (a weight product's operands)

    adam: float = 0.0  # parameters Adam updates (a data-parallel bucket's size)

    def vec(self, op: str, n: float, reads: float | None = None, writes: float | None = None) -> None:
        if op == "adam":
            self.adam += n
        self.flops += _f(op) * n
        self.elements += (n if reads is None else reads) + (n if writes is None else writes)

    def mm(self, macs: float, moved: float) -> None:
        self.flops += 2 * macs
        self.elements += moved

    def weight_mm(self, macs: float, reads: float, writes: float) -> None:
        """A product with a weight: operands in run.matmul_dtype, result in run.dtype."""
        self.flops += 2 * macs
        self.low += reads
        self.elements += writes


def _attention(c: Count, wl: Workload, variant: str, heads: int, backward: bool, keys: int) -> None:
    B, S, D = wl.spec.run.batch, wl.seq_len, wl.d_head
    G = B * heads
    if not G:
        return
    causal = wl.causal
    # K and V are read once per key/value head, or once per query head where each runs alone (query_groups)
    readers = wl.kv_heads if wl.spec.attention.query_groups == "stacked" else heads
    if variant == "softmax":
        K = keys  # keys per query: cached and new positions, capped by a sliding window
        KV = B * readers * K * D  # one of K, V
        Q = G * S * D  # queries (or the output, or its gradient)
        P = G * S * K  # score elements
        # The matmuls read their operands in run.matmul_dtype (the fp8 recipe quantizes them, KV cache included)
        if not backward:
            c.weight_mm(G * S * K * D, Q + KV, P)  # QK^T: Q, K in; scores out
            c.vec("scale", P)
            if causal:
                c.vec("mask", P)
            c.vec("softmax", P)
            c.weight_mm(G * S * K * D, P + KV, Q)  # x V
        else:
            c.weight_mm(G * S * K * D, Q + KV, P)  # dP = dO V^T
            c.weight_mm(G * S * K * D, P + Q, KV)  # dV = P^T dO
            c.vec("softmax_grad", P, reads=2 * P)
            if causal:
                c.vec("mask", P)
            c.vec("scale", P)
            c.weight_mm(G * S * K * D, P + KV, Q)  # dQ = dS K
            c.weight_mm(G * S * K * D, P + Q, KV)  # dK = dS^T Q
        return
    if variant == "flash":  # one fused kernel: Q, K and V read once, the output written; scores stay on chip
        S = wl.spec.run.past_tokens + wl.seq_len
        seen = flash_keys(wl.seq_len, keys, causal, keys < S)  # on average, however the queries are tiled
        KV = B * readers * keys * D
        c.weight_mm(2 * G * wl.seq_len * seen * D, G * wl.seq_len * D + 2 * KV, G * wl.seq_len * D)
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


def _mlp(c: Count, wl: Workload, d_ff: int) -> None:
    """A dense MLP of hidden width ``d_ff`` (plain or gated)."""
    T, d, model = wl.tokens, wl.spec.model.d_model, wl.spec.model
    gated = model.mlp == "gated"
    width = 2 * d_ff if gated else d_ff
    c.weight_mm(T * d * width, T * d + d * width, T * width)
    c.vec(model.activation, T * d_ff)
    if gated:
        c.vec("mul", T * d_ff, reads=2 * T * d_ff)
    c.weight_mm(T * d_ff * d, T * d_ff + d_ff * d, T * d)


def _moe(c: Count, wl: Workload) -> None:
    """Router, top-k, gather, the used experts' batched MLP (each at the busiest expert's rows), the shared
    expert, the weighted sum."""
    T, model = wl.tokens, wl.spec.model
    d, E, k, d_ff = model.d_model, model.experts, model.experts_per_token, model.d_ff_expert or 0
    gated = model.mlp == "gated"
    width = 2 * d_ff if gated else d_ff
    used, per_expert = wl.moe_routing
    R = used * per_expert  # routed rows
    c.weight_mm(T * d * E, T * d + d * E, T * E)
    c.vec("softmax", T * E)
    c.vec("copy", R * d)
    c.weight_mm(R * d * width, R * d + used * d * width, R * width)
    c.vec(model.activation, R * d_ff)
    if gated:
        c.vec("mul", R * d_ff, reads=2 * R * d_ff)
    c.weight_mm(R * d_ff * d, R * d_ff + used * d_ff * d, R * d)
    if model.d_ff_shared:
        _mlp(c, wl, model.d_ff_shared)
    c.vec("add", T * d, reads=(k + (1 if model.d_ff_shared else 0)) * T * d)


def _layer(c: Count, wl: Workload, backward: bool, keys: int) -> None:
    model = wl.spec.model
    T, d, dff = wl.tokens, model.d_model, wl.d_ff
    qw, kvw, norm, np_ = wl.q_width, wl.kv_width, model.norm, wl.norm_params
    rotary, parallel, gated = model.positions == "rotary", model.parallel_block, model.mlp == "gated"
    variant = wl.spec.attention.variant
    lin = wl.linear_heads
    heads = {
        "softmax": model.heads if variant == "softmax" else 0,
        "flash": model.heads if variant == "flash" else 0,
        "window": model.heads - lin if variant in ("window", "hybrid") else 0,
        "linear": lin,
    }

    def gemm(K: int, N: int) -> None:  # activations (T x K) @ weights (K x N)
        c.weight_mm(T * K * N, T * K + K * N, T * N)

    def wgrad(K: int, N: int) -> None:  # dW = X^T dY (its operands in run.matmul_dtype), then Adam on it
        c.weight_mm(K * T * N, K * T + T * N, K * N)
        c.vec("adam", K * N, reads=4 * K * N, writes=3 * K * N)

    def mlp() -> None:
        if model.experts:
            _moe(c, wl)
        else:
            _mlp(c, wl, dff)

    tp = wl.spec.run.tensor_parallel
    tensor_parallel, sp = tp > 1, wl.spec.run.sequence_parallel
    R = T * d // tp if sp else T * d  # elements of the rows a card holds outside the tensor-parallel products

    def reduce(count: int) -> None:  # the row-parallel products' partial sums: all-reduced or reduce-scattered
        if sp:
            c.vec("reduce_scatter", count * T * d, reads=count * T * d, writes=count * R)
        elif tensor_parallel:
            c.vec("all_reduce", count * T * d)

    def gather(count: int) -> None:  # sequence parallelism: every card's rows before a column-parallel product
        if sp:
            c.vec("all_gather", count * R, reads=count * R, writes=count * T * d)

    if not backward:
        reduce(2)  # the attention's and the MLP's outputs
        gather(1 if parallel else 2)  # ln1's (and ln2's) output
        c.vec(norm, R, reads=R + np_)
        gemm(d, qw + 2 * kvw)
        c.vec("copy", T * (qw + 2 * kvw))
        if rotary:
            c.vec("rope", T * (qw + kvw))
        for v, h in heads.items():
            _attention(c, wl, v, h, False, keys)
        c.vec("copy", T * qw)
        gemm(qw, d)
        if parallel:
            mlp()
            c.vec("add", R, reads=3 * R)
            return
        c.vec("add", R, reads=2 * R)
        c.vec(norm, R, reads=R + np_)
        mlp()
        c.vec("add", R, reads=2 * R)
        return

    def mlp_backward() -> None:
        width = 2 * dff if gated else dff
        gemm(d, dff)  # d(act) = dY W_down^T
        wgrad(dff, d)
        if gated:
            c.vec("mul", 2 * T * dff, reads=4 * T * dff)
        c.vec(f"{model.activation}_grad", T * dff, reads=2 * T * dff)
        gemm(width, d)
        wgrad(d, width)

    def attention_backward() -> None:
        gemm(d, qw)
        wgrad(qw, d)
        c.vec("copy", T * qw)
        for v, h in heads.items():
            _attention(c, wl, v, h, True, keys)
        c.vec("copy", T * (qw + 2 * kvw))
        if rotary:
            c.vec("rope_grad", T * (qw + kvw))
        gemm(qw + 2 * kvw, d)
        wgrad(d, qw + 2 * kvw)

    def norm_backward() -> None:
        c.vec(f"{norm}_grad", R, reads=2 * R + np_)
        c.vec("reduce", T * np_ // tp if sp else T * np_, writes=np_)

    mode = wl.spec.run.recompute
    if mode == "full":  # the layer's forward again, before its backward
        _layer(c, wl, False, keys)
    elif mode == "selective":  # attention's core and the merge of its heads
        for v, h in heads.items():
            _attention(c, wl, v, h, False, keys)
        c.vec("copy", T * qw)
    reduce(2)  # the input gradients of the column-parallel products (QKV, MLP up)
    gather(2)  # the gradient reaching each branch's output, before its row-parallel product's backward
    mlp_backward()
    if parallel:
        attention_backward()
        c.vec("add", R, reads=2 * R)
        norm_backward()
        c.vec("adam", np_, reads=4 * np_, writes=3 * np_)
        c.vec("add", R, reads=2 * R)
        return
    norm_backward()
    c.vec("add", R, reads=2 * R)
    attention_backward()
    norm_backward()
    c.vec("adam", 2 * np_, reads=8 * np_, writes=6 * np_)
    c.vec("add", R, reads=2 * R)


def _ends(c: Count, wl: Workload, training: bool) -> None:
    m = wl.spec.model
    T, d, B, S = wl.tokens, m.d_model, wl.spec.run.batch, wl.seq_len
    norm, np_ = m.norm, wl.norm_params
    learned = m.positions == "learned"
    embed, head = wl.has_embeddings, wl.has_head
    tp, sp = wl.spec.run.tensor_parallel, wl.spec.run.sequence_parallel
    R = T * d // tp if sp else T * d  # elements of the rows a card holds outside the tensor-parallel products
    if not embed:
        c.vec("copy", R)  # the input activations
    if not head and training:
        c.vec("copy", R)  # the output gradient
    if not m.embeddings:
        return
    if m.family == "gpt":
        V = m.vocab or 0
        post, mlm = m.norm_position == "post", m.head == "mlm"
        if embed:
            c.vec("copy", T * d)  # token embedding gather
            if sp:  # a vocabulary-parallel table: the gathered rows reduce-scattered
                c.vec("reduce_scatter", T * d, reads=T * d, writes=R)
            elif tp > 1:  # ... or all-reduced
                c.vec("all_reduce", T * d)
            if m.token_types:
                c.vec("add", R, reads=2 * R)  # + token types
            if learned:
                c.vec("add", R, reads=2 * R)  # + positions
            if post:
                c.vec(norm, R, reads=R + np_)  # the embeddings' norm
        masked = wl.spec.run.logits == "masked"
        if head and masked:
            _masked_head(c, wl, training)
        head = head and not masked
        if head and mlm:  # the MLM head's transform (replicated under tensor parallelism) before its norm
            c.weight_mm(T * d * d, T * d + d * d, T * d)
            c.vec(m.activation, T * d)
        if head:
            rows = B if wl.spec.run.logits == "last" else T  # logits of every position, or of each last one
            normed = R if rows == T else rows * d
            c.vec(norm, normed, reads=normed + np_)
            if sp:  # every card's normed rows before the LM head
                c.vec("all_gather", R, reads=R, writes=T * d)
            c.mm(rows * d * V, rows * d + d * V + rows * V)  # LM head (in run.dtype whatever matmul_dtype says)
            if tp > 1 and not training:  # every card's slice of the logits gathered
                c.vec("all_gather", rows * V, reads=rows * V, writes=rows * V * tp)
            if tp > 1 and training:  # the rows' softmax statistics all-reduced
                c.vec("all_reduce", T * 2)
            if sp and training:  # the logits' input gradient reduce-scattered
                c.vec("reduce_scatter", T * d, reads=T * d, writes=R)
            elif tp > 1 and training:  # ... or all-reduced
                c.vec("all_reduce", T * d)
        if training and head:
            c.vec("softmax_grad", T * V)  # cross-entropy and its gradient
            c.mm(T * V * d, T * V + V * d + T * d)
            c.mm(d * T * V, d * T + T * V + d * V)
            c.vec("adam", d * V, reads=4 * d * V, writes=3 * d * V)
            c.vec(f"{norm}_grad", R, reads=2 * R + np_)
        if training and head and mlm:  # the transform's backward: activation, norm's parameters, dW, dA
            c.vec(f"{m.activation}_grad", T * d, reads=2 * T * d)
            c.vec("reduce", T * np_, writes=np_)
            c.vec("adam", np_, reads=4 * np_, writes=3 * np_)
            c.mm(d * T * d, d * T + T * d + d * d)
            c.vec("adam", d * d, reads=4 * d * d, writes=3 * d * d)
            c.weight_mm(T * d * d, T * d + d * d, T * d)
        if training and embed:
            if post:  # back through the embeddings' norm: its parameters' gradient and update
                c.vec("reduce", T * np_ // tp if sp else T * np_, writes=np_)
                c.vec(f"{norm}_grad", R, reads=2 * R + np_)
                c.vec("adam", np_, reads=4 * np_, writes=3 * np_)
            c.vec("add", R, reads=2 * R)  # scatter into the embedding table's gradient
            c.vec("adam", V * d, reads=4 * V * d, writes=3 * V * d)
            if learned:
                c.vec("reduce", R, writes=S * d)  # positions' gradient
                c.vec("adam", S * d, reads=4 * S * d, writes=3 * S * d)
            if m.token_types:
                c.vec("reduce", R, writes=m.token_types * d)  # token types' gradient
                c.vec("adam", m.token_types * d, reads=4 * m.token_types * d, writes=3 * m.token_types * d)
        return
    P, cpp, C = wl.patches, m.channels * (m.patch_size or 0) ** 2, m.classes or 0
    c.vec("copy", B * P * cpp)  # patchify
    c.mm(B * P * cpp * d, B * P * cpp + cpp * d + B * P * d)
    c.vec("add", T * d, reads=2 * T * d)  # class token and positions
    if m.class_token:
        c.vec("copy", B * d)
    else:
        c.vec("reduce", T * d, writes=B * d)
    c.vec(norm, B * d, reads=B * d + np_)
    c.mm(B * d * C, B * d + d * C + B * C)
    if training:
        c.vec("softmax_grad", B * C)
        c.mm(B * C * d, B * C + C * d + B * d)
        c.mm(d * B * C, d * B + B * C + d * C)
        c.vec("adam", d * C, reads=4 * d * C, writes=3 * d * C)
        c.vec(f"{norm}_grad", B * d, reads=2 * B * d + np_)
        c.vec("copy", T * d)
        c.mm(cpp * B * P * d, cpp * B * P + B * P * d + cpp * d)
        c.vec("adam", cpp * d, reads=4 * cpp * d, writes=3 * cpp * d)
        c.vec("reduce", T * d, writes=S * d)
        c.vec("adam", S * d, reads=4 * S * d, writes=3 * S * d)


def _masked_head(c: Count, wl: Workload, training: bool) -> None:
    """The MLM head on the masked rows only: gathered, the transform, norm, decoder and loss on them; in training
    their backward and the gradient scattered back into every token row."""
    m = wl.spec.model
    M, d, V, T, np_ = wl.masked_rows, m.d_model, m.vocab or 0, wl.tokens, wl.norm_params
    tp, n = wl.spec.run.tensor_parallel, wl.masked_rows * m.d_model
    c.vec("copy", n)  # the masked rows gathered
    c.weight_mm(M * d * d, M * d + d * d, M * d)
    c.vec(m.activation, n)
    c.vec(m.norm, n, reads=n + np_)
    c.mm(M * d * V, M * d + d * V + M * V)  # the decoder, in run.dtype
    if tp > 1 and not training:
        c.vec("all_gather", M * V, reads=M * V, writes=M * V * tp)
    if not training:
        return
    if tp > 1:
        c.vec("all_reduce", M * 2)  # the rows' softmax statistics
    c.vec("softmax_grad", M * V)
    c.mm(M * V * d, M * V + V * d + M * d)
    if tp > 1:
        c.vec("all_reduce", n)
    c.mm(d * M * V, d * M + M * V + d * V)
    c.vec("adam", d * V, reads=4 * d * V, writes=3 * d * V)
    c.vec(f"{m.norm}_grad", n, reads=2 * n + np_)
    c.vec("reduce", M * np_, writes=np_)
    c.vec("adam", np_, reads=4 * np_, writes=3 * np_)
    c.vec(f"{m.activation}_grad", n, reads=2 * n)
    c.mm(d * M * d, d * M + M * d + d * d)
    c.vec("adam", d * d, reads=4 * d * d, writes=3 * d * d)
    c.weight_mm(M * d * d, M * d + d * d, M * d)
    c.vec("copy", T * d)  # the gradient scattered back into every token row


def _buckets(wl: Workload, layer_params: float) -> list[float]:
    """Parameters of each data-parallel bucket (accelsim.lowering.flush_gradients): the head's, each layer's, the
    embeddings'."""
    m = wl.spec.model
    if not m.embeddings:
        return [layer_params] * m.layers
    d, S = m.d_model, wl.seq_len
    if m.family == "gpt":
        V, np_ = m.vocab or 0, wl.norm_params
        head = d * V + (d * d + np_ if m.head == "mlm" else 0)  # an MLM head's transform and norm too
        embed = V * d + (S * d if m.positions == "learned" else 0) + m.token_types * d
        embed += np_ if m.norm_position == "post" else 0  # the embeddings' norm
    else:
        cpp = m.channels * (m.patch_size or 0) ** 2
        head, embed = d * (m.classes or 0), cpp * d + S * d
    return [head] * wl.has_head + [layer_params] * m.layers + [embed] * wl.has_embeddings


def _data_parallel(c: Count, wl: Workload, layer_params: float) -> None:
    """Each bucket's gradients all-reduced; or under ZeRO reduce-scattered, one Adam over this replica's 1/dp
    instead of the bucket's updates, and (ZeRO 1 and 2) the parameters all-gathered; under ZeRO 2 and 3 a
    micro-batch without the update reduce-scatters its buckets all the same (accelsim.lowering.flush_gradients)."""
    run = wl.spec.run
    dp = run.data_parallel
    for P in _buckets(wl, layer_params):
        shard = -(-int(P) // dp)
        if not run.optimizer_step:
            if run.zero >= 2:
                c.vec("grad_reduce_scatter", P, reads=P, writes=shard)
            continue
        if not run.zero:
            c.vec("grad_all_reduce", P)
            continue
        c.vec("adam", -P, reads=-4 * P, writes=-3 * P)  # the per-parameter updates it replaces
        c.vec("grad_reduce_scatter", P, reads=P, writes=shard)
        c.vec("adam", shard, reads=4 * shard, writes=3 * shard)
        if run.zero < 3:
            c.vec("param_all_gather", shard, reads=shard, writes=shard * dp)


def _zero3_gathers(c: Count, wl: Workload) -> None:
    """ZeRO 3: each layer's, the embeddings' and the head's parameters all-gathered before the forward and again
    before the backward (accelsim.lowering.zero3_gather)."""
    dp = wl.spec.run.data_parallel
    sizes = [wl.layer_parameters] * wl.spec.model.layers + [wl.embedding_parameters, wl.head_parameters]
    for P in sizes:
        if P:
            shard = -(-P // dp)
            c.vec("param_all_gather", 2 * shard, reads=2 * shard, writes=2 * shard * dp)


def analytic_counts(wl: Workload) -> tuple[int, int]:
    """(FLOPs, bytes) of one inference pass or training step of ``wl``."""
    c = Count()
    training = wl.spec.run.mode == "training"
    _ends(c, wl, training)
    # Layers differ only in how many keys their queries see (a sliding window's local layers): count one layer
    # of each kind, times the layers of that kind.
    layer_params = 0.0
    for keys, layers in wl.layer_kinds().items():
        layer = Count()
        _layer(layer, wl, False, keys)
        if training:
            _layer(layer, wl, True, keys)
        c.flops += layers * layer.flops
        c.elements += layers * layer.elements
        c.low += layers * layer.low
        c.adam += layers * layer.adam
        layer_params = layer.adam
    run = wl.spec.run
    if training and not run.optimizer_step:  # no update: the Adams counted above come off
        c.flops -= _f("adam") * c.adam
        c.elements -= 7 * c.adam
    if training and run.data_parallel > 1:
        _data_parallel(c, wl, layer_params)
        if run.zero >= 3:
            _zero3_gathers(c, wl)
    low_bytes = DTYPE_BYTES[run.matmul_dtype or run.dtype]
    return int(round(c.flops)), int(round(c.elements)) * DTYPE_BYTES[run.dtype] + int(round(c.low)) * low_bytes
