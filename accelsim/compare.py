"""Comparing schedulers on one chip and graph: latency, speedup, per-kind utilization and idle time, and the gap
to the lower bound."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .bounds import LowerBound, lower_bound
from .chip import Chip
from .graph import TaskGraph
from .registry import Scheduler
from .results import Results
from .runner import prepare


@dataclass(frozen=True)
class ComparisonRow:
    """One scheduler's line of a comparison; ``to_dict`` gives the dict ``compare --json`` prints for it."""

    scheduler: str
    latency_cycles: int
    latency_us: float  # rounded to 4 decimals, as printed
    speedup: float  # over the baseline (see ``Comparison.baseline``)
    utilization: dict[str, float]  # per engine kind, rounded to 4 decimals
    idle_cycles: dict[str, int]  # idle engine-cycles per engine kind
    gap_to_bound: float  # latency over the lower bound, minus 1
    split: Mapping[str, object] | None = None  # the balanced scheduler's note on the vector/matrix split

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "scheduler": self.scheduler,
            "latency_cycles": self.latency_cycles,
            "latency_us": self.latency_us,
            "speedup": self.speedup,
            "utilization": self.utilization,
            "idle_cycles": self.idle_cycles,
            "gap_to_bound": self.gap_to_bound,
        }
        if self.split is not None:
            out["split"] = self.split
        return out


@dataclass
class Comparison:
    chip: Chip
    graph: TaskGraph
    results: list[Results]
    bound: LowerBound

    def baseline(self) -> Results:
        """Speedups are over naive when it was run, else over the first scheduler."""
        return next((r for r in self.results if r.scheduler == "naive"), self.results[0])

    def rows(self) -> list[ComparisonRow]:
        base = self.baseline().latency_cycles
        out = []
        for r in self.results:
            split = r.notes.get("split")
            out.append(
                ComparisonRow(
                    scheduler=r.scheduler,
                    latency_cycles=r.latency_cycles,
                    latency_us=round(r.latency_us, 4),
                    speedup=round(base / r.latency_cycles, 4) if r.latency_cycles else 1.0,
                    utilization={k: round(v, 4) for k, v in r.utilization().items()},
                    idle_cycles=r.idle_cycles(),
                    gap_to_bound=round(r.latency_cycles / self.bound.cycles - 1, 4) if self.bound.cycles else 0.0,
                    split=split if isinstance(split, Mapping) else None,
                )
            )
        return out

    def to_dict(self) -> dict[str, object]:
        return {
            "chip": self.chip.name,
            "workload": self.graph.name,
            "tasks": len(self.graph),
            "speedup_over": self.baseline().scheduler,
            "results": [r.to_dict() for r in self.rows()],
            "lower_bound_cycles": self.bound.cycles,
            "lower_bound": self.bound.to_dict(),
        }


def compare(chip: Chip, graph: TaskGraph, schedulers: Sequence[str | Scheduler]) -> Comparison:
    """Compile ``graph`` for ``chip``, then schedule and simulate it with each scheduler; the compiled graph, the
    cost table and the bound are computed once."""
    prepared = prepare(chip, graph)
    results = [prepared.simulate(name) for name in schedulers]
    return Comparison(chip, prepared.graph, results, lower_bound(prepared.graph, chip, prepared.costs))
