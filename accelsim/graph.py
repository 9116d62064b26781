"""Task graphs: the DAG of work the simulator runs, built in Python or read from a TOML file.

A task says what it computes (op, shape, dtype, FLOPs, bytes) and which engine kinds may run it; it knows nothing
of when or where it runs. That is for the scheduler and the simulation.
"""

from __future__ import annotations

import dataclasses
import heapq
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from pydantic.dataclasses import dataclass as pydantic_dataclass

from .config import STRICT, NonNegInt, PosInt, build, read_toml
from .errors import AccelsimError
from .limits import MAX_COUNT
from .ops import OPS, default_bytes, default_flops
from .vocabulary import DTYPE_BYTES, ENGINE_KINDS, Dtype


@dataclass(frozen=True, slots=True)
class Task:
    """One unit of work. ``engines`` lists the engine kinds allowed, the preferred (default) kind first."""

    name: str
    op: str
    shape: tuple[int, ...]
    dtype: str = "bf16"
    flops: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    engines: tuple[str, ...] = ("vector",)
    deps: tuple[str, ...] = ()
    group: str = ""  # free label for reports, e.g. "L3.attn.h2"
    #: Its first dimension runs over this many independent sequences, one after the other (token rows, batch x
    #: heads): a compiler that cuts it may let a part wait only for the parts of its own sequences. 1: unknown.
    sequences: int = 1
    #: Bytes of each dependency's output this task reads, aligned with ``deps`` (accelsim.compiler fills it in).
    dep_bytes: tuple[int, ...] = ()
    #: The chip's compiler keeps this task's output (``bytes_written``) in SRAM for its consumers, when there is
    #: room when it starts (accelsim.onchip).
    on_chip: bool = False
    #: Vector ops fused into this task ahead of its own op, as (op, shape): one kernel, intermediates on chip.
    fused: tuple[tuple[str, tuple[int, ...]], ...] = ()
    #: The name of the task the chip's compiler cut this part from (its name is then ``origin#k``); None for a
    #: task not cut. Read it rather than the name: a hand-written graph's names may hold ``#`` themselves.
    origin: str | None = None
    #: A DMA task the compiler added to load this matrix task's weights into SRAM ahead of it (named
    #: ``prefetch:NAME``, ``#k`` for each DMA engine's share): NAME; None for every other task.
    prefetch_of: str | None = None

    @property
    def bytes(self) -> int:
        return self.bytes_read + self.bytes_written

    @property
    def whole(self) -> str:
        """The name of the task this is (part of) before the compiler cut it: ``origin``, else its own name."""
        return self.name if self.origin is None else self.origin

    def but(self, **changes: object) -> Task:
        """A copy with ``changes``: ``dataclasses.replace``, but cheap enough for a compiler pass over 10^5 tasks."""
        fields = {name: getattr(self, name) for name in _TASK_FIELDS}
        fields.update(changes)
        return Task(**fields)


_TASK_FIELDS = tuple(f.name for f in dataclasses.fields(Task))


def make_task(
    name: str,
    op: str,
    shape: Sequence[int],
    *,
    dtype: str = "bf16",
    flops: int | None = None,
    bytes_read: int | None = None,
    bytes_written: int | None = None,
    engines: Sequence[str] | None = None,
    deps: Sequence[str] = (),
    group: str = "",
) -> Task:
    """Build a Task, filling FLOPs, bytes and engines from the op's defaults where not given (``engines=None``;
    an empty list is an error). Dimensions, FLOPs and bytes are at most accelsim.limits.MAX_COUNT (2^62)."""
    spec = OPS.get(op)
    if spec is None:
        raise AccelsimError(f"unknown op {op!r}; known ops: {', '.join(sorted(OPS))}", key=f"task {name!r}.op")
    shape = tuple(int(x) for x in shape)
    if spec.arity and len(shape) != spec.arity:
        raise AccelsimError(f"op {op} takes a shape {spec.shape_doc}, got {list(shape)}", key=f"task {name!r}.shape")
    if not shape or any(not 0 < x <= MAX_COUNT for x in shape):
        raise AccelsimError(f"shape must be integers from 1 to 2^62, got {_shown(shape)}", key=f"task {name!r}.shape")
    product = 1
    for x in shape:  # stops at the first dimension past the bound, however long the shape
        product *= x
        if product > MAX_COUNT:
            raise AccelsimError(
                f"shape {_shown(shape)} has more than 2^62 ({MAX_COUNT:.3g}) elements; at most 2^62 can be counted",
                key=f"task {name!r}.shape",
            )
    if engines is not None and not engines:
        raise AccelsimError(
            f"needs at least one engine kind (leave engines out for the op's default, {list(spec.default_engines)})",
            key=f"task {name!r}.engines",
        )
    if dtype not in DTYPE_BYTES:
        raise AccelsimError(f"unknown dtype {dtype!r}; allowed: {', '.join(DTYPE_BYTES)}", key=f"task {name!r}.dtype")
    dr, dw = default_bytes(op, shape, DTYPE_BYTES[dtype])
    given = {"flops": flops, "bytes_read": bytes_read, "bytes_written": bytes_written}
    counts = {"flops": default_flops(op, shape), "bytes_read": dr, "bytes_written": dw}
    for what, n in given.items():
        counts[what] = counts[what] if n is None else int(n)
        if not 0 <= counts[what] <= MAX_COUNT:
            origin, key = ("as given", what) if n is not None else (f"from shape {_shown(shape)}", "shape")
            raise AccelsimError(
                f"{what} ({origin}) is {counts[what]:.3g}; it must be from 0 to 2^62 ({MAX_COUNT:.3g})",
                key=f"task {name!r}.{key}",
            )
    return Task(
        name=name,
        op=op,
        shape=shape,
        dtype=dtype,
        flops=counts["flops"],
        bytes_read=counts["bytes_read"],
        bytes_written=counts["bytes_written"],
        engines=spec.default_engines if engines is None else tuple(engines),
        deps=tuple(deps),
        group=group,
    )


def _shown(shape: tuple[int, ...]) -> str:
    """A shape for a message, cut short when long."""
    return str(list(shape)) if len(shape) <= 8 else f"[{', '.join(map(str, shape[:8]))}, ...] ({len(shape)} dims)"


@dataclass(frozen=True)
class CompiledFor:
    """What marks a graph as the chip's compiler's output: for which chip (its name, for messages, and the hash of
    its profile's content, Chip.fingerprint, which decides reuse), the graph it was compiled from (compiled again
    for another chip, not cut a second time) and what the compiler warned of."""

    chip: str
    fingerprint: str
    source: TaskGraph
    warnings: tuple[str, ...] = ()


@dataclass
class TaskGraph:
    """A validated DAG of tasks, in the order given (the program order a naive compiler issues in) where that order
    puts every task after its dependencies, else sorted topologically keeping the given order wherever the
    dependencies allow: the order of a file's tasks is not a contract, and every pass after this relies on it."""

    tasks: list[Task]
    name: str = "graph"
    source: str = "<python>"
    #: Free-form figures about the graph (a lowered workload's summary: accelsim.workload.WorkloadSummary).
    meta: dict[str, object] = field(default_factory=dict)
    #: Set by the chip's compiler on the graph it makes; None for a graph it did not make.
    compiled: CompiledFor | None = None

    def __post_init__(self) -> None:
        self.validate()
        order = self.topo_order
        if order != list(range(len(self.tasks))):
            self.tasks = [self.tasks[i] for i in order]
            for cached in ("index", "preds", "succs", "topo_order"):
                self.__dict__.pop(cached, None)

    def __len__(self) -> int:
        return len(self.tasks)

    @cached_property
    def index(self) -> dict[str, int]:
        return {t.name: i for i, t in enumerate(self.tasks)}

    @cached_property
    def preds(self) -> list[tuple[int, ...]]:
        index = self.index
        return [tuple(index[d] for d in t.deps) for t in self.tasks]

    @cached_property
    def succs(self) -> list[list[int]]:
        out: list[list[int]] = [[] for _ in self.tasks]
        for i, ps in enumerate(self.preds):
            for p in ps:
                out[p].append(i)
        return out

    @cached_property
    def topo_order(self) -> list[int]:
        """A topological order that keeps the given order wherever dependencies allow (Kahn, smallest first)."""
        if all(p < i for i, ps in enumerate(self.preds) for p in ps):
            return list(range(len(self.tasks)))  # already in order (the lowering emits graphs this way)
        indeg = [len(p) for p in self.preds]
        ready = [i for i, d in enumerate(indeg) if d == 0]
        heapq.heapify(ready)
        order: list[int] = []
        succs = self.succs
        while ready:
            i = heapq.heappop(ready)
            order.append(i)
            for s in succs[i]:
                indeg[s] -= 1
                if indeg[s] == 0:
                    heapq.heappush(ready, s)
        return order

    def validate(self) -> None:
        """Duplicate names, dangling dependencies, unknown ops or engine kinds, cycles, and FLOPs or bytes that add
        up past what 64-bit counts hold (accelsim.limits.MAX_COUNT: the graph's totals here, each task's in
        make_task) are errors."""
        for what, total in (("FLOPs", sum(t.flops for t in self.tasks)), ("bytes", sum(t.bytes for t in self.tasks))):
            if total > MAX_COUNT:
                raise AccelsimError(
                    f"the tasks' {what} add up to {total:.3g}; at most 2^62 ({MAX_COUNT:.3g}) can be "
                    "counted: make the shapes smaller",
                    source=self.source,
                    key="tasks",
                )
        seen: dict[str, int] = {}
        for i, t in enumerate(self.tasks):
            if seen.setdefault(t.name, i) != i:
                raise AccelsimError(
                    f"duplicate task name {t.name!r} (tasks {seen[t.name]} and {i})", source=self.source
                )
        for op, engines in {(t.op, t.engines) for t in self.tasks}:  # each distinct combination once
            t = next(t for t in self.tasks if t.op == op and t.engines == engines)
            if op not in OPS:
                raise AccelsimError(
                    f"unknown op {op!r}; known: {', '.join(sorted(OPS))}", source=self.source, key=f"task {t.name!r}.op"
                )
            if not engines:
                raise AccelsimError(
                    "needs at least one engine kind", source=self.source, key=f"task {t.name!r}.engines"
                )
            for kind in engines:
                if kind not in ENGINE_KINDS:
                    raise AccelsimError(
                        f"unknown engine kind {kind!r}; allowed: {', '.join(ENGINE_KINDS)}",
                        source=self.source,
                        key=f"task {t.name!r}.engines",
                    )
        for t in self.tasks:
            for d in t.deps:
                if d not in seen:
                    raise AccelsimError(
                        f"depends on {d!r}, which is not a task in the graph",
                        source=self.source,
                        key=f"task {t.name!r}.deps",
                    )
        self.__dict__.update(index=seen)
        if len(self.topo_order) != len(self.tasks):
            done = set(self.topo_order)
            stuck = [self.tasks[i].name for i in range(len(self.tasks)) if i not in done][:5]
            raise AccelsimError(
                f"the dependencies form a cycle through {', '.join(map(repr, stuck))}",
                source=self.source,
                key=f"task {stuck[0]!r}.deps",
            )

    @property
    def total_flops(self) -> int:
        return sum(t.flops for t in self.tasks)

    @property
    def total_bytes(self) -> int:
        return sum(t.bytes for t in self.tasks)


# ---- the file format -------------------------------------------------------------------------------------------


@pydantic_dataclass(config=STRICT)
class TaskEntry:
    """One ``[[tasks]]`` table in a graph file. FLOPs, bytes and engines default from the op."""

    name: str
    op: str
    shape: list[PosInt]
    dtype: Dtype = "bf16"
    flops: NonNegInt | None = None
    bytes_read: NonNegInt | None = None
    bytes_written: NonNegInt | None = None
    engines: list[str] | None = None
    deps: list[str] = field(default_factory=list)
    group: str = ""


@pydantic_dataclass(config=STRICT)
class GraphFile:
    tasks: list[TaskEntry]
    name: str = "graph"


def graph_from_dict(data: dict, source: str = "<dict>") -> TaskGraph:
    spec = build(GraphFile, data, source)
    if not spec.tasks:
        raise AccelsimError("a graph needs at least one task", source=source, key="tasks")
    tasks = []
    for i, e in enumerate(spec.tasks):
        try:
            tasks.append(
                make_task(
                    e.name,
                    e.op,
                    e.shape,
                    dtype=e.dtype,
                    flops=e.flops,
                    bytes_read=e.bytes_read,
                    bytes_written=e.bytes_written,
                    engines=e.engines,
                    deps=e.deps,
                    group=e.group,
                )
            )
        except AccelsimError as exc:
            raise AccelsimError(exc.detail, source=source, key=f"tasks[{i}] ({exc.key})") from None
    return TaskGraph(tasks, name=spec.name, source=source)


def load_graph(path: str | Path) -> TaskGraph:
    """Read a hand-written task graph (TOML, a ``[[tasks]]`` table per task)."""
    p = Path(path)
    return graph_from_dict(read_toml(p), str(p))


def graph_to_dict(graph: TaskGraph) -> dict[str, object]:
    """The inverse of graph_from_dict, for writing a graph back to a file."""
    return {
        "name": graph.name,
        "tasks": [
            {
                "name": t.name,
                "op": t.op,
                "shape": list(t.shape),
                "dtype": t.dtype,
                "flops": t.flops,
                "bytes_read": t.bytes_read,
                "bytes_written": t.bytes_written,
                "engines": list(t.engines),
                "deps": list(t.deps),
                "group": t.group,
            }
            for t in graph.tasks
        ],
    }
