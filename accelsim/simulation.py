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
from collections.abc import Callable
from functools import partial
from typing import cast

import numpy as np
import simpy
from simpy.events import Timeout

from .chip import Chip
from .costs import CostTable
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
    n = len(graph)
    handed = [OPS[t.op].category == "network" for t in graph.tasks] if collectives is not None else []
    group_of = chip.instance_group
    n_engines = len(group_of)
    # Each task's compute cycles on the group of the engine it was given: one list, looked up per start.
    assigned_group = np.asarray(group_of, dtype=np.int64)[np.asarray(schedule.engine, dtype=np.int64)]
    compute = costs.compute[np.arange(n), assigned_group].tolist()
    hbm = costs.stream.tolist()  # HBM bytes as costed at its full rate, if every planned tensor stays on chip
    dispatch = chip.spec.dispatch_overhead_cycles
    gap = chip.spec.launch_gap_cycles
    succs = graph.succs
    waiting = [len(p) for p in graph.preds]
    engine_of = schedule.engine
    queues = schedule.order
    position = [0] * n_engines
    # A unit runs one task at a time; engines that share one (tensor and CUDA cores of one SM) take turns.
    unit_of = chip.units.unit_of
    unit_members = chip.units.members
    unit_busy = [False] * len(unit_members)
    start = array("q", [-1]) * n
    end = array("q", [-1]) * n
    compute_end = array("q", [0]) * n
    done_count = 0
    # The on-chip memory (accelsim.onchip): SRAM reserved for kept outputs, and what each task really moved.
    plan = costs.plan if costs.plan is not None else OnChipPlan.of(graph)
    sram_pool = SramPool(plan, chip.on_chip_capacity) if plan.any else None
    hbm_bytes = plan.hbm.copy()  # what each task really moved: spills are added at run time
    streams_left = [0] * n

    def try_start(e: int) -> None:
        u = unit_of[e]
        if unit_busy[u]:
            return
        q = queues[e]
        p = position[e]
        if p >= len(q):
            return
        i = q[p]
        if waiting[i]:
            return
        unit_busy[u] = True
        position[e] = p + 1
        now = int(env.now)  # integer delays keep SimPy's clock an int
        start[i] = now
        c = compute[i]
        b = hbm[i]
        s = 0
        if sram_pool is not None:
            spilled = sram_pool.place(i)
            s = int(sram_pool.sram_bytes[i])
            if spilled:
                hbm_bytes[i] += spilled
                b += chip.stream_bytes(spilled, OPS[graph.tasks[i].op].strided)
        if handed and handed[i] and collectives is not None:
            # the collective is a stream of its own: the task ends once it and its bytes through HBM are done
            compute_end[i] = now + dispatch
            streams_left[i] += 1 + bool(b)
            if b:
                memory.add(i, b)
            collectives(i, partial(stream_done, i))
        elif b or (s and sram is not None):
            compute_end[i] = now + dispatch + c
            if b:
                streams_left[i] += 1
                memory.add(i, b)
            if s and sram is not None:
                streams_left[i] += 1
                sram.add(i, s)
        else:
            Timeout(env, dispatch + c + gap, i).callbacks.append(finish_event)

    def stream_done(i: int) -> None:
        streams_left[i] -= 1
        if streams_left[i]:
            return
        wait = max(compute_end[i] - env.now, 0) + gap  # the launch gap follows whichever ends last
        if wait > 0:
            Timeout(env, wait, i).callbacks.append(finish_event)
        else:
            finish(i)

    def finish_event(event: Timeout) -> None:
        finish(cast(int, event.value))  # the task index the Timeout was given

    def finish(i: int) -> None:
        nonlocal done_count
        end[i] = int(env.now)
        done_count += 1
        u = unit_of[engine_of[i]]
        unit_busy[u] = False
        if sram_pool is not None:
            sram_pool.release(i)
        for s in succs[i]:
            waiting[s] -= 1
            if not waiting[s]:
                try_start(engine_of[s])
        for e in unit_members[u]:
            try_start(e)

    memory = SharedBandwidth(env, chip.hbm_bytes_per_cycle, stream_done)
    sram_rate = chip.sram_bytes_per_cycle
    sram = SharedBandwidth(env, sram_rate, stream_done) if sram_pool is not None and sram_rate is not None else None
    for e in range(n_engines):
        try_start(e)

    def collect(give_up_after: int | None = None) -> Results:
        """The Results once the environment has run (GaveUp, or the deadlock error, if work is left)."""
        if done_count != n and give_up_after is not None and env.now > give_up_after:
            raise GaveUp(give_up_after)
        if done_count != n:
            stuck = [graph.tasks[q[position[e]]].name for e, q in enumerate(queues) if position[e] < len(q)][:3]
            raise AccelsimError(
                f"the schedule deadlocks: {n - done_count} tasks never start (engine queue heads "
                f"{stuck} wait on tasks queued behind them); an engine's order must follow the "
                "dependencies",
                key=f"scheduler {schedule.scheduler!r}",
            )
        return Results(
            graph=graph,
            chip=chip,
            scheduler=schedule.scheduler,
            engine=np.asarray(engine_of, dtype=np.int32),
            start=np.frombuffer(start, dtype=np.int64).copy(),
            end=np.frombuffer(end, dtype=np.int64).copy(),
            hbm_change_cycles=np.frombuffer(memory.change_cycles, dtype=np.int64).copy(),
            hbm_change_streams=np.asarray(memory.change_streams, dtype=np.int64),
            notes=dict(schedule.notes),
            hbm_bytes=hbm_bytes,
            sram_bytes=sram_pool.sram_bytes if sram_pool is not None else np.zeros(n, dtype=np.int64),
            kept_on_chip=sram_pool.kept if sram_pool is not None else np.zeros(n, dtype=bool),
        )

    return collect
