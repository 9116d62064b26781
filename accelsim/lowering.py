"""Lowering: a transformer workload becomes the task graph a graph compiler would hand to the chip.

Pure bookkeeping: every task carries its own FLOPs and bytes; nothing here knows of SimPy or time.
Granularity is a knob:

- ``op``: one task per op of each layer (attention ops cover every batch and head at once);
- ``head``: attention ops split per head;
- ``tile``: as ``head``, plus attention per query block or chunk, GEMMs in output tiles of ``tile_m x tile_n``
  and element-wise ops in blocks of ``tile_m`` token rows, so schedulers can spread and interleave work.

Traffic: each op reads its operands and writes its result once. When a GEMM is tiled, an operand panel is fetched
from HBM by the first tile that uses it and reused from SRAM by the others, so the total is the same at every
granularity (accelsim.analytic gives it in closed form).
"""

from __future__ import annotations

from collections.abc import Callable

from .attention import UnitOp, linear_ops, softmax_ops, window_ops
from .graph import Task, TaskGraph
from .ops import OPS, default_flops
from .vocabulary import DTYPE_BYTES
from .workload import Workload

Handle = list[list[str]]  # task names per block of token rows
Final = tuple[range, int, int, str]  # an attention output task: batch elements, first and last + 1 position, name


class _Lowering:
    def __init__(self, wl: Workload) -> None:
        self.wl = wl
        spec = wl.spec
        self.s = DTYPE_BYTES[spec.run.dtype]
        self.dtype = spec.run.dtype
        self.gran = spec.lowering.granularity
        self.fine = self.gran == "tile"
        self.tm, self.tn = spec.lowering.tile_m, spec.lowering.tile_n
        self.B, self.S = spec.run.batch, wl.seq_len
        self.d, self.H, self.D, self.dff = spec.model.d_model, spec.model.heads, wl.d_head, wl.d_ff
        self.tasks: list[Task] = []
        # Blocks of token rows: (batch, first position, positions) at tile granularity; else one block of all rows.
        if self.fine:
            step = min(self.S, self.tm)
            self.blocks = [(b, p, min(step, self.S - p)) for b in range(self.B) for p in range(0, self.S, step)]
        else:
            self.blocks = [(-1, 0, self.S)]

    # ---- emitting ------------------------------------------------------------------------------------------
    def emit(self, name: str, op: str, shape: tuple[int, ...], reads: int, writes: int, deps: list[str],
             group: str, engines: tuple[str, ...] | None = None) -> str:
        self.tasks.append(Task(name, op, shape, self.dtype, default_flops(op, shape), reads * self.s,
                               writes * self.s, engines or OPS[op].default_engines, tuple(dict.fromkeys(deps)),
                               group))
        return name

    def rows(self, i: int) -> int:
        b, _, n = self.blocks[i]
        return n if b >= 0 else self.B * self.S

    def label(self, name: str, *idx: int) -> str:
        return f"{name}[{','.join(map(str, idx))}]" if self.fine else name

    def blocks_at(self, p0: int, p1: int, batches: range) -> list[int]:
        """Row blocks of the given batch elements holding positions [p0, p1)."""
        if not self.fine:
            return [0]
        return [i for i, (b, p, n) in enumerate(self.blocks) if b in batches and p < p1 and p + n > p0]

    # ---- ops on token rows ---------------------------------------------------------------------------------
    def vec(self, name: str, op: str, cols: int, deps: Callable[[int], list[str]], group: str, inputs: int = 1,
            params: int = 0, writes: int | None = None) -> Handle:
        """An element-wise or row-wise op over ``cols`` columns of every token row, block by block.

        ``inputs`` tensors of that size are read (plus ``params`` elements); the output has the same size unless
        ``writes`` gives a fixed count per block (a reduction's partial result)."""
        out = []
        for i in range(len(self.blocks)):
            r = self.rows(i)
            e = r * cols
            first = params if i == 0 else 0  # parameters are fetched once, then reused from SRAM
            out.append([self.emit(self.label(name, i), op, (e,), inputs * e + first, e if writes is None else writes,
                                  deps(i), group)])
        return out

    def gemm(self, name: str, K: int, N: int, deps: Callable[[int], list[str]], group: str) -> Handle:
        """Activations (rows x K) @ weights (K x N), tiled over rows and output columns."""
        cols = self.col_tiles(N)
        out = []
        for i in range(len(self.blocks)):
            M = self.rows(i)
            d = deps(i)
            out.append([self.emit(self.label(name, i, j), "gemm", (M, K, n),
                                  (M * K if j == 0 else 0) + (K * n if i == 0 else 0), M * n, d, group)
                        for j, n in enumerate(cols)])
        return out

    def col_tiles(self, N: int) -> list[int]:
        if not self.fine:
            return [N]
        return [min(self.tn, N - j) for j in range(0, N, self.tn)]

    def weight_grad(self, name: str, K: int, M: int, N: int, deps: list[str], group: str,
                    training_update: bool = True) -> list[str]:
        """dW (K x N) = X^T (K x M) @ dY (M x N), tiled over the weight; then Adam on each tile."""
        krows = [min(self.tm, K - k) for k in range(0, K, self.tm)] if self.fine else [K]
        cols = self.col_tiles(N)
        names = []
        for a, kk in enumerate(krows):
            for j, n in enumerate(cols):
                g = self.emit(self.label(name, a, j), "gemm", (kk, M, n), (kk * M if j == 0 else 0) +
                              (M * n if a == 0 else 0), kk * n, deps, group)
                names.append(self.adam(f"{name}.adam", kk * n, [g], group, a, j))
        return names

    def param_grad(self, name: str, cols: int, writes: int, deps: list[str], group: str) -> str:
        """A parameter gradient summed over every token row (layernorm scale and shift, positions): one task."""
        e = self.B * self.S * cols
        return self.emit(name, "reduce", (e,), e, writes, deps, group)

    def adam_rows(self, name: str, rows: int, cols: int, deps: list[str], group: str) -> list[str]:
        """Adam over a (rows x cols) table, in blocks of tile_m rows at tile granularity."""
        step = self.tm if self.fine else rows
        return [self.adam(name, min(step, rows - r) * cols, deps, group, k) for k, r in enumerate(range(0, rows, step))]

    def adam(self, name: str, elements: int, deps: list[str], group: str, *idx: int) -> str:
        """Adam: read weight, gradient and two moments; write weight and moments."""
        return self.emit(self.label(name, *idx), "adam", (elements,), 4 * elements, 3 * elements, deps, group)

    # ---- attention -----------------------------------------------------------------------------------------
    def head_groups(self) -> list[tuple[str, list[int], range]]:
        """(variant, heads, batch elements) groups: one per variant at op granularity, one per head at head
        granularity, and at tile granularity one per head and batch slice (``batch_split`` slices)."""
        wl = self.wl
        linear = wl.linear_heads
        if wl.spec.attention.variant in ("softmax", "window"):
            kinds = [(wl.spec.attention.variant, list(range(self.H)))]
        else:
            kinds = [("window", list(range(self.H - linear))), ("linear", list(range(self.H - linear, self.H)))]
        kinds = [(v, hs) for v, hs in kinds if hs]
        everyone = range(self.B)
        if self.gran == "op":
            return [(v, hs, everyone) for v, hs in kinds]
        if self.gran == "head":
            return [(v, [h], everyone) for v, hs in kinds for h in hs]
        step = self.B // self.wl.spec.lowering.batch_split
        return [(v, [h], range(b, b + step)) for v, hs in kinds for h in hs for b in range(0, self.B, step)]

    def unit_table(self, variant: str, backward: bool) -> tuple[int, list[UnitOp]]:
        a = self.wl.spec.attention
        causal = self.wl.causal
        if variant == "softmax":
            q = self.tm if self.fine and self.S % self.tm == 0 else self.S
            return q, softmax_ops(q, self.S, self.D, causal, backward)
        if variant == "window":
            return a.window, window_ops(a.window, self.D, backward)
        return a.chunk, linear_ops(a.chunk, self.D, causal, backward)

    def attention(self, layer: int, inputs: Handle, backward: bool) -> list[Final]:
        """Emit every head group's units; return the final tasks with the batch elements and positions written."""
        finals: list[Final] = []
        tag = "bwd" if backward else "fwd"
        split = len(self.head_groups()) > len({tuple(h) for _, h, _ in self.head_groups()})
        for variant, heads, batches in self.head_groups():
            q, table = self.unit_table(variant, backward)
            n = self.S // q
            G = len(batches) * len(heads)
            hname = (f"h{heads[0]}" if len(heads) == 1 else variant) + (f".b{batches.start}" if split else "")
            group = f"L{layer}.attn.{tag}"
            per_unit = self.fine
            # Reverse chains (a backward prefix sum depends on the unit after it) are emitted last unit first, so
            # every task's dependencies exist before it and the graph stays in topological order.
            reverse = any(rel not in ("all", "input") and int(rel) > 0 for op in table for _, rel in op.deps)
            units = (range(n - 1, -1, -1) if reverse else range(n)) if per_unit else [0]
            made: dict[tuple[str, int], str] = {}
            by_op: dict[str, list[str]] = {}
            present = {op.name: [i for i in range(n) if op.exists(i, n)] for op in table}
            for u in units:
                for op in table:
                    has = present[op.name]
                    if not has or per_unit and not op.exists(u, n):
                        continue
                    shape, reads, writes = op.size(G, n)
                    if not per_unit:  # all units of the op in one task
                        shape = (shape[0] * len(has), *shape[1:])
                        reads, writes = reads * len(has), writes * len(has)
                    if not per_unit or u == has[0]:
                        shared_reads, shared_writes = op.shared(G, n)
                        reads, writes = reads + shared_reads, writes + shared_writes
                    deps: list[str] = []
                    for dep, rel in op.deps:
                        if dep == "input":
                            deps += self.attention_inputs(variant, u * q, (u + 1) * q if per_unit else self.S,
                                                          batches, inputs, backward)
                        elif rel == "all" or not per_unit:
                            deps += by_op.get(dep, [])
                        else:
                            name = made.get((dep, u + int(rel)))
                            if name is not None:
                                deps.append(name)
                    name = self.emit(f"L{layer}.{tag}.{hname}.{op.name}" + (f"[{u}]" if per_unit else ""), op.op,
                                     shape, reads, writes, deps, group, op.engines)
                    made[(op.name, u)] = name
                    by_op.setdefault(op.name, []).append(name)
                    if op.final:
                        if not per_unit or op.reach == "all":
                            finals.append((batches, 0, self.S, name))
                        else:
                            finals.append((batches, max(0, (u - int(op.reach)) * q), (u + 1) * q, name))
        return finals

    def attention_inputs(self, variant: str, p0: int, p1: int, batches: range, inputs: Handle,
                         backward: bool) -> list[str]:
        if not self.fine:
            return [n for blk in inputs for n in blk]
        if variant == "softmax" and not backward:
            lo, hi = 0, self.S  # scores against every key
        elif variant == "window" and not backward:
            lo, hi = max(0, p0 - (p1 - p0)), p1  # its own block and the previous one
        else:
            lo, hi = p0, p1
        return [n for i in self.blocks_at(lo, hi, batches) for n in inputs[i]]

    def merge(self, name: str, cols: int, finals: list[Final], group: str) -> Handle:
        """Heads back into token rows (a transpose-copy, as ``a.transpose(1, 2).reshape(b, s, d)``)."""

        def deps(i: int) -> list[str]:
            b, p0, n = self.blocks[i]
            return [f for bs, f0, f1, f in finals if not self.fine or (b in bs and f0 < p0 + n and f1 > p0)]

        return self.vec(name, "copy", cols, deps, group)

    # ---- model ---------------------------------------------------------------------------------------------
    def block(self, layer: int, x: Handle) -> tuple[Handle, dict]:
        d, dff, g = self.d, self.dff, f"L{layer}"
        same = lambda h: (lambda i: h[i])  # noqa: E731  block i depends on block i of h
        L = f"L{layer}"
        ln1 = self.vec(f"{L}.ln1", "layernorm", d, same(x), g, params=2 * d)
        qkv = self.gemm(f"{L}.qkv", d, 3 * d, same(ln1), g)
        split = self.vec(f"{L}.split_heads", "copy", 3 * d, same(qkv), g)
        finals = self.attention(layer, split, backward=False)
        merged = self.merge(f"{L}.merge_heads", d, finals, g)
        proj = self.gemm(f"{L}.proj", d, d, same(merged), g)
        res1 = self.vec(f"{L}.res1", "add", d, lambda i: proj[i] + x[i], g, inputs=2)
        ln2 = self.vec(f"{L}.ln2", "layernorm", d, same(res1), g, params=2 * d)
        up = self.gemm(f"{L}.mlp_up", d, dff, same(ln2), g)
        act = self.vec(f"{L}.gelu", "gelu", dff, same(up), g)
        down = self.gemm(f"{L}.mlp_down", dff, d, same(act), g)
        out = self.vec(f"{L}.res2", "add", d, lambda i: down[i] + res1[i], g, inputs=2)
        saved = {"x": x, "ln1": ln1, "merged": merged, "res1": res1, "ln2": ln2, "act": act}
        return out, saved

    def block_backward(self, layer: int, dy: Handle, saved: dict) -> Handle:
        d, dff, T = self.d, self.dff, self.B * self.S
        L = f"L{layer}"
        g = f"{L}.bwd"
        same = lambda h: (lambda i: h[i])  # noqa: E731
        flat = lambda *hs: [n for h in hs for blk in h for n in blk]  # noqa: E731
        d_act = self.gemm(f"{L}.mlp_down.dA", d, dff, same(dy), g)
        self.weight_grad(f"{L}.mlp_down.dW", dff, T, d, flat(saved["act"], dy), g)
        d_up = self.vec(f"{L}.gelu.bwd", "gelu_grad", dff, same(d_act), g, inputs=2)
        d_ln2 = self.gemm(f"{L}.mlp_up.dA", dff, d, same(d_up), g)
        self.weight_grad(f"{L}.mlp_up.dW", d, T, dff, flat(saved["ln2"], d_up), g)
        d_res1_branch = self.vec(f"{L}.ln2.bwd", "layernorm_grad", d, same(d_ln2), g, inputs=2, params=2 * d)
        ln2_params = self.param_grad(f"{L}.ln2.dparams", 2 * d, 2 * d, flat(d_ln2), g)
        d_res1 = self.vec(f"{L}.res1.bwd", "add", d, lambda i: d_res1_branch[i] + dy[i], g, inputs=2)
        d_merged = self.gemm(f"{L}.proj.dA", d, d, same(d_res1), g)
        self.weight_grad(f"{L}.proj.dW", d, T, d, flat(saved["merged"], d_res1), g)
        d_heads = self.vec(f"{L}.split_dout", "copy", d, same(d_merged), g)
        finals = self.attention(layer, d_heads, backward=True)
        d_qkv = self.merge(f"{L}.merge_dqkv", 3 * d, finals, g)
        d_ln1 = self.gemm(f"{L}.qkv.dA", 3 * d, d, same(d_qkv), g)
        self.weight_grad(f"{L}.qkv.dW", d, T, 3 * d, flat(saved["ln1"], d_qkv), g)
        d_x_branch = self.vec(f"{L}.ln1.bwd", "layernorm_grad", d, same(d_ln1), g, inputs=2, params=2 * d)
        ln1_params = self.param_grad(f"{L}.ln1.dparams", 2 * d, 2 * d, flat(d_ln1), g)
        self.adam(f"{L}.ln.adam", 4 * d, [ln1_params, ln2_params], g)
        return self.vec(f"{L}.res0.bwd", "add", d, lambda i: d_x_branch[i] + d_res1[i], g, inputs=2)

    def lower(self) -> TaskGraph:
        wl, m = self.wl, self.wl.spec.model
        training = wl.spec.run.mode == "training"
        x = self.embed_forward() if m.embeddings else self.vec("input", "copy", self.d, lambda i: [], "input")
        saved = []
        for layer in range(m.layers):
            x, s = self.block(layer, x)
            saved.append(s)
        dy = self.head_forward(x, training) if m.embeddings else (
            self.vec("output", "copy", self.d, lambda i: x[i], "output") if training else x)
        if training:
            for layer in reversed(range(m.layers)):
                dy = self.block_backward(layer, dy, saved[layer])
            if m.embeddings:
                self.embed_backward(dy)
        graph = TaskGraph(self.tasks, name=wl.name, source=wl.source)
        graph.meta.update(wl.summary())
        return graph

    # ---- embeddings and heads ------------------------------------------------------------------------------
    def embed_forward(self) -> Handle:
        d, m = self.d, self.wl.spec.model
        if m.family == "gpt":
            tok = self.vec("embed.gather", "copy", d, lambda i: [], "embed")
            return self.vec("embed.pos", "add", d, lambda i: tok[i], "embed", inputs=2)
        P, cpp = self.wl.patches, m.channels * m.patch_size ** 2  # type: ignore[operator]
        B = self.B
        patches = self.emit("embed.patchify", "copy", (B * P * cpp,), B * P * cpp, B * P * cpp, [], "embed")
        cols = self.col_tiles(d)
        prow = [min(self.tm, B * P - r) for r in range(0, B * P, self.tm)] if self.fine else [B * P]
        self.patch_tiles = [self.emit(self.label("embed.patch", a, j), "gemm", (r, cpp, n),
                                      (r * cpp if j == 0 else 0) + (cpp * n if a == 0 else 0), r * n, [patches],
                                      "embed")
                            for a, r in enumerate(prow) for j, n in enumerate(cols)]
        return self.vec("embed.pos", "add", d, lambda i: self.patch_tiles, "embed", inputs=2)

    def head_forward(self, x: Handle, training: bool) -> Handle:
        d, m = self.d, self.wl.spec.model
        flat = [n for blk in x for n in blk]
        if m.family == "gpt":
            V = m.vocab
            lnf = self.vec("head.ln", "layernorm", d, lambda i: x[i], "head", params=2 * d)
            logits = self.gemm("head.lm", d, V, lambda i: lnf[i], "head")  # type: ignore[arg-type]
            if not training:
                return logits
            loss = self.vec("head.loss", "softmax_grad", V, lambda i: logits[i], "head")  # type: ignore[arg-type]
            d_lnf = self.gemm("head.lm.dA", V, d, lambda i: loss[i], "head")  # type: ignore[arg-type]
            T = self.B * self.S
            self.weight_grad("head.lm.dW", d, T, V, [n for h in (lnf, loss) for b in h for n in b], "head")  # type: ignore[arg-type]
            return self.vec("head.ln.bwd", "layernorm_grad", d, lambda i: d_lnf[i], "head", inputs=2, params=2 * d)
        # ViT: the class token (or the mean of the tokens) through a layernorm and the classifier.
        B, C = self.B, m.classes
        pooled = self.emit("head.pool", "copy" if m.class_token else "reduce", (B * d if m.class_token else
                           self.B * self.S * d,), B * d if m.class_token else self.B * self.S * d, B * d, flat, "head")
        lnf = self.emit("head.ln", "layernorm", (B * d,), B * d + 2 * d, B * d, [pooled], "head")
        logits = self.emit("head.classifier", "gemm", (B, d, C), B * d + d * C, B * C, [lnf], "head")  # type: ignore[arg-type]
        if not training:
            return x
        loss = self.emit("head.loss", "softmax_grad", (B * C,), B * C, B * C, [logits], "head")  # type: ignore[operator]
        d_ln = self.emit("head.classifier.dA", "gemm", (B, C, d), B * C + C * d, B * d, [loss], "head")  # type: ignore[operator]
        dw = self.emit("head.classifier.dW", "gemm", (d, B, C), d * B + B * C, d * C, [lnf, loss], "head")  # type: ignore[operator]
        self.adam("head.classifier.adam", d * C, [dw], "head")  # type: ignore[operator]
        d_pool = self.emit("head.ln.bwd", "layernorm_grad", (B * d,), 2 * B * d + 2 * d, B * d, [d_ln], "head")
        # The gradient reaches the tokens as a full-size tensor (zeros but the class token, or the mean's share).
        return self.vec("head.pool.bwd", "copy", d, lambda i: [d_pool], "head")

    def embed_backward(self, dy: Handle) -> None:
        d, m = self.d, self.wl.spec.model
        flat = [n for blk in dy for n in blk]
        if m.family == "gpt":
            V, S = m.vocab, self.S
            scatter = self.vec("embed.scatter", "add", d, lambda i: dy[i], "embed", inputs=2)
            pos = self.param_grad("embed.pos.dparams", d, S * d, flat, "embed")
            self.adam_rows("embed.adam", V, d, [n for blk in scatter for n in blk], "embed")  # type: ignore[arg-type]
            self.adam("embed.pos.adam", S * d, [pos], "embed")
            return
        P, cpp, B = self.wl.patches, m.channels * m.patch_size ** 2, self.B  # type: ignore[operator]
        self.weight_grad("embed.patch.dW", cpp, B * P, d, flat, "embed")
        pos = self.param_grad("embed.pos.dparams", d, self.S * d, flat, "embed")
        self.adam("embed.pos.adam", self.S * d, [pos], "embed")


def lower(workload: Workload) -> TaskGraph:
    """The task graph of one pass (inference) or one training step of ``workload``."""
    return _Lowering(workload).lower()
