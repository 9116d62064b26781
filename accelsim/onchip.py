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

from .graph import TaskGraph
from .ops import OPS


@dataclass(frozen=True)
class OnChipPlan:
    """Per task: ``keep`` the bytes of its output planned on chip (0: none); ``inputs`` the (producer, bytes) it
    reads from producers whose output is planned on chip; ``hbm`` and ``sram`` the bytes it moves through each
    memory when every planned tensor does stay on chip; ``spill_writes`` whether a spilled output is written."""

    keep: list[int]
    inputs: list[list[tuple[int, int]]]
    hbm: list[int]
    sram: list[int]
    spill_writes: list[bool]
    consumers: list[int]

    @classmethod
    def of(cls, graph: TaskGraph) -> OnChipPlan:
        tasks = graph.tasks
        keep = [t.bytes_written if t.on_chip else 0 for t in tasks]
        inputs: list[list[tuple[int, int]]] = [[] for _ in tasks]
        consumers = [0] * len(tasks)
        for i, t in enumerate(tasks):
            for p, b in zip(graph.preds[i], t.dep_bytes, strict=False):
                if b and keep[p]:
                    inputs[i].append((p, b))
                    consumers[p] += 1
        # An output kept on chip that nobody reads from there is written out after all.
        keep = [k if consumers[i] else 0 for i, k in enumerate(keep)]
        sram = [keep[i] + sum(b for _, b in inputs[i]) for i in range(len(tasks))]
        hbm = [t.bytes - sram[i] for i, t in enumerate(tasks)]
        spill_writes = [not OPS[t.op].copies_memory for t in tasks]
        return cls(keep, inputs, hbm, sram, spill_writes, consumers)

    @property
    def any(self) -> bool:
        """Whether anything is planned on chip at all (else the simulation can skip the bookkeeping)."""
        return any(self.keep)
