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

The lowering is one class assembled from parts that share the task list and the blocking of token rows: element-
and row-wise ops on token rows, GEMMs, training's weight gradients and optimizer, attention, the embeddings and
heads at the two ends, and the transformer layer that strings them together.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple, NoReturn

from . import limits
from .attention import UnitOp, flash_ops, linear_ops, softmax_ops, window_ops
from .errors import AccelsimError
from .graph import Task, TaskGraph
from .ops import OPS, default_flops
from .vocabulary import DTYPE_BYTES
from .workload import Workload

#: Task names per block of token rows: entry ``i`` lists the tasks that produce row block ``i``.
TokenRowTasks = list[list[str]]
#: For each row block, the tasks an op on that block waits for.
BlockDeps = Callable[[int], list[str]]


class RowBlock(NamedTuple):
    """A block of token rows: one sequence's positions ``[first_position, first_position + positions)``.

    At op and head granularity there is one block of every row, with ``batch == -1``."""

    batch: int
    first_position: int
    positions: int


class AttentionOutput(NamedTuple):
    """A task whose output leaves the attention: the batch elements and positions ``[first, end)`` it writes."""

    batches: range
    first_position: int
    end_position: int
    task: str


@dataclass(frozen=True)
class SavedActivations:
    """Forward outputs of one layer that its backward pass reads (the inputs of its weight gradients)."""

    ln1: TokenRowTasks
    merged: TokenRowTasks
    ln2: TokenRowTasks
    act: TokenRowTasks
    x: TokenRowTasks  # the layer's input (what a full recomputation starts from)
    split: TokenRowTasks  # the attention's input (what a selective recomputation starts from)


def _same_block(rows: TokenRowTasks) -> BlockDeps:
    """Row block ``i`` of an op depends on row block ``i`` of ``rows``."""
    return lambda i: rows[i]


def _no_deps(i: int) -> list[str]:
    return []


def _all_tasks(*handles: TokenRowTasks) -> list[str]:
    """Every task of the given ops, for a consumer that reads all their rows (a weight gradient, a reduction)."""
    return [name for rows in handles for block in rows for name in block]


class _GraphBuilder:
    """The graph under construction and the workload's sizes, shared by every part of the lowering.

    One task list keeps the graph in topological order whatever part emits; one blocking of token rows makes every
    op's block ``i`` cover the same rows, so a block can depend on the block of the same index before it."""

    def __init__(self, wl: Workload) -> None:
        self.wl = wl
        spec = wl.spec
        self.dtype = spec.run.dtype
        self.dtype_bytes = DTYPE_BYTES[spec.run.dtype]
        self.matmul_dtype = spec.run.matmul_dtype or spec.run.dtype
        model = spec.model
        self.q_width, self.kv_width = wl.q_width, wl.kv_width
        self.norm, self.norm_params = model.norm, wl.norm_params
        self.rotary = model.positions == "rotary"
        run = spec.run
        self.tp, self.dp, self.zero = run.tensor_parallel, run.data_parallel, run.zero
        self.optimizer_step = run.optimizer_step
        #: Data parallelism: the Adam updates waiting for their bucket's gradients to be reduced.
        self.pending: list[tuple[str, int, list[str], str, tuple[int, ...]]] = []
        self.granularity = spec.lowering.granularity
        self.per_tile = self.granularity == "tile"
        self.tile_m, self.tile_n = spec.lowering.tile_m, spec.lowering.tile_n
        self.batch, self.seq_len = spec.run.batch, wl.seq_len
        self.d_model, self.heads = spec.model.d_model, spec.model.heads
        self.d_head, self.d_ff = wl.d_head, wl.d_ff
        #: Sequence parallelism: columns per row of the activations outside the tensor-parallel products (each
        #: card holds 1/tp of the rows, counted as 1/tp of each row's columns).
        self.sp = run.sequence_parallel
        self.row_d = self.d_model // self.tp if self.sp else self.d_model
        self.tasks: list[Task] = []
        #: The tasks this machine holds (accelsim.limits.MAX_TASKS): the graph is counted before it is built, and
        #: refused as soon as its count passes them (``counting``); emit refuses the task past them.
        self.max_tasks = limits.MAX_TASKS
        #: While the graph is counted: the tasks counted so far (none listed); None while it is built.
        self.counted: int | None = None
        #: While the graph is counted: how many times a task counts (every layer, while the first one is counted).
        self.copies = 1
        #: At tile granularity, blocks of up to ``step`` positions of one sequence; else one block of all rows.
        self.step = min(self.seq_len, self.tile_m) if self.per_tile else self.seq_len
        self.blocks_per_sequence = -(-self.seq_len // self.step) if self.per_tile else 1
        self.blocks = self.batch * self.blocks_per_sequence if self.per_tile else 1

    @cached_property
    def row_blocks(self) -> list[RowBlock]:
        """The blocks of token rows (``blocks`` of them), listed once the graph is built (never while counted)."""
        if not self.per_tile:
            return [RowBlock(-1, 0, self.seq_len)]
        step = self.step
        return [
            RowBlock(b, p, min(step, self.seq_len - p)) for b in range(self.batch) for p in range(0, self.seq_len, step)
        ]

    def emit(
        self,
        name: str,
        op: str,
        shape: tuple[int, ...],
        reads: int,
        writes: int,
        deps: list[str],
        group: str,
        engines: tuple[str, ...] | None = None,
        per_sequence: bool = True,
        quantized: bool = False,
    ) -> str:
        """Append one task; ``reads`` and ``writes`` count elements. Returns its name. ``per_sequence``: its first
        dimension runs over the batch's sequences, one after the other (token rows, batch x heads), so a compiler
        may cut it by sequence; false for a weight's rows or a parameter's elements. ``quantized``: a product
        that runs and reads its operands in ``run.matmul_dtype`` (a weight's GEMM, attention's matmuls over the KV
        cache); its result stays in ``run.dtype``."""
        if self.counting(1):
            return name
        if len(self.tasks) >= self.max_tasks:
            self.refuse(len(self.tasks) + 1)
        dtype = self.matmul_dtype if quantized else self.dtype
        self.tasks.append(
            Task(
                name,
                op,
                shape,
                dtype,
                default_flops(op, shape),
                reads * DTYPE_BYTES[dtype],
                writes * self.dtype_bytes,
                engines or OPS[op].default_engines,
                tuple(dict.fromkeys(deps)),
                group,
                sequences=self.batch if per_sequence else 1,
            )
        )
        return name

    def counting(self, tasks: int) -> bool:
        """While the graph is counted (``lower``): count ``tasks`` tasks (``copies`` times each), refuse the graph
        as soon as its count passes this machine's tasks, and say so: the caller then lists none of them and
        returns as it would, its tasks' names left out (``no_rows``). False while the graph is built."""
        if self.counted is None:
            return False
        self.counted += tasks * self.copies
        if self.counted > self.max_tasks:
            self.refuse(self.counted)
        return True

    def no_rows(self) -> TokenRowTasks:
        """While the graph is counted, what an op over token rows returns: a block for each of ``blocks``, naming
        no task (no block list is changed once made, so they may be one)."""
        return [[]] * self.blocks

    def tiles(self, size: int, tile: int) -> int:
        """How many tiles of ``tile`` cut ``size`` at tile granularity (one otherwise)."""
        return -(-size // tile) if self.per_tile else 1

    def refuse(self, tasks: int) -> NoReturn:
        """The refusal of a graph found to have at least ``tasks`` tasks, more than fit this machine, with what to
        change (the one rule of the lowering's size: its builders count, nothing estimates it)."""
        refusal = limits.too_many_tasks(tasks, f"its task graph at {self.granularity} granularity", at_least=True)
        if self.per_tile:
            key = "lowering.tile_m"
            change = (
                "larger lowering.tile_m and lowering.tile_n, a smaller run.batch or run.seq_len, or "
                'lowering.granularity = "op"'
            )
        else:
            key = "model.layers"
            change = 'fewer model.layers (or heads at head granularity), or lowering.granularity = "op"'
        raise AccelsimError(f"{refusal}; use {change}", source=self.wl.source, key=key)

    def block_rows(self, i: int) -> int:
        """Token rows in row block ``i``."""
        block = self.row_blocks[i]
        return block.positions if block.batch >= 0 else self.batch * self.seq_len

    def label(self, name: str, *idx: int) -> str:
        """A task name, indexed by tile at tile granularity."""
        return f"{name}[{','.join(map(str, idx))}]" if self.per_tile else name

    def blocks_holding(self, first: int, end: int, batches: range) -> list[int]:
        """Row blocks of the given batch elements holding positions [first, end), in order: a sequence's blocks
        are ``per_sequence`` consecutive ones of ``step`` positions each (the last maybe fewer)."""
        if not self.per_tile:
            return [0]
        step, per_sequence = self.step, self.blocks_per_sequence
        lo, hi = max(0, first) // step, min(-(-end // step), per_sequence) if first < self.seq_len else 0
        return [b * per_sequence + k for b in batches if 0 <= b < self.batch for k in range(lo, hi)]

    def column_tiles(self, cols: int) -> list[int]:
        """Widths of the output column tiles of a ``cols``-wide result (``tiles(cols, tile_n)`` of them)."""
        if not self.per_tile:
            return [cols]
        return [min(self.tile_n, cols - j) for j in range(0, cols, self.tile_n)]


class _TokenRowOps(_GraphBuilder):
    """Element- and row-wise ops (layernorm, GELU, residual adds, copies) over token rows, one task per row block:
    at tile granularity the next op's block can start as soon as its own rows are done."""

    def row_op(
        self,
        name: str,
        op: str,
        cols: int,
        deps: BlockDeps,
        group: str,
        inputs: int = 1,
        params: int = 0,
        writes: int | None = None,
    ) -> TokenRowTasks:
        """An element-wise or row-wise op over ``cols`` columns of every token row, block by block.

        ``inputs`` tensors of that size are read (plus ``params`` elements); the output has the same size unless
        ``writes`` gives a fixed count per block (a reduction's partial result)."""
        if self.counting(self.blocks):
            return self.no_rows()
        out = []
        for i in range(self.blocks):
            elements = self.block_rows(i) * cols
            first = params if i == 0 else 0  # parameters are fetched once, then reused from SRAM
            out.append(
                [
                    self.emit(
                        self.label(name, i),
                        op,
                        (elements,),
                        inputs * elements + first,
                        elements if writes is None else writes,
                        deps(i),
                        group,
                    )
                ]
            )
        return out

    def all_reduce(self, name: str, partial: TokenRowTasks, g: str) -> TokenRowTasks:
        """Under tensor parallelism, the row-parallel product's partial sums all-reduced over the cards (one task
        per row block, of the block's d_model columns), or under sequence parallelism reduce-scattered (each card
        keeps 1/tp of the rows); the product itself otherwise."""
        if self.tp == 1:
            return partial
        if self.sp:
            return self.exchange(f"{name}.reducescatter", "reduce_scatter", self.d_model, self.row_d, partial, g)
        return self.row_op(f"{name}.allreduce", "all_reduce", self.d_model, _same_block(partial), g)

    def gather(self, name: str, sharded: TokenRowTasks, g: str) -> TokenRowTasks:
        """Under sequence parallelism, every card's rows all-gathered before a column-parallel product (or its
        backward); the tasks themselves otherwise."""
        if not self.sp:
            return sharded
        return self.exchange(f"{name}.allgather", "all_gather", self.row_d, self.d_model, sharded, g)

    def exchange(self, name: str, op: str, cols: int, out_cols: int, h: TokenRowTasks, g: str) -> TokenRowTasks:
        """A collective per row block over the card's ``cols`` columns of each row, leaving ``out_cols``."""
        if self.counting(self.blocks):
            return self.no_rows()
        return [
            [self.emit(self.label(name, i), op, (rows * cols,), rows * cols, rows * out_cols, h[i], g)]
            for i in range(self.blocks)
            for rows in (self.block_rows(i),)
        ]


class _Gemms(_GraphBuilder):
    """Activation x weight products, tiled over row blocks and output column tiles; the first tile to use an
    operand panel fetches it, so traffic does not depend on the tiling."""

    def gemm(
        self, name: str, inner: int, cols: int, deps: BlockDeps, group: str, weights: bool = True
    ) -> TokenRowTasks:
        """Activations (rows x inner) @ weights (inner x cols), tiled over rows and output columns; ``weights``
        false keeps it in ``run.dtype`` whatever ``run.matmul_dtype`` says (the LM head)."""
        if self.counting(self.blocks * self.tiles(cols, self.tile_n)):
            return self.no_rows()
        widths = self.column_tiles(cols)
        out = []
        for i in range(self.blocks):
            rows = self.block_rows(i)
            waits = deps(i)
            out.append(
                [
                    self.emit(
                        self.label(name, i, j),
                        "gemm",
                        (rows, inner, width),
                        (rows * inner if j == 0 else 0) + (inner * width if i == 0 else 0),
                        rows * width,
                        waits,
                        group,
                        quantized=weights,
                    )
                    for j, width in enumerate(widths)
                ]
            )
        return out

    def rows_gemm(
        self,
        name: str,
        rows: int,
        inner: int,
        cols: int,
        deps: list[str],
        group: str,
        weights: bool = False,
        per_sequence: bool = True,
    ) -> list[str]:
        """A product of a fixed number of rows that are not the token rows' blocks (each sequence's last position,
        the masked positions), in output column tiles; ``weights`` as in ``gemm`` (false: in ``run.dtype``),
        ``per_sequence`` as in ``emit``."""
        if self.counting(self.tiles(cols, self.tile_n)):
            return []
        return [
            self.emit(
                self.label(name, 0, j),
                "gemm",
                (rows, inner, width),
                (rows * inner if j == 0 else 0) + inner * width,
                rows * width,
                deps,
                group,
                per_sequence=per_sequence,
                quantized=weights,
            )
            for j, width in enumerate(self.column_tiles(cols))
        ]


class _TrainingUpdates(_GraphBuilder):
    """Training's parameter side: weight gradients (tiled over the weight, not the tokens, since every token
    contributes to every element) and the Adam update of each parameter tile as soon as its gradient is done."""

    def weight_grad(
        self,
        name: str,
        in_features: int,
        tokens: int,
        out_features: int,
        deps: list[str],
        group: str,
        quantized: bool = True,
    ) -> list[str]:
        """dW (in x out) = X^T (in x tokens) @ dY (tokens x out), tiled over the weight; then Adam on each tile.
        ``quantized``: its operands in run.matmul_dtype, as the forward product's (false for the LM head's and the
        patch embedding's, whose forward products stay in run.dtype)."""
        grads = self.tiles(in_features, self.tile_m) * self.tiles(out_features, self.tile_n)
        if self.counting(grads):
            self.count_adams(f"{name}.adam", grads, group)
            return []
        row_tiles = (
            [min(self.tile_m, in_features - k) for k in range(0, in_features, self.tile_m)]
            if self.per_tile
            else [in_features]
        )
        widths = self.column_tiles(out_features)
        names = []
        for a, rows in enumerate(row_tiles):
            for j, width in enumerate(widths):
                grad = self.emit(
                    self.label(name, a, j),
                    "gemm",
                    (rows, tokens, width),
                    (rows * tokens if j == 0 else 0) + (tokens * width if a == 0 else 0),
                    rows * width,
                    deps,
                    group,
                    per_sequence=False,
                    quantized=quantized,
                )
                names.append(self.adam(f"{name}.adam", rows * width, [grad], group, a, j))
        return names

    def param_grad(self, name: str, cols: int, writes: int, deps: list[str], group: str) -> str:
        """A parameter gradient summed over every token row (layernorm scale and shift, positions): one task."""
        elements = self.batch * self.seq_len * cols
        return self.emit(name, "reduce", (elements,), elements, writes, deps, group)

    def adam_rows(self, name: str, rows: int, cols: int, deps: list[str], group: str) -> list[str]:
        """Adam over a (rows x cols) table, in blocks of tile_m rows at tile granularity."""
        if self.counted is not None:
            self.count_adams(name, self.tiles(rows, self.tile_m), group)
            return []
        step = self.tile_m if self.per_tile else rows
        return [self.adam(name, min(step, rows - r) * cols, deps, group, k) for k, r in enumerate(range(0, rows, step))]

    def adam(self, name: str, elements: int, deps: list[str], group: str, *idx: int) -> str:
        """Adam: read weight, gradient and two moments; write weight and moments. Under data parallelism it waits
        for its bucket's reduction (``flush_gradients``). A micro-batch that does not end the step updates nothing
        (its gradients are accumulated), but under ZeRO 2 and 3 its bucket is still reduce-scattered."""
        if self.bucketed:
            self.pending.append((name, elements, deps, group, idx))
            return self.label(name, *idx)
        if not self.optimizer_step:
            return self.label(name, *idx)
        return self.emit(
            self.label(name, *idx), "adam", (elements,), 4 * elements, 3 * elements, deps, group, per_sequence=False
        )

    @property
    def bucketed(self) -> bool:
        """Whether an update waits in its bucket (``adam``): under data parallelism, where the step updates or
        ZeRO 2 and 3 reduce-scatter the bucket all the same."""
        return self.dp > 1 and (self.optimizer_step or self.zero >= 2)

    def count_adams(self, name: str, updates: int, group: str) -> None:
        """While the graph is counted: ``updates`` Adam updates as ``adam`` makes them, each waiting in its
        bucket (sizes left out) or a task of its own, or none where the step updates nothing."""
        if self.bucketed:
            self.pending += [(name, 0, [], group, ())] * updates
        elif self.optimizer_step:
            self.counting(updates)

    def flush_gradients(self, bucket: str) -> None:
        """Data parallelism: the gradients of the updates waiting (one layer's, the head's, the embeddings') are
        reduced over the replicas as one bucket as soon as they are all computed, then updated. ZeRO 0: an
        all-reduce, then every update. ZeRO 1 and 2: a reduce-scatter, one update of this replica's 1/dp, an
        all-gather of the updated parameters. ZeRO 3: the same without the all-gather (each layer's parameters
        are gathered before they are used, ``zero3_gather``). Under ZeRO 2 and 3 a micro-batch that does not end
        the step reduce-scatters its bucket too (a replica keeps only its 1/dp of the gradients)."""
        if not self.pending:
            return
        total = sum(elements for _, elements, _, _, _ in self.pending)
        deps = [d for _, _, waits, _, _ in self.pending for d in waits]
        group = self.pending[0][3]
        if self.zero == 0:
            reduced = self.emit(
                f"{bucket}.grad_allreduce", "grad_all_reduce", (total,), total, total, deps, group, per_sequence=False
            )
            for name, elements, _, g, idx in [] if self.counting(len(self.pending)) else self.pending:
                self.emit(
                    self.label(name, *idx),
                    "adam",
                    (elements,),
                    4 * elements,
                    3 * elements,
                    [reduced],
                    g,
                    per_sequence=False,
                )
        else:
            shard = -(-total // self.dp)
            scattered = self.emit(
                f"{bucket}.grad_reducescatter",
                "grad_reduce_scatter",
                (total,),
                total,
                shard,
                deps,
                group,
                per_sequence=False,
            )
            if self.optimizer_step:
                update = self.emit(
                    f"{bucket}.adam", "adam", (shard,), 4 * shard, 3 * shard, [scattered], group, per_sequence=False
                )
                if self.zero < 3:
                    self.emit(
                        f"{bucket}.param_allgather",
                        "param_all_gather",
                        (shard,),
                        shard,
                        shard * self.dp,
                        [update],
                        group,
                        per_sequence=False,
                    )
        self.pending = []

    def zero3_gather(self, name: str, parameters: int, deps: list[str], group: str) -> list[str]:
        """ZeRO 3: ``parameters`` (a layer's, the head's or the embeddings', this card's tensor shard) all-gathered
        from the replicas' 1/dp shards before they are used; none otherwise."""
        if self.zero < 3 or self.dp == 1 or not parameters:
            return []
        shard = -(-parameters // self.dp)
        return [
            self.emit(
                f"{name}.zero3_gather",
                "param_all_gather",
                (shard,),
                shard,
                shard * self.dp,
                deps,
                group,
                per_sequence=False,
            )
        ]


class _Attention(_TokenRowOps):
    """Attention from the per-unit op tables of accelsim.attention: grouped by variant, head and batch slice as the
    granularity asks, one task per unit (query block or chunk) at tile granularity, all units merged otherwise."""

    def head_groups(self) -> list[tuple[str, list[int], range]]:
        """(variant, heads, batch elements) groups: one per variant at op granularity, one per head at head
        granularity, and at tile granularity one per head and batch slice (``batch_split`` slices)."""
        wl = self.wl
        linear = wl.linear_heads
        variant = wl.spec.attention.variant
        kinds: list[tuple[str, list[int]]]
        if variant in ("softmax", "window", "flash"):
            kinds = [(variant, list(range(self.heads)))]
        else:
            kinds = [
                ("window", list(range(self.heads - linear))),
                ("linear", list(range(self.heads - linear, self.heads))),
            ]
        kinds = [(v, hs) for v, hs in kinds if hs]
        everyone = range(self.batch)
        if self.granularity == "op":
            return [(v, hs, everyone) for v, hs in kinds]
        if self.granularity == "head":
            return [(v, [h], everyone) for v, hs in kinds for h in hs]
        step = self.batch // wl.spec.lowering.batch_split
        return [(v, [h], range(b, b + step)) for v, hs in kinds for h in hs for b in range(0, self.batch, step)]

    def unit_table(self, variant: str, backward: bool, layer: int, rep: int = 1) -> tuple[int, list[UnitOp]]:
        """Query positions per unit, and the variant's op table (softmax, flash: against every key the layer's
        queries see, cached ones included; ``rep`` query heads share each key/value head and run as one product
        of ``rep`` times the rows)."""
        spec = self.wl.spec.attention
        causal = self.wl.causal
        if variant in ("softmax", "flash"):
            positions = self.tile_m if self.per_tile and self.seq_len % self.tile_m == 0 else self.seq_len
            keys = self.wl.keys(layer)
            if variant == "flash":
                capped = keys < self.wl.spec.run.past_tokens + self.seq_len
                return positions, flash_ops(positions, rep, keys, self.d_head, causal, capped)
            return positions, softmax_ops(positions * rep, keys, self.d_head, causal, backward)
        if variant == "window":
            return spec.window, window_ops(spec.window, self.d_head, backward)
        return spec.chunk, linear_ops(spec.chunk, self.d_head, causal, backward)

    def attention(
        self, layer: int, inputs: TokenRowTasks, backward: bool, tag: str | None = None
    ) -> list[AttentionOutput]:
        """Emit every head group's units; return the final tasks with the batch elements and positions written.
        ``tag`` names the pass (default fwd or bwd; a recomputation's differs)."""
        outputs: list[AttentionOutput] = []
        tag = tag or ("bwd" if backward else "fwd")
        groups = self.head_groups()
        split_batch = len(groups) > len({tuple(heads) for _, heads, _ in groups})
        group = f"L{layer}.attn.{tag}"
        per_unit = self.per_tile
        # Grouped-query attention: the heads of a group read (and in training write the gradient of) one key and
        # value head, counted on the group's first query head; where a task holds every head, the heads of a group
        # run as one product with their query rows stacked (rep rows per position), as they share its operand.
        # Run per query head (attention.query_groups), every query head is a product of its own reading the key
        # and value head itself, as where each head has its own.
        stacked = self.wl.spec.attention.query_groups == "stacked"
        per_kv = self.heads // self.wl.kv_heads if stacked else 1
        # Each group's units and the units each op of its table has (alike for the groups of one variant): their
        # tasks, one per unit an op has (one per op that has any, all units merged), counted while the graph is.
        plans: dict[tuple[str, int], tuple[int, list[UnitOp], int, dict[str, list[int]]]] = {}
        read: dict[tuple[int, int, range], list[str]] = {}  # the input tasks of the rows a unit reads
        tasks = 0
        for variant, heads, _ in groups:
            rep = per_kv if len(heads) == self.heads and variant in ("softmax", "flash") else 1
            if (variant, rep) not in plans:
                unit_positions, table = self.unit_table(variant, backward, layer, rep)
                units = self.seq_len // unit_positions
                present = {op.name: [i for i in range(units) if op.exists(i, units)] for op in table}
                plans[variant, rep] = unit_positions, table, units, present
            present = plans[variant, rep][3]
            tasks += sum(len(has) if per_unit else bool(has) for has in present.values())
        if self.counting(tasks):
            return outputs
        for variant, heads, batches in groups:
            rep = per_kv if len(heads) == self.heads and variant in ("softmax", "flash") else 1
            unit_positions, table, units, present = plans[variant, rep]
            sequences = len(batches) * len(heads) // rep
            kv_sequences = len(batches) * sum(1 for h in heads if h % per_kv == 0)
            head_label = (f"h{heads[0]}" if len(heads) == 1 else variant) + (
                f".b{batches.start}" if split_batch else ""
            )
            # Reverse chains (a backward prefix sum depends on the unit after it) are emitted last unit first, so
            # every task's dependencies exist before it and the graph stays in topological order.
            reverse = any(rel not in ("all", "input") and int(rel) > 0 for op in table for _, rel in op.deps)
            order = (range(units - 1, -1, -1) if reverse else range(units)) if per_unit else [0]
            made: dict[tuple[str, int], str] = {}
            by_op: dict[str, list[str]] = {}
            for u in order:
                for op in table:
                    has = present[op.name]
                    if not has or per_unit and not op.exists(u, units):
                        continue
                    # All units of an op in one task: alike, as every table's are (but flash's, which has one
                    # unit when they are merged: a block per tile only at tile granularity).
                    shape, reads, writes = op.size(sequences, u if per_unit else has[0], units)
                    if not per_unit:
                        shape = (shape[0] * len(has), *shape[1:])
                        reads, writes = reads * len(has), writes * len(has)
                    if not per_unit or u == has[0]:
                        shared_reads, shared_writes = op.shared(kv_sequences, units)
                        reads, writes = reads + shared_reads, writes + shared_writes
                    deps: list[str] = []
                    for dep, rel in op.deps:
                        if dep == "input":
                            end = (u + 1) * unit_positions if per_unit else self.seq_len
                            first = u * unit_positions
                            deps += self.attention_inputs(variant, first, end, batches, inputs, backward, read)
                        elif rel == "all" or not per_unit:
                            deps += by_op.get(dep, [])
                        else:
                            found = made.get((dep, u + int(rel)))
                            if found is not None:
                                deps.append(found)
                    name = self.emit(
                        f"L{layer}.{tag}.{head_label}.{op.name}" + (f"[{u}]" if per_unit else ""),
                        op.op,
                        shape,
                        reads,
                        writes,
                        deps,
                        group,
                        op.engines,
                        quantized=OPS[op.op].category == "matrix",
                    )
                    made[(op.name, u)] = name
                    by_op.setdefault(op.name, []).append(name)
                    if op.final:
                        if not per_unit or op.reach == "all":
                            outputs.append(AttentionOutput(batches, 0, self.seq_len, name))
                        else:
                            first = max(0, (u - int(op.reach)) * unit_positions)
                            outputs.append(AttentionOutput(batches, first, (u + 1) * unit_positions, name))
        return outputs

    def attention_inputs(
        self,
        variant: str,
        first: int,
        end: int,
        batches: range,
        inputs: TokenRowTasks,
        backward: bool,
        read: dict[tuple[int, int, range], list[str]],
    ) -> list[str]:
        """The input tasks a unit of queries at positions [first, end) reads; ``read`` keeps those of the rows
        already asked for (every unit of a softmax reads every key's: listed once, not once per unit)."""
        if not self.per_tile:
            return _all_tasks(inputs)
        if variant in ("softmax", "flash") and not backward:
            lo, hi = 0, self.seq_len  # scores against every key
        elif variant == "window" and not backward:
            lo, hi = max(0, first - (end - first)), end  # its own block and the previous one
        else:
            lo, hi = first, end
        key = lo, hi, batches
        if key not in read:
            read[key] = [name for i in self.blocks_holding(lo, hi, batches) for name in inputs[i]]
        return read[key]

    def merge_heads(self, name: str, cols: int, outputs: list[AttentionOutput], group: str) -> TokenRowTasks:
        """Heads back into token rows (a transpose-copy, as ``a.transpose(1, 2).reshape(b, s, d)``)."""

        if self.counted is not None:  # the copies' tasks counted, no producer listed
            return self.row_op(name, "copy", cols, _no_deps, group)
        # Each row block's producers, in the attention's order: the blocks an output's rows cover, found by index.
        producers: list[list[str]] = [[] for _ in range(self.blocks)]
        for o in outputs:
            for i in self.blocks_holding(o.first_position, o.end_position, o.batches):
                producers[i].append(o.task)
        return self.row_op(name, "copy", cols, lambda i: producers[i], group)


class _EmbeddingsAndHeads(_TokenRowOps, _Gemms, _TrainingUpdates):
    """The two ends of the model, which differ by family: a GPT's token embedding and LM head, a ViT's patch
    embedding and pooled classifier (whose ops act on one row per image, not on token rows)."""

    def embed_forward(self) -> TokenRowTasks:
        d_model, family = self.d_model, self.wl.spec.model.family
        if family == "gpt":
            model = self.wl.spec.model
            tokens = self.row_op("embed.gather", "copy", d_model, _no_deps, "embed")
            tokens = self.all_reduce("embed", tokens, "embed")  # a vocabulary-parallel table: each card's rows
            if model.token_types:  # each row's token-type row gathered and added
                tokens = self.row_op("embed.types", "add", self.row_d, _same_block(tokens), "embed", inputs=2)
            if model.positions == "learned":
                tokens = self.row_op("embed.pos", "add", self.row_d, _same_block(tokens), "embed", inputs=2)
            if model.norm_position == "post":  # an encoder normalises the embeddings' sum (BERT's embeddings.LayerNorm)
                tokens = self.row_op(
                    "embed.ln", self.norm, self.row_d, _same_block(tokens), "embed", params=self.norm_params
                )
            return tokens
        patches, patch_elements, batch = self.wl.patches, self.wl.patch_elements, self.batch
        pixels = batch * patches * patch_elements
        patchify = self.emit("embed.patchify", "copy", (pixels,), pixels, pixels, [], "embed")
        patch_rows = batch * patches
        patch_tiles: list[str] = []
        if not self.counting(self.tiles(patch_rows, self.tile_m) * self.tiles(d_model, self.tile_n)):
            widths = self.column_tiles(d_model)
            row_tiles = (
                [min(self.tile_m, patch_rows - r) for r in range(0, patch_rows, self.tile_m)]
                if self.per_tile
                else [patch_rows]
            )
            patch_tiles = [
                self.emit(
                    self.label("embed.patch", a, j),
                    "gemm",
                    (rows, patch_elements, width),
                    (rows * patch_elements if j == 0 else 0) + (patch_elements * width if a == 0 else 0),
                    rows * width,
                    [patchify],
                    "embed",
                )
                for a, rows in enumerate(row_tiles)
                for j, width in enumerate(widths)
            ]
        return self.row_op("embed.pos", "add", d_model, lambda i: patch_tiles, "embed", inputs=2)

    def head_forward(self, x: TokenRowTasks, training: bool) -> TokenRowTasks:
        """The head; in training also its backward. Returns the gradient reaching the last layer's output (the
        logits' rows when not training)."""
        if self.wl.spec.model.family == "gpt":
            return self._lm_head(x, training)
        return self._classifier_head(x, training)

    def _mlm_transform(self, x: TokenRowTasks) -> tuple[TokenRowTasks, TokenRowTasks]:
        """The MLM head's transform before its norm: a d_model x d_model product (replicated under tensor
        parallelism, as Megatron's BERT keeps it) and the activation. Returns (the activation's rows, the product's
        input rows)."""
        d, activation = self.d_model, self.wl.spec.model.activation
        dense = self.gemm("head.dense", d, d, _same_block(x), "head")
        return self.row_op(f"head.{activation}", activation, d, _same_block(dense), "head"), x

    def _mlm_transform_backward(self, d_act: TokenRowTasks, x: TokenRowTasks) -> TokenRowTasks:
        """The transform's backward from the gradient at its norm's input: the activation's gradient, the
        product's data and weight gradients (and the norm's parameters' gradient and update). Returns the gradient
        reaching the last layer's output."""
        d, activation, tokens = self.d_model, self.wl.spec.model.activation, self.batch * self.seq_len
        d_dense = self.row_op(f"head.{activation}.bwd", f"{activation}_grad", d, _same_block(d_act), "head", inputs=2)
        ln_params = self.param_grad("head.ln.dparams", self.norm_params, self.norm_params, _all_tasks(d_act), "head")
        self.adam("head.ln.adam", self.norm_params, [ln_params], "head")
        self.weight_grad("head.dense.dW", d, tokens, d, _all_tasks(x, d_dense), "head")
        return self.gemm("head.dense.dA", d, d, _same_block(d_dense), "head")

    def _masked_head(self, x: TokenRowTasks, training: bool) -> TokenRowTasks:
        """The MLM head on the masked positions only (``run.logits = "masked"``, as NVIDIA's and Megatron's BERT
        pretraining gather them first): the transform, norm, decoder and loss on ``Workload.masked_rows`` rows; in
        training their gradient is scattered back into every token row (zeros elsewhere)."""
        d, vocab, rows, np_, g = self.d_model, self.wl.vocab, self.wl.masked_rows, self.norm_params, "head"
        activation, tp, n = self.wl.spec.model.activation, self.tp, self.wl.masked_rows * self.d_model

        def op(name: str, kind: str, elements: int, reads: int, writes: int, deps: list[str]) -> str:
            return self.emit(name, kind, (elements,), reads, writes, deps, g, per_sequence=False)

        def product(name: str, inner: int, cols: int, deps: list[str], weights: bool) -> list[str]:
            return self.rows_gemm(name, rows, inner, cols, deps, g, weights=weights, per_sequence=False)

        picked = op("head.gather", "copy", n, n, n, _all_tasks(x))
        dense = product("head.dense", d, d, [picked], True)
        act = op(f"head.{activation}", activation, n, n, n, dense)
        lnf = op("head.ln", self.norm, n, n + np_, n, [act])
        logits = product("head.lm", d, vocab, [lnf], False)
        if tp > 1 and not training:  # each card holds a slice of the vocabulary: gather every card's logits
            op("head.lm.allgather", "all_gather", rows * vocab, rows * vocab, rows * vocab * tp, logits)
        if not training:
            return x
        if tp > 1:  # vocabulary-parallel cross-entropy: the rows' max and sum all-reduced
            logits = [*logits, op("head.loss.allreduce", "all_reduce", rows * 2, rows * 2, rows * 2, logits)]
        loss = op("head.loss", "softmax_grad", rows * vocab, rows * vocab, rows * vocab, logits)
        d_lnf = product("head.lm.dA", vocab, d, [loss], False)
        if tp > 1:
            d_lnf = [op("head.lm.dA.allreduce", "all_reduce", n, n, n, d_lnf)]
        self.weight_grad("head.lm.dW", d, rows, vocab, [lnf, loss], g, quantized=False)
        d_act = op("head.ln.bwd", f"{self.norm}_grad", n, 2 * n + np_, n, d_lnf)
        self.adam("head.ln.adam", np_, [op("head.ln.dparams", "reduce", rows * np_, rows * np_, np_, d_lnf)], g)
        d_dense = op(f"head.{activation}.bwd", f"{activation}_grad", n, 2 * n, n, [d_act])
        self.weight_grad("head.dense.dW", d, rows, d, [picked, d_dense], g)
        d_picked = product("head.dense.dA", d, d, [d_dense], True)
        return self.row_op("head.scatter", "copy", d, lambda i: d_picked, g)

    def _lm_head(self, x: TokenRowTasks, training: bool) -> TokenRowTasks:
        d_model, vocab = self.d_model, self.wl.vocab
        if self.wl.spec.run.logits == "masked":
            return self._masked_head(x, training)
        mlm = self.wl.spec.model.head == "mlm"
        if mlm:
            x, dense_in = self._mlm_transform(x)
        if self.wl.spec.run.logits == "last":  # generation: each sequence's last position only
            batch, norm_params = self.batch, self.norm_params
            last = [name for i in self.blocks_holding(self.seq_len - 1, self.seq_len, range(batch)) for name in x[i]]
            last_norm = self.emit(
                "head.ln", self.norm, (batch * d_model,), batch * d_model + norm_params, batch * d_model, last, "head"
            )
            last_logits = self.rows_gemm("head.lm", batch, d_model, vocab, [last_norm], "head")
            tp = self.wl.spec.run.tensor_parallel
            if tp > 1:  # each card holds a slice of the vocabulary: gather every card's logits
                n = batch * vocab
                self.emit("head.lm.allgather", "all_gather", (n,), n, n * tp, last_logits, "head")
            return x
        lnf = self.row_op("head.ln", self.norm, self.row_d, _same_block(x), "head", params=self.norm_params)
        lnf = self.gather("head.ln", lnf, "head")
        logits = self.gemm("head.lm", d_model, vocab, _same_block(lnf), "head", weights=False)
        tp = self.wl.spec.run.tensor_parallel
        if tp > 1 and not training:  # each card holds a slice of the vocabulary: gather every card's logits
            return self.exchange("head.lm.allgather", "all_gather", vocab, vocab * tp, logits, "head")
        if not training:
            return logits
        if tp > 1:  # vocabulary-parallel cross-entropy: the rows' max and sum all-reduced, not the logits
            stats = self.row_op("head.loss.allreduce", "all_reduce", 2, _same_block(logits), "head")
            logits = [logits[i] + stats[i] for i in range(len(logits))]
        loss = self.row_op("head.loss", "softmax_grad", vocab, _same_block(logits), "head")
        d_lnf = self.all_reduce(
            "head.lm.dA", self.gemm("head.lm.dA", vocab, d_model, _same_block(loss), "head", weights=False), "head"
        )
        self.weight_grad(
            "head.lm.dW", d_model, self.batch * self.seq_len, vocab, _all_tasks(lnf, loss), "head", quantized=False
        )
        d_x = self.row_op(
            "head.ln.bwd",
            f"{self.norm}_grad",
            self.row_d,
            _same_block(d_lnf),
            "head",
            inputs=2,
            params=self.norm_params,
        )
        return self._mlm_transform_backward(d_x, dense_in) if mlm else d_x

    def _classifier_head(self, x: TokenRowTasks, training: bool) -> TokenRowTasks:
        """ViT: the class token (or the mean of the tokens) through a layernorm and the classifier."""
        d, batch, classes = self.d_model, self.batch, self.wl.classes
        class_token = self.wl.spec.model.class_token
        pooled_in = batch * d if class_token else batch * self.seq_len * d
        pooled = self.emit(
            "head.pool", "copy" if class_token else "reduce", (pooled_in,), pooled_in, batch * d, _all_tasks(x), "head"
        )
        norm_params = self.norm_params
        lnf = self.emit("head.ln", self.norm, (batch * d,), batch * d + norm_params, batch * d, [pooled], "head")
        logits = self.emit(
            "head.classifier", "gemm", (batch, d, classes), batch * d + d * classes, batch * classes, [lnf], "head"
        )
        if not training:
            return x
        loss = self.emit(
            "head.loss", "softmax_grad", (batch * classes,), batch * classes, batch * classes, [logits], "head"
        )
        d_ln = self.emit(
            "head.classifier.dA", "gemm", (batch, classes, d), batch * classes + classes * d, batch * d, [loss], "head"
        )
        d_weights = self.emit(
            "head.classifier.dW",
            "gemm",
            (d, batch, classes),
            d * batch + batch * classes,
            d * classes,
            [lnf, loss],
            "head",
            per_sequence=False,
        )
        self.adam("head.classifier.adam", d * classes, [d_weights], "head")
        d_pool = self.emit(
            "head.ln.bwd", f"{self.norm}_grad", (batch * d,), 2 * batch * d + norm_params, batch * d, [d_ln], "head"
        )
        # The gradient reaches the tokens as a full-size tensor (zeros but the class token, or the mean's share).
        return self.row_op("head.pool.bwd", "copy", d, lambda i: [d_pool], "head")

    def embed_backward(self, dy: TokenRowTasks) -> None:
        d_model, seq_len = self.d_model, self.seq_len
        every = _all_tasks(dy)
        if self.wl.spec.model.family == "gpt":
            model = self.wl.spec.model
            learned = model.positions == "learned"
            if model.norm_position == "post":  # through the embeddings' norm first
                norm_params = self.norm_params
                param_cols = norm_params // self.tp if self.sp else norm_params
                ln_params = self.param_grad("embed.ln.dparams", param_cols, norm_params, every, "embed")
                norm_grad = f"{self.norm}_grad"
                dy = self.row_op(
                    "embed.ln.bwd", norm_grad, self.row_d, _same_block(dy), "embed", inputs=2, params=norm_params
                )
                every = _all_tasks(dy)
            scatter = self.row_op("embed.scatter", "add", self.row_d, _same_block(dy), "embed", inputs=2)
            if learned:
                positions = self.param_grad("embed.pos.dparams", self.row_d, seq_len * d_model, every, "embed")
            if model.token_types:
                types = self.param_grad("embed.types.dparams", self.row_d, model.token_types * d_model, every, "embed")
            self.adam_rows("embed.adam", self.wl.vocab, d_model, _all_tasks(scatter), "embed")
            if learned:
                self.adam("embed.pos.adam", seq_len * d_model, [positions], "embed")
            if model.token_types:
                self.adam("embed.types.adam", model.token_types * d_model, [types], "embed")
            if model.norm_position == "post":
                self.adam("embed.ln.adam", norm_params, [ln_params], "embed")
            return
        self.weight_grad(
            "embed.patch.dW",
            self.wl.patch_elements,
            self.batch * self.wl.patches,
            d_model,
            every,
            "embed",
            quantized=False,
        )
        positions = self.param_grad("embed.pos.dparams", d_model, seq_len * d_model, every, "embed")
        self.adam("embed.pos.adam", seq_len * d_model, [positions], "embed")


class _Lowering(_Attention, _EmbeddingsAndHeads):
    """A transformer layer (its norms before attention and MLP, or after each residual add) forward and backward,
    and the whole model: embeddings, layers, head, then in training the layers' backward passes in reverse and the
    embeddings' update."""

    def layer_forward(self, layer: int, x: TokenRowTasks, tag: str = "") -> tuple[TokenRowTasks, SavedActivations]:
        """The layer's forward pass; ``tag`` names a second emission of it (a recomputation)."""
        d, qw, kvw, rd = self.d_model, self.q_width, self.kv_width, self.row_d
        g = f"L{layer}{tag}"
        if self.wl.spec.model.norm_position == "post":
            return self.post_norm_layer_forward(layer, x, g, tag)
        ln1 = self.row_op(f"{g}.ln1", self.norm, rd, _same_block(x), g, params=self.norm_params)
        ln1 = self.gather(f"{g}.ln1", ln1, g)
        qkv = self.gemm(f"{g}.qkv", d, qw + 2 * kvw, _same_block(ln1), g)
        split = self.row_op(f"{g}.split_heads", "copy", qw + 2 * kvw, _same_block(qkv), g)
        if self.rotary:  # on the queries and keys
            split = self.row_op(f"{g}.rope", "rope", qw + kvw, _same_block(split), g)
        outputs = self.attention(layer, split, backward=False, tag="fwd" + tag)
        merged = self.merge_heads(f"{g}.merge_heads", qw, outputs, g)
        proj = self.all_reduce(f"{g}.proj", self.gemm(f"{g}.proj", qw, d, _same_block(merged), g), g)
        if self.wl.spec.model.parallel_block:  # the MLP reads the same normalised input; one residual add
            down, act = self.mlp(g, ln1)
            out = self.row_op(f"{g}.res", "add", rd, lambda i: proj[i] + down[i] + x[i], g, inputs=3)
            return out, SavedActivations(ln1=ln1, merged=merged, ln2=ln1, act=act, x=x, split=split)
        res1 = self.row_op(f"{g}.res1", "add", rd, lambda i: proj[i] + x[i], g, inputs=2)
        ln2 = self.row_op(f"{g}.ln2", self.norm, rd, _same_block(res1), g, params=self.norm_params)
        ln2 = self.gather(f"{g}.ln2", ln2, g)
        down, act = self.mlp(g, ln2)
        out = self.row_op(f"{g}.res2", "add", rd, lambda i: down[i] + res1[i], g, inputs=2)
        return out, SavedActivations(ln1=ln1, merged=merged, ln2=ln2, act=act, x=x, split=split)

    def post_norm_layer_forward(
        self, layer: int, x: TokenRowTasks, g: str, tag: str
    ) -> tuple[TokenRowTasks, SavedActivations]:
        """BERT's layer: attention on the (already normalised) input, the residual add, then its norm; the MLP on
        that, the residual add, then the second norm, whose output leaves the layer. The saved ``ln1`` is what the
        QKV product read (the layer's input), ``ln2`` what the MLP read (the first norm's output)."""
        d, qw, kvw, rd = self.d_model, self.q_width, self.kv_width, self.row_d
        h = self.gather(f"{g}.x", x, g)
        qkv = self.gemm(f"{g}.qkv", d, qw + 2 * kvw, _same_block(h), g)
        split = self.row_op(f"{g}.split_heads", "copy", qw + 2 * kvw, _same_block(qkv), g)
        if self.rotary:
            split = self.row_op(f"{g}.rope", "rope", qw + kvw, _same_block(split), g)
        outputs = self.attention(layer, split, backward=False, tag="fwd" + tag)
        merged = self.merge_heads(f"{g}.merge_heads", qw, outputs, g)
        proj = self.all_reduce(f"{g}.proj", self.gemm(f"{g}.proj", qw, d, _same_block(merged), g), g)
        res1 = self.row_op(f"{g}.res1", "add", rd, lambda i: proj[i] + x[i], g, inputs=2)
        ln1 = self.row_op(f"{g}.ln1", self.norm, rd, _same_block(res1), g, params=self.norm_params)
        ln1_rows = self.gather(f"{g}.ln1", ln1, g)
        down, act = self.mlp(g, ln1_rows)
        res2 = self.row_op(f"{g}.res2", "add", rd, lambda i: down[i] + ln1[i], g, inputs=2)
        out = self.row_op(f"{g}.ln2", self.norm, rd, _same_block(res2), g, params=self.norm_params)
        return out, SavedActivations(ln1=h, merged=merged, ln2=ln1_rows, act=act, x=x, split=split)

    def recompute(self, layer: int, saved: SavedActivations, dy: TokenRowTasks) -> SavedActivations:
        """The activations the layer's backward reads, recomputed once its gradient has arrived (so that they need
        not be kept): the whole forward pass ("full"), or attention's core and the merge of its heads
        ("selective")."""
        mode = self.wl.spec.run.recompute
        if mode == "none":
            return saved
        if mode == "full":
            start = [saved.x[i] + dy[i] for i in range(len(dy))]
            return self.layer_forward(layer, start, tag=".rc")[1]
        start = [saved.split[i] + dy[i] for i in range(len(dy))]
        outputs = self.attention(layer, start, backward=False, tag="fwd.rc")
        merged = self.merge_heads(f"L{layer}.rc.merge_heads", self.q_width, outputs, f"L{layer}.rc")
        return dataclasses.replace(saved, merged=merged)

    def mlp(self, g: str, h: TokenRowTasks) -> tuple[TokenRowTasks, TokenRowTasks]:
        """The MLP (dense, or routed experts plus an optional shared one) on ``h``: (its output, the input of its
        down projection)."""
        model = self.wl.spec.model
        if not model.experts:
            down, act = self.dense_mlp(g, "mlp", self.d_ff, h)
            return self.all_reduce(f"{g}.mlp", down, g), act
        return self.all_reduce(f"{g}.moe", self.moe(g, h), g), []

    def dense_mlp(self, g: str, name: str, d_ff: int, h: TokenRowTasks) -> tuple[TokenRowTasks, TokenRowTasks]:
        """up (gate and up side by side when gated), activation (times the up half when gated), down."""
        d, model = self.d_model, self.wl.spec.model
        gated = model.mlp == "gated"
        up = self.gemm(f"{g}.{name}_up", d, 2 * d_ff if gated else d_ff, _same_block(h), g)
        act_name = model.activation if name == "mlp" else f"{name}_{model.activation}"
        act = self.row_op(f"{g}.{act_name}", model.activation, d_ff, _same_block(up), g)
        if gated:
            act = self.row_op(f"{g}.{name}_gate", "mul", d_ff, _same_block(act), g, inputs=2)
        down = self.gemm(f"{g}.{name}_down", d_ff, d, _same_block(act), g)
        return down, act

    def moe(self, g: str, h: TokenRowTasks) -> TokenRowTasks:
        """Mixture of experts: a router scores every expert per token (softmax and top-k), the routed rows are
        gathered expert by expert, the experts used (those that receive tokens, or a given count) run their MLPs as
        one batched product of one shape, each reading its own weights and running the busiest expert's rows
        (accelsim.workload.Workload.moe_routing), and each token sums its k experts' outputs (and the shared
        expert's)."""
        d, model = self.d_model, self.wl.spec.model
        E, k, d_ff = model.experts, model.experts_per_token, model.d_ff_expert or 0
        gated = model.mlp == "gated"
        used, per_expert = self.wl.moe_routing
        routed = used * per_expert
        width = 2 * d_ff if gated else d_ff
        router = self.gemm(f"{g}.router", d, E, _same_block(h), g)
        route = self.row_op(f"{g}.route", "softmax", E, _same_block(router), g)
        gather = self.emit(
            f"{g}.moe_gather",
            "copy",
            (routed * d,),
            routed * d,
            routed * d,
            _all_tasks(route, h),
            g,
            per_sequence=False,
        )
        up = self.emit(
            f"{g}.experts_up",
            "bmm",
            (used, per_expert, d, width),
            routed * d + used * d * width,
            routed * width,
            [gather],
            g,
            per_sequence=False,
            quantized=True,
        )
        n = routed * d_ff
        act = self.emit(f"{g}.experts_{model.activation}", model.activation, (n,), n, n, [up], g, per_sequence=False)
        if gated:
            act = self.emit(f"{g}.experts_gate", "mul", (n,), 2 * n, n, [act], g, per_sequence=False)
        down = self.emit(
            f"{g}.experts_down",
            "bmm",
            (used, per_expert, d_ff, d),
            n + used * d_ff * d,
            routed * d,
            [act],
            g,
            per_sequence=False,
            quantized=True,
        )
        if model.d_ff_shared:
            shared, _ = self.dense_mlp(g, "shared", model.d_ff_shared, h)
            return self.row_op(f"{g}.moe_combine", "add", d, lambda i: [down, *shared[i]], g, inputs=k + 1)
        return self.row_op(f"{g}.moe_combine", "add", d, lambda i: [down], g, inputs=k)

    def mlp_backward(self, L: str, g: str, dy: TokenRowTasks, saved: SavedActivations) -> TokenRowTasks:
        """A dense MLP's backward: data and weight gradients of down and up, the activation's (and gate's)
        gradient between them. Returns the gradient reaching the MLP's input."""
        d, d_ff, tokens, model = self.d_model, self.d_ff, self.batch * self.seq_len, self.wl.spec.model
        gated = model.mlp == "gated"
        width = 2 * d_ff if gated else d_ff
        dy = self.gather(f"{L}.mlp.dy", dy, g)
        d_act = self.gemm(f"{L}.mlp_down.dA", d, d_ff, _same_block(dy), g)
        self.weight_grad(f"{L}.mlp_down.dW", d_ff, tokens, d, _all_tasks(saved.act, dy), g)
        if gated:  # (act x up)': d(up) = dY act, d(act) = dY up
            d_upside = self.row_op(f"{L}.mlp_gate.bwd_up", "mul", d_ff, _same_block(d_act), g, inputs=2)
            d_act = self.row_op(f"{L}.mlp_gate.bwd_act", "mul", d_ff, _same_block(d_act), g, inputs=2)
        act_grad = f"{model.activation}_grad"
        d_up = self.row_op(f"{L}.{model.activation}.bwd", act_grad, d_ff, _same_block(d_act), g, inputs=2)
        if gated:
            d_up = [d_up[i] + d_upside[i] for i in range(len(d_up))]
        d_in = self.all_reduce(f"{L}.mlp_up.dA", self.gemm(f"{L}.mlp_up.dA", width, d, _same_block(d_up), g), g)
        self.weight_grad(f"{L}.mlp_up.dW", d, tokens, width, _all_tasks(saved.ln2, d_up), g)
        return d_in

    def attention_backward(self, layer: int, dy: TokenRowTasks, saved: SavedActivations) -> TokenRowTasks:
        """The attention branch's backward from the gradient at its output projection to its input's."""
        d, qw, kvw, tokens = self.d_model, self.q_width, self.kv_width, self.batch * self.seq_len
        L = f"L{layer}"
        g = f"{L}.bwd"
        dy = self.gather(f"{L}.attn.dy", dy, g)
        d_merged = self.gemm(f"{L}.proj.dA", d, qw, _same_block(dy), g)
        self.weight_grad(f"{L}.proj.dW", qw, tokens, d, _all_tasks(saved.merged, dy), g)
        d_heads = self.row_op(f"{L}.split_dout", "copy", qw, _same_block(d_merged), g)
        outputs = self.attention(layer, d_heads, backward=True)
        d_qkv = self.merge_heads(f"{L}.merge_dqkv", qw + 2 * kvw, outputs, g)
        if self.rotary:
            d_qkv = self.row_op(f"{L}.rope.bwd", "rope_grad", qw + kvw, _same_block(d_qkv), g)
        d_ln1 = self.all_reduce(f"{L}.qkv.dA", self.gemm(f"{L}.qkv.dA", qw + 2 * kvw, d, _same_block(d_qkv), g), g)
        self.weight_grad(f"{L}.qkv.dW", d, tokens, qw + 2 * kvw, _all_tasks(saved.ln1, d_qkv), g)
        return d_ln1

    def layer_backward(self, layer: int, dy: TokenRowTasks, saved: SavedActivations) -> TokenRowTasks:
        d, norm_params = self.row_d, self.norm_params  # d: the columns of the rows a card holds
        # a norm's parameter gradient sums over the rows this card holds (1/tp of them under sequence parallelism)
        param_cols = norm_params // self.tp if self.sp else norm_params
        L = f"L{layer}"
        g = f"{L}.bwd"
        norm_grad = f"{self.norm}_grad"
        if self.wl.spec.model.parallel_block:  # both branches from dY; their input gradients sum at ln1's output
            d_mlp = self.mlp_backward(L, g, dy, saved)
            d_attn = self.attention_backward(layer, dy, saved)
            d_ln1 = self.row_op(f"{L}.ln1.dsum", "add", d, lambda i: d_mlp[i] + d_attn[i], g, inputs=2)
            d_x_branch = self.row_op(f"{L}.ln1.bwd", norm_grad, d, _same_block(d_ln1), g, inputs=2, params=norm_params)
            ln1_params = self.param_grad(f"{L}.ln1.dparams", param_cols, norm_params, _all_tasks(d_ln1), g)
            self.adam(f"{L}.ln.adam", norm_params, [ln1_params], g)
            return self.row_op(f"{L}.res0.bwd", "add", d, lambda i: d_x_branch[i] + dy[i], g, inputs=2)
        if self.wl.spec.model.norm_position == "post":
            return self.post_norm_layer_backward(layer, dy, saved)
        d_ln2 = self.mlp_backward(L, g, dy, saved)
        d_res1_branch = self.row_op(f"{L}.ln2.bwd", norm_grad, d, _same_block(d_ln2), g, inputs=2, params=norm_params)
        ln2_params = self.param_grad(f"{L}.ln2.dparams", param_cols, norm_params, _all_tasks(d_ln2), g)
        d_res1 = self.row_op(f"{L}.res1.bwd", "add", d, lambda i: d_res1_branch[i] + dy[i], g, inputs=2)
        d_ln1 = self.attention_backward(layer, d_res1, saved)
        d_x_branch = self.row_op(f"{L}.ln1.bwd", norm_grad, d, _same_block(d_ln1), g, inputs=2, params=norm_params)
        ln1_params = self.param_grad(f"{L}.ln1.dparams", param_cols, norm_params, _all_tasks(d_ln1), g)
        self.adam(f"{L}.ln.adam", 2 * norm_params, [ln1_params, ln2_params], g)
        return self.row_op(f"{L}.res0.bwd", "add", d, lambda i: d_x_branch[i] + d_res1[i], g, inputs=2)

    def post_norm_layer_backward(self, layer: int, dy: TokenRowTasks, saved: SavedActivations) -> TokenRowTasks:
        """A post-norm layer's backward: through the second norm, the MLP and its residual, the first norm, the
        attention and its residual."""
        d, norm_params = self.row_d, self.norm_params
        param_cols = norm_params // self.tp if self.sp else norm_params
        L = f"L{layer}"
        g = f"{L}.bwd"
        norm_grad = f"{self.norm}_grad"
        d_res2 = self.row_op(f"{L}.ln2.bwd", norm_grad, d, _same_block(dy), g, inputs=2, params=norm_params)
        ln2_params = self.param_grad(f"{L}.ln2.dparams", param_cols, norm_params, _all_tasks(dy), g)
        d_mlp = self.mlp_backward(L, g, d_res2, saved)
        d_ln1 = self.row_op(f"{L}.res2.bwd", "add", d, lambda i: d_mlp[i] + d_res2[i], g, inputs=2)
        d_res1 = self.row_op(f"{L}.ln1.bwd", norm_grad, d, _same_block(d_ln1), g, inputs=2, params=norm_params)
        ln1_params = self.param_grad(f"{L}.ln1.dparams", param_cols, norm_params, _all_tasks(d_ln1), g)
        d_attn = self.attention_backward(layer, d_res1, saved)
        self.adam(f"{L}.ln.adam", 2 * norm_params, [ln1_params, ln2_params], g)
        return self.row_op(f"{L}.res1.bwd", "add", d, lambda i: d_attn[i] + d_res1[i], g, inputs=2)

    def each_layer(self, order: Iterable[int]) -> Iterator[int]:
        """The model's layers in ``order``; while the graph is counted, the first alone, each of its tasks counted
        once for every layer (``copies``): a model of very many layers, or of layers too large, is refused as its
        first layer is counted. The layers of a model are alike in their tasks (a local layer's attention sees
        fewer keys in tasks of the same number; tests/test_lowering.py checks that a graph is built at a limit of
        its own size and refused at one task less)."""
        if self.counted is None:
            yield from order
        elif self.wl.spec.model.layers:
            self.copies = self.wl.spec.model.layers
            yield 0
            self.copies = 1

    def lower(self) -> TaskGraph:
        """The graph, counted before it is built: the builders run once counting their tasks (``counting``), the
        first layer standing for every layer (``each_layer``), which refuses a graph too large for this machine as
        soon as its count passes the limit, before any task is made; then once making them."""
        self.counted = 0
        try:
            self.passes()
        finally:
            self.counted, self.copies, self.pending = None, 1, []
        self.passes()
        graph = TaskGraph(self.tasks, name=self.wl.name, source=self.wl.source)
        graph.meta.update(self.wl.summary().to_dict())
        return graph

    def passes(self) -> None:
        """The embeddings, the layers and the head; in training the layers' backward passes in reverse and the
        embeddings' update."""
        wl, model = self.wl, self.wl.spec.model
        training = wl.spec.run.mode == "training"
        embed_params = self.zero3_gather("embed", wl.embedding_parameters, [], "embed") if wl.has_embeddings else []
        x = self.embed_forward() if wl.has_embeddings else self.row_op("input", "copy", self.row_d, _no_deps, "input")
        x = _waiting(x, embed_params)
        saved = []
        outputs = [x]  # each layer's input, then the last one's output
        layer_params = wl.layer_parameters
        for layer in self.each_layer(range(model.layers)):
            # ZeRO 3: the layer's parameters gathered one layer ahead (once the layer two before is done)
            ahead = _all_tasks(outputs[-2]) if len(outputs) > 1 else []
            x = _waiting(x, self.zero3_gather(f"L{layer}", layer_params, ahead, f"L{layer}"))
            x, activations = self.layer_forward(layer, x)
            saved.append(activations)
            outputs.append(x)
        if wl.has_head:
            head_params = self.zero3_gather("head", wl.head_parameters, _all_tasks(outputs[-2]), "head")
            if training:
                head_params += self.zero3_gather("head.bwd", wl.head_parameters, head_params, "head")
            dy = self.head_forward(_waiting(x, head_params), training)
            self.flush_gradients("head")
        elif training:
            dy = self.row_op("output", "copy", self.row_d, _same_block(x), "output")
        else:
            dy = x
        if training:
            gradients = [x, dy]  # what the backward has reached, to gather the next layer's parameters ahead
            for layer in self.each_layer(reversed(range(model.layers))):
                ahead = _all_tasks(gradients[-2])
                dy = _waiting(dy, self.zero3_gather(f"L{layer}.bwd", layer_params, ahead, f"L{layer}.bwd"))
                dy = self.layer_backward(layer, dy, self.recompute(layer, saved[layer], dy))
                self.flush_gradients(f"L{layer}")
                gradients.append(dy)
            if wl.has_embeddings:
                ahead = _all_tasks(gradients[-2])
                dy = _waiting(dy, self.zero3_gather("embed.bwd", wl.embedding_parameters, ahead, "embed"))
                self.embed_backward(dy)
                self.flush_gradients("embed")


def _waiting(rows: TokenRowTasks, tasks: list[str]) -> TokenRowTasks:
    """Every row block of ``rows`` also waits for ``tasks`` (a ZeRO-3 gather of the parameters its consumer uses)."""
    return [[*block, *tasks] for block in rows] if tasks else rows


def lower(workload: Workload) -> TaskGraph:
    """The task graph of one pass (inference) or one training step of ``workload``. A graph too large for this
    machine (accelsim.limits.MAX_TASKS) is refused before any of it is built: the builders run once counting their
    tasks (the first layer standing for every layer), and refuse as soon as the count passes the limit."""
    return _Lowering(workload).lower()
