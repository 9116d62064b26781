"""The simulation: carry out a schedule on the chip's engines in integer cycles, on a SimPy clock.

Each engine runs its tasks in the scheduler's order, a task starting once its engine is free and its dependencies
have ended. A task computes for ``dispatch + compute`` cycles on its engine while its bytes stream through the
shared HBM (accelsim.memory) from its start; it ends when both are done, plus the chip's launch gap (0 but on
GPUs). Streaming is issued with the task, as the Gaudi graph compiler's DMA prefetch overlaps the engines' work.

Rather than one SimPy process per task, engines are plain state driven by event callbacks on SimPy's event queue:
about one event per task, which is what makes 10^5 tasks per second reachable (benchmarks/sim_throughput.py).
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable
from functools import partial
from typing import cast

import numpy as np
import simpy
from simpy.events import Timeout

from .chip import Chip
from .costs import CostTable, panel_rereads
from .errors import AccelsimError
from .graph import TaskGraph
from .memory import SharedBandwidth
from .onchip import OnChipPlan, SramPool
from .ops import OPS
from .results import Results
from .schedule import Schedule


class GaveUp(Exception):
    """The schedule was still running at the cycle the caller said it no longer cares about."""


#: Called when a collective task starts on a card that hands its collectives to a shared network (explicit
#: simulation of many cards, accelsim.explicit): (task index, call this when it is done).
CollectiveHook = Callable[[int, Callable[[], None]], None]


def simulate(
    graph: TaskGraph,
    chip: Chip,
    schedule: Schedule,
    costs: CostTable | None = None,
    *,
    check: bool = True,
    give_up_after: int | None = None,
) -> Results:
    """Run ``schedule`` and return when every task ran, where, and how busy each engine was. With
    ``give_up_after``, raise GaveUp as soon as the clock passes that cycle with work left (a search that only
    needs to know whether a candidate beats the best so far stops there)."""
    env = simpy.Environment()
    collect = setup(env, graph, chip, schedule, costs, check=check)
    env.run(until=None if give_up_after is None else give_up_after + 1)
    return collect(give_up_after)


def setup(
    env: simpy.Environment,
    graph: TaskGraph,
    chip: Chip,
    schedule: Schedule,
    costs: CostTable | None = None,
    *,
    check: bool = True,
    collectives: CollectiveHook | None = None,
) -> Callable[[int | None], Results]:
    """Put ``schedule``'s engines on ``env`` without running it; returns what collects the Results once ``env``
    has run. Several cards may share one ``env`` (accelsim.explicit): ``collectives`` then carries out each
    network task instead of its costed cycles."""
    costs = costs if costs is not None else CostTable.build(graph, chip)
    if check:
        schedule.validate(graph, chip, costs)
    return ScheduleRun(env, graph, chip, schedule, costs, collectives).collect


class ScheduleRun:
    """One schedule being carried out on ``env``: its state, named, and the event callbacks that move it on.

    A task starts (``start_heads``) when its engine's queue reaches it, its unit is free and its dependencies have
    ended; it then either waits one Timeout (nothing to stream) or streams its bytes through the shared HBM and
    SRAM, each stream calling ``stream_done``; it ends (``finish``) when the last of these is done, which frees its
    unit and may start its successors and the engines sharing the unit. Slots, not a dict: the callbacks run about
    once per task, and attribute lookups on slots keep them as fast as the closure this class replaced.
    """

    __slots__ = (
        "env",
        "graph",
        "chip",
        "schedule",
        "n",
        "handed",
        "collectives",
        "compute",
        "hbm",
        "dispatch",
        "gap",
        "succs",
        "waiting",
        "engine_of",
        "queues",
        "position",
        "unit_of",
        "unit_members",
        "unit_busy",
        "start",
        "end",
        "compute_end",
        "done_count",
        "sram_pool",
        "hbm_bytes",
        "streams_left",
        "memory",
        "sram",
        "on_timeout",
    )

    def __init__(
        self,
        env: simpy.Environment,
        graph: TaskGraph,
        chip: Chip,
        schedule: Schedule,
        costs: CostTable,
        collectives: CollectiveHook | None,
    ) -> None:
        self.env = env
        self.graph = graph
        self.chip = chip
        self.schedule = schedule
        n = self.n = len(graph)
        #: Per task, whether ``collectives`` carries it out (empty when nothing is handed over).
        self.handed = [OPS[t.op].category == "network" for t in graph.tasks] if collectives is not None else []
        self.collectives = collectives
        group_of = chip.instance_group
        # Each task's compute cycles on the group of the engine it was given: one list, looked up per start.
        assigned_group = np.asarray(group_of, dtype=np.int64)[np.asarray(schedule.engine, dtype=np.int64)]
        self.compute: list[int] = costs.compute[np.arange(n), assigned_group].tolist()
        #: HBM bytes as costed at its full rate, if every planned tensor stays on chip
        self.hbm: list[int] = costs.stream.tolist()
        self.dispatch = chip.spec.dispatch_overhead_cycles
        self.gap = chip.spec.launch_gap_cycles
        self.succs = graph.succs
        self.waiting = [len(p) for p in graph.preds]  # dependencies not yet ended, per task
        self.engine_of = schedule.engine
        self.queues = schedule.order
        self.position = [0] * len(group_of)  # per engine, the next task of its queue
        # A unit runs one task at a time; engines that share one (tensor and CUDA cores of one SM) take turns.
        self.unit_of = chip.units.unit_of
        self.unit_members = chip.units.members
        self.unit_busy = [False] * len(self.unit_members)
        self.start = array("q", [-1]) * n
        self.end = array("q", [-1]) * n
        self.compute_end = array("q", [0]) * n  # when a streaming task's own work is done
        self.done_count = 0
        # The on-chip memory (accelsim.onchip): SRAM reserved for kept outputs, and what each task really moved.
        plan = costs.plan if costs.plan is not None else OnChipPlan.of(graph)
        self.sram_pool = SramPool(plan, chip.on_chip_capacity) if plan.any else None
        # What each task really moved: its planned bytes and panel re-reads; spills are added at run time.
        self.hbm_bytes = plan.hbm + np.fromiter((panel_rereads(t, chip) for t in graph.tasks), np.int64, count=n)
        self.streams_left = [0] * n  # per task, its HBM, SRAM and network streams still running
        self.memory = SharedBandwidth(env, chip.hbm_bytes_per_cycle, self.stream_done)
        sram_rate = chip.sram_bytes_per_cycle
        self.sram = (
            SharedBandwidth(env, sram_rate, self.stream_done)
            if self.sram_pool is not None and sram_rate is not None
            else None
        )
        self.on_timeout = self.finish_event  # bound once: a Timeout's callback is appended once per task
        self.start_heads(range(len(group_of)))

    def start_heads(self, engines: Iterable[int]) -> None:
        """Start the task at the head of each engine's queue, in the order given, where the engine's unit is free
        and the task's dependencies have ended (the one rule for when a task starts): its compute, and its bytes
        streamed through HBM and SRAM (or handed to the network)."""
        unit_of, unit_busy, queues, position, waiting = (
            self.unit_of,
            self.unit_busy,
            self.queues,
            self.position,
            self.waiting,
        )
        for e in engines:
            u = unit_of[e]
            if unit_busy[u]:
                continue
            q = queues[e]
            p = position[e]
            if p >= len(q):
                continue
            i = q[p]
            if waiting[i]:
                continue
            unit_busy[u] = True
            position[e] = p + 1
            env = self.env
            now = int(env.now)  # integer delays keep SimPy's clock an int
            self.start[i] = now
            c = self.compute[i]
            b = self.hbm[i]
            s = 0
            sram_pool = self.sram_pool
            if sram_pool is not None:
                spilled = sram_pool.place(i)
                s = int(sram_pool.sram_bytes[i])
                if spilled:
                    self.hbm_bytes[i] += spilled
                    b += self.chip.stream_bytes(spilled, OPS[self.graph.tasks[i].op].strided)
            handed = self.handed
            sram = self.sram
            if handed and handed[i] and self.collectives is not None:
                # the collective is a stream of its own: the task ends once it and its bytes through HBM are done
                self.compute_end[i] = now + self.dispatch
                self.streams_left[i] += 1 + bool(b)
                if b:
                    self.memory.add(i, b)
                self.collectives(i, partial(self.stream_done, i))
            elif b or (s and sram is not None):
                self.compute_end[i] = now + self.dispatch + c
                streams_left = self.streams_left
                if b:
                    streams_left[i] += 1
                    self.memory.add(i, b)
                if s and sram is not None:
                    streams_left[i] += 1
                    sram.add(i, s)
            else:
                Timeout(env, self.dispatch + c + self.gap, i).callbacks.append(self.on_timeout)

    def stream_done(self, i: int) -> None:
        """One of task ``i``'s streams has moved its last byte; the last one ends the task (after its compute)."""
        streams_left = self.streams_left
        streams_left[i] -= 1
        if streams_left[i]:
            return
        wait = max(self.compute_end[i] - self.env.now, 0) + self.gap  # the launch gap follows whichever ends last
        if wait > 0:
            Timeout(self.env, wait, i).callbacks.append(self.on_timeout)
        else:
            self.finish(i)

    def finish_event(self, event: Timeout) -> None:
        self.finish(cast(int, event.value))  # the task index the Timeout was given

    def finish(self, i: int) -> None:
        """Task ``i`` ends now: free its unit and SRAM, and start what was waiting on it."""
        self.end[i] = int(self.env.now)
        self.done_count += 1
        u = self.unit_of[self.engine_of[i]]
        self.unit_busy[u] = False
        if self.sram_pool is not None:
            self.sram_pool.release(i)
        waiting, engine_of, start_heads = self.waiting, self.engine_of, self.start_heads
        for s in self.succs[i]:
            waiting[s] -= 1
            if not waiting[s]:
                start_heads((engine_of[s],))  # at once, before the next successor is counted, as the graph orders them
        start_heads(self.unit_members[u])

    def collect(self, give_up_after: int | None = None) -> Results:
        """The Results once the environment has run (GaveUp, or the deadlock error, if work is left)."""
        n, env, queues, position = self.n, self.env, self.queues, self.position
        if self.done_count != n and give_up_after is not None and env.now > give_up_after:
            raise GaveUp(give_up_after)
        if self.done_count != n:
            stuck = [self.graph.tasks[q[position[e]]].name for e, q in enumerate(queues) if position[e] < len(q)][:3]
            raise AccelsimError(
                f"the schedule deadlocks: {n - self.done_count} tasks never start (engine queue heads "
                f"{stuck} wait on tasks queued behind them); an engine's order must follow the "
                "dependencies",
                key=f"scheduler {self.schedule.scheduler!r}",
            )
        sram_pool, memory = self.sram_pool, self.memory
        return Results(
            graph=self.graph,
            chip=self.chip,
            scheduler=self.schedule.scheduler,
            engine=np.asarray(self.engine_of, dtype=np.int32),
            start=np.frombuffer(self.start, dtype=np.int64).copy(),
            end=np.frombuffer(self.end, dtype=np.int64).copy(),
            hbm_change_cycles=np.frombuffer(memory.change_cycles, dtype=np.int64).copy(),
            hbm_change_streams=np.asarray(memory.change_streams, dtype=np.int64),
            notes=dict(self.schedule.notes),
            hbm_bytes=self.hbm_bytes,
            sram_bytes=sram_pool.sram_bytes if sram_pool is not None else np.zeros(n, dtype=np.int64),
            kept_on_chip=sram_pool.kept if sram_pool is not None else np.zeros(n, dtype=bool),
        )
