"""Pipeline parallelism: micro-batches through stages of layers in the 1F1B order, on a SimPy clock.

Each stage is one card (standing for its tensor group and its replicas); what a micro-batch's forward and backward
pass take on it comes from simulating that stage's card (accelsim.system_run), and sending activations or their
gradient to the next stage from the network simulation. This module only orders the passes: stage s runs
``min(p - s - 1, m)`` forwards to fill the pipeline, then alternates one forward and one backward, then drains the
backwards (PipeDream-Flush / Megatron's 1F1B); a forward waits for the stage before it to have sent that
micro-batch, a backward for the stage after it. The step ends when every stage has ended its last backward and its
optimizer step (``tail``: the update and the replicas' gradient reduction it exposes).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass

import simpy

from .errors import AccelsimError


@dataclass(frozen=True)
class StageTimes:
    """Cycles one micro-batch's forward and backward pass take on a stage, and its optimizer step's tail."""

    forward: int
    backward: int
    tail: int


@dataclass(frozen=True)
class Pass:
    stage: int
    kind: str  # "F" or "B"
    micro_batch: int
    start: int
    end: int


@dataclass(frozen=True)
class PipelineRun:
    """The step: when each pass ran, the step's cycles, and the bubble (the share of stage-time idle)."""

    passes: tuple[Pass, ...]
    cycles: int
    stages: int
    micro_batches: int

    @property
    def bubble(self) -> float:
        busy = sum(p.end - p.start for p in self.passes)
        return 1 - busy / (self.cycles * self.stages) if self.cycles else 0.0


def one_f_one_b(stages: int, micro_batches: int) -> list[list[tuple[str, int]]]:
    """Each stage's order of passes, ("F" or "B", micro-batch), under 1F1B."""
    if stages < 1 or micro_batches < 1:
        raise AccelsimError(f"a pipeline needs stages and micro-batches, got {stages} and {micro_batches}")
    orders = []
    for s in range(stages):
        warm = min(stages - s - 1, micro_batches)
        order = [("F", m) for m in range(warm)]
        f, b = warm, 0
        while f < micro_batches:
            order.append(("F", f))
            f += 1
            order.append(("B", b))
            b += 1
        order += [("B", m) for m in range(b, micro_batches)]
        orders.append(order)
    return orders


def simulate_pipeline(times: list[StageTimes], micro_batches: int, send_cycles: int) -> PipelineRun:
    """The 1F1B step of ``len(times)`` stages over ``micro_batches``, a send between neighbours taking
    ``send_cycles``."""
    stages = len(times)
    orders = one_f_one_b(stages, micro_batches)
    env = simpy.Environment()
    sent = {(kind, s, m): env.event() for s in range(stages) for kind in "FB" for m in range(micro_batches)}
    passes: list[Pass] = []
    ends: list[int] = [0] * stages

    def send(kind: str, s: int, m: int) -> Generator[simpy.Event, None, None]:
        yield env.timeout(send_cycles)
        sent[(kind, s, m)].succeed()

    def stage(s: int) -> Generator[simpy.Event, None, None]:
        t = times[s]
        for kind, m in orders[s]:
            if kind == "F" and s > 0:
                yield sent[("F", s - 1, m)]
            if kind == "B" and s < stages - 1:
                yield sent[("B", s + 1, m)]
            start = int(env.now)
            yield env.timeout(t.forward if kind == "F" else t.backward)
            passes.append(Pass(s, kind, m, start, int(env.now)))
            if kind == "F" and s < stages - 1 or kind == "B" and s > 0:
                env.process(send(kind, s, m))
        yield env.timeout(t.tail)
        ends[s] = int(env.now)

    for s in range(stages):
        env.process(stage(s))
    env.run()
    return PipelineRun(tuple(sorted(passes, key=lambda p: (p.stage, p.start))), max(ends), stages, micro_batches)
