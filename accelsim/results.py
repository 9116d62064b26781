"""Results of one simulation: plain arrays and numbers that reports, traces and plots read."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from .chip import Chip
from .graph import TaskGraph


@dataclass(frozen=True)
class EngineStats:
    name: str
    kind: str
    tasks: int
    busy_cycles: int
    idle_cycles: int
    longest_idle_cycles: int
    utilization: float

    def to_dict(self) -> dict[str, object]:
        """The engine's entry under ``engines`` in ``run --json`` (its name is the key)."""
        return {
            "kind": self.kind,
            "tasks": self.tasks,
            "busy_cycles": self.busy_cycles,
            "idle_cycles": self.idle_cycles,
            "longest_idle_cycles": self.longest_idle_cycles,
            "utilization": round(self.utilization, 4),
        }


@dataclass(frozen=True)
class RunSummary:
    """The headline figures of one simulation; ``to_dict`` gives the top of ``run --json``."""

    chip: str
    graph: str
    scheduler: str
    tasks: int
    latency_cycles: int
    latency_us: float  # rounded to 4 decimals
    utilization: dict[str, float]  # per engine kind, rounded to 4 decimals
    idle_cycles: dict[str, int]  # idle engine-cycles per engine kind
    flops: int
    bytes_moved: int  # through HBM and SRAM, as simulated (spills included)
    hbm_bytes_moved: int  # through HBM alone, as simulated
    bytes_planned: int  # what the graph's tasks read and write, before the simulation
    notes: dict[str, object] = field(default_factory=dict)  # the scheduler's notes; left out of JSON when empty

    def to_dict(self) -> dict[str, object]:
        return {
            "chip": self.chip,
            "graph": self.graph,
            "scheduler": self.scheduler,
            "tasks": self.tasks,
            "latency_cycles": self.latency_cycles,
            "latency_us": self.latency_us,
            "utilization": self.utilization,
            "idle_cycles": self.idle_cycles,
            "flops": self.flops,
            "bytes_moved": self.bytes_moved,
            "hbm_bytes_moved": self.hbm_bytes_moved,
            "bytes_planned": self.bytes_planned,
            **({"notes": self.notes} if self.notes else {}),
        }


@dataclass
class Results:
    """When every task ran on which engine; per-engine busy and idle time; latency; bytes moved."""

    graph: TaskGraph
    chip: Chip
    scheduler: str
    engine: np.ndarray  # engine instance per task
    start: np.ndarray  # start cycle per task
    end: np.ndarray  # end cycle per task
    hbm_change_cycles: np.ndarray  # cycles at which the number of HBM streams changed
    hbm_change_streams: np.ndarray  # streams active from that cycle on
    notes: dict[str, object] = field(default_factory=dict)
    #: Per task: bytes it moved to or from HBM and SRAM, and whether its output was kept on chip (accelsim.onchip).
    hbm_bytes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    sram_bytes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    kept_on_chip: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))

    @property
    def latency_cycles(self) -> int:
        return int(self.end.max()) if len(self.end) else 0

    @property
    def latency_us(self) -> float:
        return self.chip.cycles_to_us(self.latency_cycles)

    @property
    def bytes_planned(self) -> int:
        """What the graph's tasks say they read and write: the figure before the simulation, as compiled."""
        return self.graph.total_bytes

    @cached_property
    def hbm_per_task(self) -> list[int]:
        """Bytes each task moved through HBM in the simulation, spills included (its planned bytes where the
        Results were built by hand without a record)."""
        if len(self.hbm_bytes) == len(self.graph):
            return [int(b) for b in self.hbm_bytes.tolist()]
        return [t.bytes for t in self.graph.tasks]

    @cached_property
    def sram_per_task(self) -> list[int]:
        """Bytes each task moved through SRAM in the simulation (none where the Results have no record)."""
        n = len(self.graph)
        return [int(b) for b in self.sram_bytes.tolist()] if len(self.sram_bytes) == n else [0] * n

    @property
    def hbm_bytes_moved(self) -> int:
        """Bytes moved through HBM as simulated: an output that spilled from SRAM counts its write and reads."""
        return sum(self.hbm_per_task)

    @property
    def bytes_moved(self) -> int:
        """Bytes moved through both memories as simulated: the planned bytes, and what spills added."""
        return self.hbm_bytes_moved + sum(self.sram_per_task)

    @cached_property
    def by_engine_order(self) -> np.ndarray:
        """Task indices sorted by (engine, start): each engine's busy intervals in time order."""
        return np.lexsort((self.start, self.engine))

    def busy_intervals(self, engine: int) -> np.ndarray:
        """[start, end) cycle pairs of the tasks engine ``engine`` ran, in time order (shape [k, 2])."""
        idx = self.by_engine_order[self.engine[self.by_engine_order] == engine]
        return np.stack([self.start[idx], self.end[idx]], axis=1)

    @cached_property
    def engines(self) -> list[EngineStats]:
        span = self.latency_cycles
        names = self.chip.instance_names
        kinds = [self.chip.groups[g].kind for g in self.chip.instance_group]
        n_eng = len(names)
        busy = np.bincount(self.engine, weights=self.end - self.start, minlength=n_eng).astype(np.int64)
        count = np.bincount(self.engine, minlength=n_eng)
        longest = np.full(n_eng, span, dtype=np.int64)  # an engine with no task is idle throughout
        order = self.by_engine_order
        eng, s, e = self.engine[order], self.start[order], self.end[order]
        if len(order):
            first = np.ones(len(order), dtype=bool)
            first[1:] = eng[1:] != eng[:-1]
            prev_end = np.where(first, 0, np.concatenate([[0], e[:-1]]))
            gaps = s - prev_end
            last = np.ones(len(order), dtype=bool)
            last[:-1] = eng[:-1] != eng[1:]
            longest = np.zeros(n_eng, dtype=np.int64)
            np.maximum.at(longest, eng, gaps)
            np.maximum.at(longest, eng[last], span - e[last])
            longest[count == 0] = span
        return [
            EngineStats(
                names[k],
                kinds[k],
                int(count[k]),
                int(busy[k]),
                int(span - busy[k]),
                int(longest[k]),
                float(busy[k] / span) if span else 0.0,
            )
            for k in range(n_eng)
        ]

    def utilization(self) -> dict[str, float]:
        """Mean busy fraction of the engines of each kind."""
        out: dict[str, list[float]] = {}
        for st in self.engines:
            out.setdefault(st.kind, []).append(st.utilization)
        return {k: float(np.mean(v)) for k, v in out.items()}

    def idle_cycles(self) -> dict[str, int]:
        """Idle engine-cycles summed over the engines of each kind."""
        out: dict[str, int] = {}
        for st in self.engines:
            out[st.kind] = out.get(st.kind, 0) + st.idle_cycles
        return out

    def summary(self) -> RunSummary:
        return RunSummary(
            chip=self.chip.name,
            graph=self.graph.name,
            scheduler=self.scheduler,
            tasks=len(self.graph),
            latency_cycles=self.latency_cycles,
            latency_us=round(self.latency_us, 4),
            utilization={k: round(v, 4) for k, v in self.utilization().items()},
            idle_cycles=self.idle_cycles(),
            flops=self.graph.total_flops,
            bytes_moved=self.bytes_moved,
            hbm_bytes_moved=self.hbm_bytes_moved,
            bytes_planned=self.bytes_planned,
            notes=self.notes,
        )

    def to_dict(self, tasks: bool = True) -> dict[str, object]:
        """The JSON report: summary, per-engine figures and (optionally) every task's placement and times."""
        out = self.summary().to_dict()
        out["engines"] = {st.name: st.to_dict() for st in self.engines}
        if tasks:
            names = self.chip.instance_names
            n = len(self.graph)
            hbm, sram = self.hbm_per_task, self.sram_per_task
            kept = self.kept_on_chip.tolist() if len(self.kept_on_chip) == n else [False] * n
            out["tasks"] = [
                {
                    "name": t.name,
                    "op": t.op,
                    "engine": names[e],
                    "start_cycle": s,
                    "end_cycle": f,
                    "deps": list(t.deps),
                    "hbm_bytes": h,
                    "sram_bytes": b,
                    "kept_on_chip": k,
                }
                for t, e, s, f, h, b, k in zip(
                    self.graph.tasks,
                    self.engine.tolist(),
                    self.start.tolist(),
                    self.end.tolist(),
                    hbm,
                    sram,
                    kept,
                    strict=True,
                )
            ]
        return out
