"""The exact minimum latency of a tiny task graph, by exhaustive search: a yardstick for schedulers.

Searches every semi-active schedule (each task starts as soon as its dependencies and its engine, or the unit
its engine shares, allow) in the uncontended cost model (estimates, no HBM sharing): listing tasks by start time,
each choice is a ready task and an engine instance. Choices are kept in (start, task) order so each schedule is
met once, interchangeable idle engines are tried once, and branches that cannot beat the best found are cut.
Exponential: meant for graphs of about eight tasks.
"""

from __future__ import annotations

from .chip import Chip
from .costs import CostTable
from .graph import TaskGraph


def optimal_latency(graph: TaskGraph, chip: Chip, costs: CostTable | None = None, limit: int = 10) -> int:
    """Minimum makespan in cycles over all schedules, with uncontended task durations."""
    if len(graph) > limit:
        raise ValueError(f"exhaustive search is for graphs of at most {limit} tasks, not {len(graph)}")
    costs = costs if costs is not None else CostTable.build(graph, chip)
    n = len(graph)
    group_of = chip.instance_group
    n_eng = len(group_of)
    dur = [[int(costs.estimate[i, group_of[e]]) for e in range(n_eng)] for i in range(n)]
    preds = graph.preds
    fastest = costs.fastest().tolist()
    tail = [0] * n  # longest path from i to an exit, fastest engines
    for i in reversed(graph.topo_order):
        tail[i] = fastest[i] + max((tail[s] for s in graph.succs[i]), default=0)
    best = [sum(max(d for d in row if d >= 0) for row in dur)]  # running everything in a row is feasible
    finish = [0] * n
    unit_of = chip.units.unit_of  # engines sharing a unit never run at once
    free = [0] * len(chip.units)
    # Engines are interchangeable when they are of one group and share their unit with engines of the same groups.
    kind_of = [
        tuple(sorted(group_of[x] for x in chip.units.members[unit_of[e]])) + (group_of[e],) for e in range(n_eng)
    ]

    def search(done: int, last_start: int, last_task: int, span: int) -> None:
        if done == (1 << n) - 1:
            best[0] = min(best[0], span)
            return
        bound = span
        for i in range(n):
            if not done >> i & 1:
                ready = max((finish[p] for p in preds[i] if done >> p & 1), default=0)
                bound = max(bound, ready + tail[i])
        if bound >= best[0]:
            return
        for i in range(n):
            if done >> i & 1 or any(not done >> p & 1 for p in preds[i]):
                continue
            ready = max((finish[p] for p in preds[i]), default=0)
            seen: set[tuple[tuple[int, ...], int]] = set()
            for e in range(n_eng):
                d, r = dur[i][e], unit_of[e]
                if d < 0 or (kind_of[e], free[r]) in seen:
                    continue
                seen.add((kind_of[e], free[r]))
                s = max(ready, free[r])
                if s < last_start or (s == last_start and i < last_task):
                    continue  # keep the listing in (start, task) order
                old = free[r]
                finish[i] = free[r] = s + d
                search(done | 1 << i, s, i, max(span, s + d))
                free[r] = old

    search(0, 0, -1, 0)
    return best[0]
