"""Invariants every simulated schedule satisfies, as one assertion helper for property tests (yours too)."""

from __future__ import annotations

import numpy as np

from .results import Results


def assert_valid(results: Results) -> None:
    """Each task ran once, on an engine kind it allows, after its dependencies ended; no engine, and no two
    engines sharing a unit, ran two tasks at once. Raises AssertionError naming the first violation."""
    graph, chip = results.graph, results.chip
    assert len(results.start) == len(graph), "a task is missing from the results"
    for i, t in enumerate(graph.tasks):
        kind = chip.groups[chip.instance_group[int(results.engine[i])]].kind
        assert kind in t.engines, f"task {t.name!r} ran on a {kind} engine; it allows {list(t.engines)}"
        assert 0 <= results.start[i] <= results.end[i], f"task {t.name!r} has start > end"
        for p in graph.preds[i]:
            assert results.start[i] >= results.end[p], (
                f"task {t.name!r} starts at {results.start[i]} before its dependency {graph.tasks[p].name!r} "
                f"ends at {results.end[p]}"
            )
    for members in chip.units.members:  # a unit (an engine, or engines sharing one: accelsim.units) runs one task
        names = "/".join(chip.instance_names[e] for e in members)
        iv = np.concatenate([results.busy_intervals(e) for e in members])
        iv = iv[np.lexsort((iv[:, 1], iv[:, 0]))]  # by start, then end: an empty task first
        overlap = (iv[1:, 0] < iv[:-1, 1]).nonzero()[0]
        assert not len(overlap), f"engine {names} runs two tasks at once at cycle {iv[overlap[0] + 1, 0]}"
