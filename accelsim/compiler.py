"""The chip's graph compiler: a target-independent task graph becomes the engine-level tasks the chip runs.

What it does is the profile's ``[compiler]`` table (chip.CompilerSpec), never a branch on a chip's name. Passes,
in order, each one off unless the profile turns it on:

1. **Edges.** How many bytes each task reads from each dependency's output (``Task.dep_bytes``): as given, or
   inferred: a task reads its dependencies' outputs first, whole, as far as its bytes read go, the rest from memory.
2. **Fusion** (``fuse_vector_chains``). An element-wise or row op whose only consumer is another such op is folded
   into it: one vector kernel, whose intermediate never leaves the chip (Gaudi's TPC fuser).
3. **Split** (``split_over_engines``). Each task is cut into one part per engine of the kind that runs it (into
   at least ``slices`` parts, so that producer and consumer pipeline, and, where tensors are kept on chip, into
   parts whose outputs fit a share of the SRAM), along the dimension its op allows where the chip runs the parts
   fastest (``partition``); bytes, FLOPs and edges are shared out in proportion. A part waits for the producer
   parts holding the same rows when both are cut along first dimensions of the same length, for those holding the
   same sequences when both first dimensions run over the batch's sequences (``Task.sequences``), else for every
   part.
   Before the split, **input passes** (``input_pass_dtypes``): a matrix op in one of those dtypes is preceded by
   a DMA task that reads its M x K input from HBM and writes it back (split over the DMA engines like any task).
4. **Prefetch** (``prefetch_depth``). Each matrix op's weights (the bytes it reads from no producer) are loaded
   into SRAM by DMA tasks that may start once the matrix op ``prefetch_depth + 1`` places earlier is done (all but
   the first matrix op, which has nothing to hide its load under).
5. **On-chip plan** (``keep_on_chip``). Which outputs (and prefetched weights) stay in SRAM between producer and
   consumers: shortest-lived first, each kept if the SRAM it needs is free over its whole life in program order.
   At run time a kept tensor can still spill (accelsim.onchip), so the capacity holds for any schedule.

With every pass off (a GPU) the graph comes back as given, one kernel per op. A graph lowered at ``head`` or
``tile`` granularity is the user's own cut: the compiler does not split it again and says so.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from . import limits
from .chip import Chip
from .costs import compute_cycles
from .errors import AccelsimError
from .graph import CompiledFor, Task, TaskGraph
from .onchip import OnChipPlan
from .ops import OPS, elements
from .vocabulary import DTYPE_BYTES

#: Where it keeps tensors on chip, the compiler cuts an op into parts whose outputs take at most this share of the
#: SRAM it may use, so that a producer's part, its consumer's part and the next weights fit together (a choice of
#: this model: Gaudi's compiler slices to fit SRAM, by rules that are not published).
SLICE_SHARE = 4


@dataclass(frozen=True)
class CompileReport:
    """What the compiler did to one graph (``accelsim compile``)."""

    chip: str
    tasks_before: int
    tasks_after: int
    tasks_per_op_before: dict[str, int]
    tasks_per_op_after: dict[str, int]
    fused_kernels: int  # kernels made of more than one op
    ops_fused_away: int  # ops folded into another op's kernel
    prefetches: int  # DMA tasks loading a matrix op's weights
    tensors_on_chip: int  # outputs (and prefetched weights) planned to stay in SRAM
    hbm_bytes_before: int
    hbm_bytes_after: int  # if every tensor planned on chip stays there
    flops_per_kind: dict[str, int]  # by each task's preferred engine kind on this chip
    warnings: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class Compiled:
    """The compiled graph; its report is worked out when asked for."""

    graph: TaskGraph
    source: TaskGraph
    chip: Chip
    prefetches: int = 0
    fused_away: int = 0

    @cached_property
    def report(self) -> CompileReport:
        return _report(
            self.source, self.graph, self.chip, self.prefetches, compiler_warnings(self.graph), self.fused_away
        )


def compile_graph(graph: TaskGraph, chip: Chip) -> Compiled:
    """Compile ``graph`` for ``chip``; a graph already compiled for this chip (a profile of the same content, not
    merely the same name) comes back as it is, and one compiled for another chip is compiled again from the graph
    it was compiled from, not cut a second time."""
    if graph.compiled is not None:
        if graph.compiled.fingerprint == chip.fingerprint:
            return Compiled(graph, graph, chip)
        graph = graph.compiled.source
    spec = chip.spec.compiler
    warnings: list[str] = []
    user_cut = graph.meta.get("granularity") in ("head", "tile")
    if user_cut:
        warnings.append(
            f"granularity {graph.meta['granularity']} is the workload's own cut and overrides the compiler of "
            f"{chip.name}, which "
            + ("splits each op over its engines itself" if spec.split_over_engines else "runs one kernel per op")
            + "; leave it unset for what the chip does"
        )
    tasks = with_edges(graph.tasks)
    fused = 0
    if spec.fuse_vector_chains:
        tasks, fused = fuse_vector_chains(tasks)
    capacity = chip.on_chip_capacity if spec.keep_on_chip else 0
    if spec.input_pass_dtypes:
        tasks = with_input_passes(tasks, spec.input_pass_dtypes, chip, graph.source)
    if spec.split_over_engines and not user_cut:
        tasks = split_over_engines(tasks, chip, spec.slices, capacity // SLICE_SHARE, graph.source)
    prefetches = 0
    if spec.keep_on_chip:
        depth = spec.prefetch_depth if "dma" in chip.kinds else 0
        channels = _engines_per_kind(chip).get("dma", 1) if spec.split_over_engines and not user_cut else 1
        tasks, prefetches = plan_on_chip(tasks, capacity, depth, channels, chip, graph.source)
    compiled = CompiledFor(chip.name, chip.fingerprint, graph, tuple(warnings))
    out = TaskGraph(tasks, name=graph.name, source=graph.source, meta=dict(graph.meta), compiled=compiled)
    return Compiled(out, graph, chip, prefetches, fused)


def compiler_warnings(graph: TaskGraph) -> tuple[str, ...]:
    """What the compiler warned of when it compiled ``graph`` (none for a graph it did not compile)."""
    return () if graph.compiled is None else graph.compiled.warnings


def refuse_compiled_size(tasks: int, chip: Chip, source: str | None) -> None:
    """Refuse a compiled graph found, by the pass that makes its tasks, to have at least ``tasks`` tasks where
    that is more than fit this machine (accelsim.limits.MAX_TASKS); each pass counts before it builds."""
    refusal = limits.too_many_tasks(tasks, f"compiled for {chip.name}, the graph", at_least=True)
    if refusal:
        raise AccelsimError(
            f"{refusal}; make the run smaller (run.batch, run.seq_len, model.layers) or give the "
            "chip's compiler fewer parts per op (compiler.slices, engine counts, more SRAM)",
            source=source,
            key="(size)",
        )


# ---- input passes ---------------------------------------------------------------------------------------------


def input_pass(t: Task, dtypes: Sequence[str]) -> Task | None:
    """The DMA task that passes matrix op ``t``'s M x K input once through HBM (read, then written back) before
    it, where ``t`` computes in one of ``dtypes``; None for any other task."""
    op = OPS[t.op]
    if op.category != "matrix" or t.dtype not in dtypes:
        return None
    nbytes = sum(b * m * k for b, m, k, _ in op.gemms(t.shape)) * DTYPE_BYTES[t.dtype]
    return Task(
        name=f"input:{t.name}",
        op="dma",
        shape=(nbytes,),
        dtype=t.dtype,
        bytes_read=nbytes,
        bytes_written=nbytes,
        engines=("dma",),
        deps=t.deps,
        group=t.group,
        dep_bytes=(0,) * len(t.deps),
    )


def with_input_passes(
    tasks: Sequence[Task], dtypes: Sequence[str], chip: Chip | None = None, source: str | None = None
) -> list[Task]:
    """``tasks`` with each matrix op in ``dtypes`` after its input pass (measured on Gaudi 2: an fp8 GEMM takes
    2 x M x K bytes at the HBM rate longer than its MACs, not overlapped; ../shared/calibration/gaudi). Given the
    ``chip`` compiled for, refuses (refuse_compiled_size) a pass that would take the count past this machine's."""
    out: list[Task] = []
    passes = 0
    for t in tasks:
        p = input_pass(t, dtypes)
        if p is not None:
            passes += 1
            if chip is not None:  # the graph has every task given and the passes made so far, at least
                refuse_compiled_size(len(tasks) + passes, chip, source)
            out.append(p)
            t = t.but(deps=(*t.deps, p.name), dep_bytes=(*t.dep_bytes, 0))
        out.append(t)
    return out


# ---- 1. edges -----------------------------------------------------------------------------------------------


def with_edges(tasks: Sequence[Task]) -> list[Task]:
    """Every task with ``dep_bytes`` filled in: kept where given, else each dependency's whole output, in order,
    as far as the task's bytes read go."""
    written = {t.name: t.bytes_written for t in tasks}
    out = []
    for t in tasks:
        if len(t.dep_bytes) == len(t.deps):
            out.append(t)
            continue
        left, edges = t.bytes_read, []
        for d in t.deps:
            b = min(written[d], left)
            edges.append(b)
            left -= b
        out.append(t.but(dep_bytes=tuple(edges)))
    return out


# ---- 2. fusion ----------------------------------------------------------------------------------------------


def _fusable(t: Task) -> bool:
    spec = OPS[t.op]
    return spec.category == "vector" and spec.arity == 0 and t.engines == ("vector",)


def fuse_vector_chains(tasks: Sequence[Task]) -> tuple[list[Task], int]:
    """Fold each element-wise or row op whose only consumer is another such op (same dtype) into that consumer.
    Returns the new task list (program order kept) and how many ops were folded away."""
    consumers: dict[str, list[str]] = {t.name: [] for t in tasks}
    for t in tasks:
        for d in t.deps:
            consumers[d].append(t.name)
    by_name = {t.name: t for t in tasks}
    into = {}  # producer name -> the consumer it folds into
    for t in tasks:
        c = consumers[t.name]
        if _fusable(t) and len(c) == 1 and _fusable(by_name[c[0]]) and by_name[c[0]].dtype == t.dtype:
            into[t.name] = c[0]
    merged: dict[str, Task] = {}
    out = []
    for t in tasks:
        absorbed = [merged.pop(d) for d in t.deps if d in merged]
        if absorbed:
            t = _absorb(t, absorbed)
        if t.name in into:
            merged[t.name] = t
        else:
            out.append(t)
    return out, len(into)


def _absorb(consumer: Task, producers: list[Task]) -> Task:
    """The consumer's kernel with the producers' ops run first inside it."""
    names = {p.name for p in producers}
    deps: dict[str, int] = {}
    reads = consumer.bytes_read
    for d, b in zip(consumer.deps, consumer.dep_bytes, strict=True):
        if d in names:
            reads -= b  # the producer's output never leaves the chip
        else:
            deps[d] = deps.get(d, 0) + b
    fused: tuple[tuple[str, tuple[int, ...]], ...] = ()
    flops = consumer.flops
    for p in producers:
        reads += p.bytes_read
        flops += p.flops
        fused += (*p.fused, (p.op, p.shape))
        for d, b in zip(p.deps, p.dep_bytes, strict=True):
            deps[d] = deps.get(d, 0) + b
    return consumer.but(
        deps=tuple(deps), dep_bytes=tuple(deps.values()), bytes_read=reads, flops=flops, fused=fused + consumer.fused
    )


# ---- 4 and 5. prefetch and the on-chip plan ------------------------------------------------------------------


def plan_on_chip(
    tasks: Sequence[Task],
    capacity: int,
    prefetch_depth: int,
    channels: int = 1,
    chip: Chip | None = None,
    source: str | None = None,
) -> tuple[list[Task], int]:
    """Mark the outputs to keep on chip and add the weight prefetches that fit, each spread over ``channels`` DMA
    tasks (one per DMA engine, as a GEMM is spread over the MMEs); returns the tasks and the number of weight
    prefetches. Tensors are placed shortest-lived first (earliest last use breaking ties), each where the SRAM
    it needs is free at every program position from its producer to its last consumer."""
    position = {t.name: i for i, t in enumerate(tasks)}
    last_use = [-1] * len(tasks)
    for i, t in enumerate(tasks):
        for d, b in zip(t.deps, t.dep_bytes, strict=True):
            if b:
                last_use[position[d]] = max(last_use[position[d]], i)
    # Candidates: (first position, last position, bytes, what): outputs read by someone, and prefetches.
    candidates: list[tuple[int, int, int, tuple[str, int]]] = []
    for i, t in enumerate(tasks):
        if last_use[i] >= 0 and 0 < t.bytes_written <= capacity:
            candidates.append((i, last_use[i], t.bytes_written, ("output", i)))
    # Matrix op k's weights may load once matrix op k - depth - 1 is done: with depth 1, while op k - 1 computes.
    # An op cut into parts counts once: its part j waits for part j of that op (or its last part).
    ops: list[list[int]] = []
    for i, t in enumerate(tasks):
        if t.engines == ("matrix",):
            if ops and tasks[ops[-1][0]].whole == t.whole:
                ops[-1].append(i)
            else:
                ops.append([i])
    waits_for = {}
    for k, parts in enumerate(ops):
        earlier = ops[k - prefetch_depth - 1] if k > prefetch_depth else []
        for j, i in enumerate(parts):
            waits_for[i] = earlier[min(j, len(earlier) - 1)] if earlier else -1
    # The first matrix op has no earlier matrix work to hide its load under: it streams its weights itself.
    matrix = [i for parts in ops[1:] for i in parts]
    weights: dict[int, int] = {}
    for i in matrix if prefetch_depth else ():
        w = tasks[i].bytes_read - sum(tasks[i].dep_bytes)
        if 0 < w <= capacity:
            weights[i] = w
            candidates.append((max(waits_for[i], 0), i, w, ("prefetch", i)))
    load = np.zeros(len(tasks) + 1, dtype=np.int64)
    kept: set[tuple[str, int]] = set()
    for first, last, size, what in sorted(candidates, key=lambda c: (c[1] - c[0], c[1], c[0])):
        if load[first : last + 1].max() + size <= capacity:
            load[first : last + 1] += size
            kept.add(what)
    emit_after: dict[int, list[Task]] = {}  # program position -> the prefetches emitted right after it (-1: first)
    loads: dict[int, list[Task]] = {}  # matrix task -> its prefetch's DMA tasks
    made = len(tasks)  # tasks in the plan's graph so far: the prefetches counted as they are made
    for i, w in weights.items():
        if ("prefetch", i) not in kept:
            continue
        after = waits_for[i]
        waits = (tasks[after].name,) if after >= 0 else ()
        shares = [s for s in _share(w, [1] * min(channels, w)) if s]
        made += len(shares)
        if chip is not None:
            refuse_compiled_size(made, chip, source)
        loads[i] = [
            Task(
                name=f"prefetch:{tasks[i].name}" + (f"#{k}" if len(shares) > 1 else ""),
                op="dma",
                shape=(share,),
                dtype=tasks[i].dtype,
                bytes_read=share,
                bytes_written=share,
                engines=("dma",),
                deps=waits,
                group=tasks[i].group,
                dep_bytes=(0,) * len(waits),
                on_chip=True,
                prefetch_of=tasks[i].name,
            )
            for k, share in enumerate(shares)
        ]
        emit_after.setdefault(after, []).extend(loads[i])
    out = list(emit_after.get(-1, ()))
    for i, t in enumerate(tasks):
        if ("output", i) in kept:
            t = t.but(on_chip=True)
        if ("prefetch", i) in kept:
            t = t.but(
                deps=(*t.deps, *(d.name for d in loads[i])),
                dep_bytes=(*t.dep_bytes, *(d.bytes_written for d in loads[i])),
            )
        out.append(t)
        out.extend(emit_after.get(i, ()))
    return out, sum(1 for what in kept if what[0] == "prefetch")


# ---- 3. split -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Parts:
    """How one task was cut: its part names and, along ``dim``, each part's [first, end) of ``length``, which
    runs over ``sequences`` sequences one after the other when it is the first dimension (Task.sequences)."""

    names: list[str]
    dim: int
    length: int
    bounds: list[tuple[int, int]]
    sequences: int

    def overlap(self, dim: int, length: int, sequences: int, first: int, end: int) -> list[int]:
        """How much of each part a consumer's part [first, end) of ``length`` along ``dim`` needs (0: none): the
        same rows where both are cut along the same first dimension, the same sequences where both run over the
        same sequences along their first dimensions, else all of every part."""
        if dim == 0 and self.dim == 0 and self.length == length:
            return [max(0, min(end, b) - max(first, a)) for a, b in self.bounds]
        if dim == 0 and self.dim == 0 and sequences == self.sequences > 1:
            mine = _sequences(first, end, length, sequences)
            return [(b - a) * _touch(mine, _sequences(a, b, self.length, sequences)) for a, b in self.bounds]
        return [b - a for a, b in self.bounds]


def _sequences(first: int, end: int, length: int, sequences: int) -> tuple[int, int]:
    """The sequences [s0, s1) that positions [first, end) of a first dimension of ``length`` touch."""
    return first * sequences // length, -(-end * sequences // length)


def _touch(a: tuple[int, int], b: tuple[int, int]) -> int:
    return int(a[0] < b[1] and b[0] < a[1])


def _cut(length: int, parts: int) -> list[tuple[int, int]]:
    base, extra = divmod(length, parts)
    out, at = [], 0
    for j in range(parts):
        n = base + (1 if j < extra else 0)
        out.append((at, at + n))
        at += n
    return out


def _share(total: int, weights: Sequence[int]) -> list[int]:
    """``total`` shared out in proportion to ``weights``, in integers that add up to it exactly."""
    whole = sum(weights)
    if not whole:
        return [0] * len(weights)
    out = [total * w // whole for w in weights]
    out[-1] += total - sum(out)
    return out


def split_over_engines(
    tasks: Sequence[Task], chip: Chip, slices: int = 1, fit_bytes: int = 0, source: str | None = None
) -> list[Task]:
    """Cut every task into parts for the engines of the kinds it may run on, choosing the cut (``partition``).
    Every cut is chosen first, and their parts summed: a split past this machine's tasks is refused before any
    part is made (refuse_compiled_size). A cut is chosen once for tasks alike in all but their names and
    dependencies (every layer's own: partition reads neither)."""
    chosen: dict[tuple[object, ...], tuple[int, int]] = {}
    decisions = []
    for t in tasks:
        alike: tuple[object, ...] = (t.op, t.shape, t.dtype, t.flops, t.bytes_read, t.bytes_written, t.engines)
        alike += (t.fused, t.on_chip, t.sequences, t.dep_bytes)
        if alike not in chosen:
            chosen[alike] = partition(t, chip, slices, fit_bytes)
        decisions.append(chosen[alike])
    refuse_compiled_size(sum(parts for _, parts in decisions), chip, source)
    cut: dict[str, _Parts] = {}
    out: list[Task] = []
    for t, (dim, parts) in zip(tasks, decisions, strict=True):
        bounds = _cut(t.shape[dim], parts)
        names = [t.name] if parts == 1 else [f"{t.name}#{j}" for j in range(parts)]
        sizes = [b - a for a, b in bounds]
        writes, flops = (_share(x, sizes) for x in (t.bytes_written, t.flops))
        edge_shares = [_share(b, sizes) for b in t.dep_bytes]
        if sum(t.dep_bytes) > t.bytes_read:
            raise AccelsimError(
                f"reads {sum(t.dep_bytes):,} bytes from its dependencies but {t.bytes_read:,} bytes in all",
                key=f"task {t.name!r}.dep_bytes",
            )
        # A part reads its shares of the edges and its share of the rest (the bytes read from memory): shared out
        # separately, each part's edge remainders could add up to more than a share of the whole it reads.
        rest = _share(t.bytes_read - sum(t.dep_bytes), sizes)
        reads = [r + sum(e[j] for e in edge_shares) for j, r in enumerate(rest)]
        # A fused kernel's ops are element-wise or row-wise: each part does its share of their elements.
        fused_shares = [_share(elements(shape), sizes) for _, shape in t.fused]
        for j, (a, b) in enumerate(bounds):
            shape = t.shape[:dim] + (b - a,) + t.shape[dim + 1 :]
            deps: list[str] = []
            dep_bytes: list[int] = []
            for d, shares in zip(t.deps, edge_shares, strict=True):
                producer = cut[d]
                overlap = producer.overlap(dim, t.shape[dim], t.sequences, a, b)
                picked = [(name, w) for name, w in zip(producer.names, overlap, strict=True) if w]
                for name, share in zip([p for p, _ in picked], _share(shares[j], [w for _, w in picked]), strict=True):
                    deps.append(name)
                    dep_bytes.append(share)
            fused = tuple((op, (share[j],)) for (op, _), share in zip(t.fused, fused_shares, strict=True))
            out.append(
                t.but(
                    name=names[j],
                    shape=shape,
                    flops=flops[j],
                    bytes_read=reads[j],
                    bytes_written=writes[j],
                    deps=tuple(deps),
                    dep_bytes=tuple(dep_bytes),
                    fused=fused if parts > 1 else t.fused,
                    origin=t.name if parts > 1 else t.origin,
                )
            )
        cut[t.name] = _Parts(names, dim, t.shape[dim], bounds, t.sequences)
    return out


def partition(task: Task, chip: Chip, slices: int = 1, fit_bytes: int = 0) -> tuple[int, int]:
    """(dimension, parts) to cut ``task`` into: one part per engine of its kind (the most engines among the kinds
    it allows), or ``slices`` parts where that is more, or, when ``fit_bytes`` is set and the output is larger,
    enough parts (a multiple of the engines) for each part's output to fit in it, along a dimension its op allows.
    Each candidate is costed on the chip (the slowest engine's share of parts, each part's cycles on the kind's
    fastest group), so a cut that leaves the arrays half empty (a GEMM's rows below the array's) loses to one that
    does not; ties go to the most parts, which pipeline best."""
    dims = OPS[task.op].split_dims(task.shape)
    engines = _engines_per_kind(chip)
    allowed = [k for k in task.engines if k in engines]
    if not dims or not allowed:
        return 0, 1
    kind = allowed[0]
    n = max(engines[k] for k in allowed)
    groups = [g for g in chip.groups if g.kind == kind]
    candidates: list[tuple[int, int, int]] = []  # (load, dimension, parts)
    for dim in dims:
        length = task.shape[dim]
        for parts in _part_counts(task, dim, n, slices, fit_bytes):
            size = -(-length // parts)
            part = task.but(shape=task.shape[:dim] + (size,) + task.shape[dim + 1 :])
            cycles = min((c for c in (compute_cycles(part, g, chip) for g in groups) if c >= 0), default=-1)
            if cycles < 0:
                return 0, 1
            candidates.append((-(-parts // engines[kind]) * cycles, dim, parts))
    # Within 1% of the least load counts as a tie (a fold's rounding): then the most parts, then the first dimension.
    least = min(load for load, _, _ in candidates)
    _, dim, parts = min(
        ((-parts, dims.index(dim)), dim, parts) for load, dim, parts in candidates if load <= least * 1.01
    )
    return dim, parts


def _engines_per_kind(chip: Chip) -> dict[str, int]:
    engines: dict[str, int] = {}
    for g in chip.groups:
        engines[g.kind] = engines.get(g.kind, 0) + g.count
    return engines


def _part_counts(task: Task, dim: int, n: int, slices: int, fit_bytes: int) -> list[int]:
    """The part counts a cut of ``task`` along ``dim`` may have, ascending: one per engine (``n``), at least
    ``slices``, and, when ``fit_bytes`` is set and the output is larger, the fewest parts whose outputs fit it, as
    evenly as the dimension allows; never more than the dimension is long. partition chooses among them."""
    length = task.shape[dim]
    fitting = n
    if fit_bytes and task.bytes_written > fit_bytes:
        fitting = -(-length // max(1, length * fit_bytes // task.bytes_written))
    return sorted({min(p, length) for p in (n, max(n, slices), fitting)})


# ---- the report ---------------------------------------------------------------------------------------------


def _report(
    before: TaskGraph, after: TaskGraph, chip: Chip, prefetches: int, warnings: tuple[str, ...], fused_away: int = 0
) -> CompileReport:
    present = set(chip.kinds)
    flops: Counter[str] = Counter()
    for t in after.tasks:
        kind = next((k for k in t.engines if k in present), t.engines[0])
        flops[kind] += t.flops
    plan = OnChipPlan.of(after)

    def tensor(t: Task) -> tuple[bool, str]:
        """What a kept task holds on chip, counting an op's parts once: its output, or its matrix op's weights."""
        if t.prefetch_of is None:
            return False, t.whole
        return True, after.tasks[after.index[t.prefetch_of]].whole

    return CompileReport(
        chip=chip.name,
        tasks_before=len(before),
        tasks_after=len(after),
        tasks_per_op_before=dict(sorted(Counter(t.op for t in before.tasks).items())),
        tasks_per_op_after=dict(sorted(Counter(t.op for t in after.tasks).items())),
        fused_kernels=len({t.whole for t in after.tasks if t.fused}),
        ops_fused_away=fused_away,
        prefetches=prefetches,
        tensors_on_chip=len({tensor(t) for i, t in enumerate(after.tasks) if plan.keep[i]}),
        hbm_bytes_before=before.total_bytes,
        hbm_bytes_after=int(plan.hbm.sum()),
        flops_per_kind=dict(flops),
        warnings=warnings,
    )
