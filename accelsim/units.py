"""Engine units: what an engine instance occupies while it runs a task, and the one rule about them.

A unit runs one task at a time. Engines of groups that name the same ``shared_unit`` pair up by instance number
(a GPU's tensor core k with its CUDA core k: one set of SMs) and occupy one unit; any other engine is a unit of
its own. The simulation, the planners, the exhaustive optimum and the schedule checks all ask this object, so the
rule is written once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class EngineUnits:
    """``unit_of[e]``: the unit engine instance e occupies; ``members[u]``: the engines occupying unit u."""

    unit_of: tuple[int, ...]
    members: tuple[tuple[int, ...], ...]

    @classmethod
    def from_groups(cls, groups: Iterable[tuple[int, str | None]]) -> EngineUnits:
        """Units for engine groups given as (count, shared_unit or None), instances numbered in that order."""
        unit_of: list[int] = []
        shared: dict[tuple[str, int], int] = {}
        members: list[list[int]] = []
        for count, shared_unit in groups:
            for k in range(count):
                if shared_unit is not None and (shared_unit, k) in shared:
                    unit = shared[(shared_unit, k)]
                else:
                    unit = len(members)
                    members.append([])
                    if shared_unit is not None:
                        shared[(shared_unit, k)] = unit
                members[unit].append(len(unit_of))
                unit_of.append(unit)
        return cls(tuple(unit_of), tuple(tuple(m) for m in members))

    def __len__(self) -> int:
        return len(self.members)
