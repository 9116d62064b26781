"""The memory model: HBM bandwidth shared by every task that is streaming at the same time.

Processor sharing: with n streams active each gets B/n bytes per cycle, so two memory-bound tasks at once both
take longer than either alone. It is tracked with a *virtual clock* V (bytes served to each active stream so
far): a stream of b bytes that starts at V0 ends when V reaches V0 + b, so arrivals and departures cost O(log n)
and only the earliest end needs a SimPy event. Ends are rounded up to whole cycles.
"""

from __future__ import annotations

import heapq
import math
from array import array
from collections.abc import Callable
from typing import cast

import simpy

#: A stream whose remaining time is below this many cycles counts as finished (float round-off guard).
_EPS = 1e-6


class SharedBandwidth:
    """A bandwidth pool on a SimPy clock; ``on_done(token)`` is called when a stream's last byte has moved."""

    def __init__(self, env: simpy.Environment, bytes_per_cycle: float, on_done: Callable[[int], None]) -> None:
        self.env = env
        self.rate = float(bytes_per_cycle)
        self.on_done = on_done
        self.virtual = 0.0
        self.last = 0
        self.streams: list[tuple[float, int, int]] = []  # (end tag, seq, token)
        self.seq = 0
        self.pending: list[int] = []  # cycles at which wake-up events are scheduled
        #: Changes of the number of active streams, for counters and plots: parallel arrays (cycle, streams).
        self.change_cycles = array("q")
        self.change_streams = array("l")

    @property
    def active(self) -> int:
        return len(self.streams)

    def add(self, token: int, nbytes: int) -> None:
        """Start streaming ``nbytes`` for ``token`` now."""
        now = cast(int, self.env.now)  # whole cycles: every delay the simulation schedules is an int
        self._advance(now)
        heapq.heappush(self.streams, (self.virtual + nbytes, self.seq, token))
        self.seq += 1
        self._record(now)
        self._reschedule(now)

    def _advance(self, now: int) -> None:
        n = len(self.streams)
        if n:
            self.virtual += (now - self.last) * self.rate / n
        self.last = now

    def _record(self, now: int) -> None:
        cycles, streams = self.change_cycles, self.change_streams
        if cycles and cycles[-1] == now:
            streams[-1] = len(self.streams)
        else:
            cycles.append(now)
            streams.append(len(self.streams))

    def _reschedule(self, now: int) -> None:
        """Make sure a wake-up is pending no later than the earliest stream end.

        A new stream usually pushes every end later, so an already pending earlier wake-up is kept: it finds
        nothing finished and reschedules. That costs fewer SimPy events than cancelling and replacing it.
        """
        if not self.streams:
            return
        remaining = (self.streams[0][0] - self.virtual) * len(self.streams) / self.rate
        at = now + max(0, math.ceil(remaining - _EPS))
        pending = self.pending
        if pending and pending[0] <= at:
            return
        heapq.heappush(pending, at)
        self.env.timeout(at - now).callbacks.append(self._wake)

    def _wake(self, _event: object) -> None:
        now = cast(int, self.env.now)  # whole cycles: every delay the simulation schedules is an int
        heapq.heappop(self.pending)
        self._advance(now)
        streams, finished = self.streams, []
        while streams and (streams[0][0] - self.virtual) * len(streams) / self.rate <= _EPS:
            finished.append(heapq.heappop(streams)[2])
        if finished:
            self._record(now)
            for token in finished:
                self.on_done(token)
        self._reschedule(now)
