"""heft: Heterogeneous Earliest Finish Time (Topcuoglu, Hariri and Wu, 2002)."""

from __future__ import annotations

import numpy as np

from ..chip import Chip
from ..costs import CostTable
from ..graph import TaskGraph
from ..planning import place_earliest_finish, priority_order, upward_rank
from ..registry import Scheduler, register
from ..schedule import Schedule


@register
class Heft(Scheduler):
    """HEFT (Topcuoglu, Hariri and Wu, 2002): tasks by decreasing upward rank (mean cost over the engines that may
    run them; no communication cost, as all engines share HBM), each placed on the engine that finishes it
    earliest, inserted into an idle gap when one is long enough. O(tasks x engines x gaps): for graphs of
    hundreds of thousands of tasks, prefer balanced."""

    name = "heft"
    description = "upward rank, earliest finish time with insertion"

    def schedule(self, graph: TaskGraph, chip: Chip, costs: CostTable) -> Schedule:
        est = costs.estimate
        allowed = est >= 0
        counts = np.array([g.count for g in chip.groups], dtype=float)
        weights = np.where(allowed, counts, 0.0)
        mean = (np.where(allowed, est, 0) * weights).sum(axis=1) / weights.sum(axis=1)
        order = priority_order(graph, upward_rank(graph, mean.tolist()))
        return place_earliest_finish(
            graph, chip, costs, order, lambda i: np.flatnonzero(allowed[i]).tolist(), self.name
        )
