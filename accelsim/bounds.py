"""Lower bounds on the latency of any schedule, to measure how far a scheduler is from the best possible.

- critical path: the longest dependency chain with every task on its fastest allowed engine, running alone;
- area: the LP  min T  s.t.  sum_t x_tg p_tg <= n_g T  for each engine group g,  sum_g x_tg = 1,  x >= 0
  (work may be split fractionally over groups: a relaxation, hence a bound);
- memory: every byte that must go through HBM (all but what the compiler planned on chip), as costed at its full
  bandwidth.

Every bound uses uncontended durations, which the simulation never beats, so each is a valid bound on the
simulated latency (up to one cycle of rounding in the memory bound).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .chip import Chip
from .costs import CostTable
from .graph import TaskGraph


@dataclass(frozen=True)
class LowerBound:
    cycles: int
    critical_path: int
    area: int
    memory: int

    def to_dict(self) -> dict[str, int]:
        return {"cycles": self.cycles, "critical_path": self.critical_path, "area": self.area, "memory": self.memory}


def critical_path(graph: TaskGraph, costs: CostTable) -> int:
    fastest = costs.fastest().tolist()
    finish = [0] * len(graph)
    preds = graph.preds
    for i in graph.topo_order:
        finish[i] = max((finish[p] for p in preds[i]), default=0) + fastest[i]
    return max(finish, default=0)


def area_bound(chip: Chip, costs: CostTable) -> int:
    """The LP above, with identical tasks (same cost row) merged into one class to keep it small."""
    est = costs.estimate
    if not len(est):
        return 0
    # scipy is imported here, not at the top: it was half of `import accelsim.cli`, which most commands never need
    from scipy.optimize import linprog

    rows, counts = np.unique(est, axis=0, return_counts=True)
    n_groups = est.shape[1]
    sizes = np.array([g.count for g in chip.groups], dtype=float)
    pairs = [(j, g) for j in range(len(rows)) for g in range(n_groups) if rows[j, g] >= 0]
    nv = len(pairs) + 1  # y_(class, group) and T
    c = np.zeros(nv)
    c[-1] = 1.0
    a_ub = np.zeros((n_groups, nv))
    a_eq = np.zeros((len(rows), nv))
    for v, (j, g) in enumerate(pairs):
        a_ub[g, v] = rows[j, g]
        a_eq[j, v] = 1.0
    a_ub[:, -1] = -sizes
    res = linprog(
        c, A_ub=a_ub, b_ub=np.zeros(n_groups), A_eq=a_eq, b_eq=counts.astype(float), bounds=(0, None), method="highs"
    )
    if not res.success:  # pragma: no cover - the LP is always feasible and bounded
        raise RuntimeError(f"area-bound LP failed: {res.message}")
    # The LP optimum is exact up to solver tolerance; shave a hair so rounding never lifts it above the truth.
    return int(np.floor(res.fun * (1 - 1e-9)))


def lower_bound(graph: TaskGraph, chip: Chip, costs: CostTable | None = None) -> LowerBound:
    costs = costs if costs is not None else CostTable.build(graph, chip)
    cp = critical_path(graph, costs)
    area = area_bound(chip, costs)
    memory = int(int(costs.stream.sum()) // chip.hbm_bytes_per_cycle)
    return LowerBound(max(cp, area, memory), cp, area, memory)
