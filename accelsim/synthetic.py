"""Random task graphs for benchmarks and stress tests (property tests use accelsim.strategies instead)."""

from __future__ import annotations

import numpy as np

from .graph import Task, TaskGraph, make_task

_TEMPLATES = (
    ("gemm", (256, 256, 256), ("matrix",)),
    ("gemm", (512, 128, 512), ("matrix",)),
    ("outer_acc", (4, 64, 64, 64), ("matrix", "vector")),
    ("softmax", (64, 512), ("vector",)),
    ("add", (256, 256), ("vector",)),
    ("gelu", (128, 512), ("vector",)),
    ("layernorm", (64, 768), ("vector",)),
    ("dma", (131072,), ("dma",)),
)


def random_graph(n: int, seed: int = 0, max_deps: int = 3, window: int = 64) -> TaskGraph:
    """``n`` tasks of mixed ops; each depends on up to ``max_deps`` of the ``window`` tasks before it."""
    rng = np.random.default_rng(seed)
    kinds = rng.integers(0, len(_TEMPLATES), size=n)
    ndeps = rng.integers(0, max_deps + 1, size=n)
    protos = [make_task("proto", op, shape, engines=eng) for op, shape, eng in _TEMPLATES]
    tasks: list[Task] = []
    for i in range(n):
        p = protos[kinds[i]]
        k = min(int(ndeps[i]), i)
        deps: tuple[str, ...] = ()
        if k:
            lo = max(0, i - window)
            picks = np.unique(rng.integers(lo, i, size=k))
            deps = tuple(f"t{j}" for j in picks.tolist())
        tasks.append(Task(f"t{i}", p.op, p.shape, p.dtype, p.flops, p.bytes_read, p.bytes_written, p.engines, deps))
    return TaskGraph(tasks, name=f"random-{n}-seed{seed}", source="<random>")
