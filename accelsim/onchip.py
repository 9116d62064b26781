"""The on-chip memory model: which bytes a task moves through SRAM instead of HBM, and the SRAM they occupy.

The chip's compiler marks outputs to keep on chip (``Task.on_chip``) and says how many bytes each task reads from
each dependency (``Task.dep_bytes``). At run time a producer reserves SRAM for its output when it starts; if the
room is not there (a schedule the compiler did not foresee), the output spills: the producer writes it to HBM and
its consumers read it from there, as if it had never been planned on chip (a DMA load, whose output copies memory,
writes nothing back). The reservation is freed when the last consumer that reads it ends. So SRAM in use never
exceeds the capacity, whatever the schedule, and every byte is moved through exactly one of the two memories.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .graph import TaskGraph
from .ops import OPS


@dataclass(frozen=True)
class OnChipPlan:
    """Per task (arrays over the graph's tasks): ``keep`` the bytes of its output planned on chip (0: none);
    ``hbm`` and ``sram`` the bytes it moves through each memory when every planned tensor does stay on chip;
    ``consumers`` how many tasks read its kept output; ``spill_writes`` whether a spilled output is written back.
    ``inputs[i]``: the (producer, bytes) task i reads from producers whose output is planned on chip (only tasks
    that have some)."""

    keep: np.ndarray
    hbm: np.ndarray
    sram: np.ndarray
    consumers: np.ndarray
    spill_writes: np.ndarray
    inputs: dict[int, list[tuple[int, int]]]

    @classmethod
    def of(cls, graph: TaskGraph) -> OnChipPlan:
        tasks = graph.tasks
        n = len(tasks)
        total = np.fromiter((t.bytes for t in tasks), dtype=np.int64, count=n)
        kept = [i for i, t in enumerate(tasks) if t.on_chip]
        keep = np.zeros(n, dtype=np.int64)
        sram = np.zeros(n, dtype=np.int64)
        consumers = np.zeros(n, dtype=np.int64)
        inputs: dict[int, list[tuple[int, int]]] = {}
        if kept:
            planned = {i: tasks[i].bytes_written for i in kept}
            for i, t in enumerate(tasks):
                for p, b in zip(graph.preds[i], t.dep_bytes, strict=False):
                    if b and p in planned:
                        inputs.setdefault(i, []).append((p, b))
                        consumers[p] += 1
                        sram[i] += b
            for i in kept:  # an output kept on chip that nobody reads from there is written out after all
                if consumers[i]:
                    keep[i] = planned[i]
                    sram[i] += planned[i]
        spill_writes = np.fromiter((not OPS[t.op].copies_memory for t in tasks), dtype=bool, count=n)
        return cls(keep, total - sram, sram, consumers, spill_writes, inputs)

    @property
    def any(self) -> bool:
        """Whether anything is planned on chip at all (else the simulation can skip the bookkeeping)."""
        return bool(self.keep.any())


class SramPool:
    """SRAM at run time: a producer reserves room for its kept output when it starts, or spills it; the room is
    freed when the last task reading it ends. ``kept[i]``: task i's output did stay on chip; ``sram_bytes[i]``:
    the bytes task i moved through SRAM (all 0 for a task that has not started)."""

    def __init__(self, plan: OnChipPlan, capacity: int) -> None:
        self.plan = plan
        self.free = capacity
        n = len(plan.keep)
        self.kept = np.zeros(n, dtype=bool)
        self.sram_bytes = np.zeros(n, dtype=np.int64)
        self.readers_left = plan.consumers.copy()

    def place(self, i: int) -> int:
        """Task i starts: reserve room for its kept output if there is any. Returns the bytes it must move
        through HBM beyond its plan: a spilled output (unless it copies memory) and inputs that spilled."""
        plan = self.plan
        spilled = 0
        k = int(plan.keep[i])
        if k:
            if self.free >= k:
                self.free -= k
                self.kept[i] = True
            elif plan.spill_writes[i]:
                spilled += k
        on_chip = k if self.kept[i] else 0
        for p, nb in plan.inputs.get(i, ()):
            if self.kept[p]:
                on_chip += nb
            else:
                spilled += nb
        self.sram_bytes[i] = on_chip
        return spilled

    def release(self, i: int) -> None:
        """Task i has ended: a kept output it was the last to read is freed."""
        for p, _ in self.plan.inputs.get(i, ()):
            self.readers_left[p] -= 1
            if not self.readers_left[p] and self.kept[p]:
                self.free += int(self.plan.keep[p])
