"""A workload on a system of many cards, in a parallel layout: one card simulated for all of them.

With tensor parallelism inside a node and data parallelism across replicas, every card runs the same graph at the
same time (the symmetric shortcut): one card is simulated, its collectives costed by the network simulation of its
whole group on the system's fabric (accelsim.collective_costs). What the run adds to a card's Results: how much of
the communication the computation hid, and how busy each group's network was.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .chip import Chip
from .collective_costs import Fabric, collective_seconds
from .errors import AccelsimError
from .lowering import lower
from .parallel import Layout, shard_model
from .pipeline import PipelineRun, StageTimes, simulate_pipeline
from .results import Results
from .runner import run as run_graph
from .system import System
from .vocabulary import DTYPE_BYTES
from .workload import DEFAULT_MLP_RATIO, Workload, mlp_width, workload_from_dict

NETWORK_KINDS = ("network", "data_network")
#: Run settings that only a training step has.
TRAINING_ONLY = ("data_parallel", "zero1", "recompute", "optimizer_step")
#: Bytes per parameter a mixed-precision Adam step keeps: bf16 weights and gradients (2 + 2), fp32 master weights
#: and two moments (4 + 4 + 4); ZeRO-1 divides the last twelve over the replicas.
TRAINING_BYTES_PER_PARAMETER = (4, 12)


@dataclass(frozen=True)
class Placement:
    """A layout on a system: the card every card stands for, the workload it runs, and the system's size."""

    system: System
    layout: Layout
    nodes: int
    chip: Chip
    workload: Workload


def place(
    system: System,
    layout: Layout,
    data: dict[str, Any],
    source: str,
    total_cards: int | None = None,
    nodes: int | None = None,
) -> Placement:
    """The card of ``layout`` on ``nodes`` nodes of ``system`` (default: as many as the layout fills) and its share
    of the workload ``data`` (a workload file's dict, its model the whole model's, its batch each replica's). A layout
    whose product is not the system's cards, pipeline stages, or a shard that does not divide are one
    AccelsimError each."""
    per_node = system.spec.cards_per_node
    cards = total_cards or layout.cards  # a pipeline's stage is placed among all the pipeline's cards
    if nodes is None:  # as many nodes as the layout fills
        if cards % per_node:
            raise AccelsimError(
                f"tp x pp x dp = {cards} cards is not the card count of whole nodes of {system.name} ({per_node} "
                "cards each)",
                source="--parallel",
            )
        nodes = cards // per_node
    if cards != nodes * per_node:
        raise AccelsimError(
            f"tp x pp x dp = {cards} cards, but {nodes} node(s) of {system.name} hold {nodes * per_node}",
            source="--parallel",
        )
    if layout.pp > 1:
        raise AccelsimError("pp > 1 runs as a pipeline: accelsim.system_run.pipeline_step", source="--parallel")
    run = dict(data.get("run", {}))
    training = run.get("mode") == "training"
    if layout.dp > 1 and not training:
        raise AccelsimError(
            "dp > 1 runs replicas that never communicate in inference: simulate one replica (dp=1)",
            source="--parallel",
        )
    chip = system.card_chip(layout.tp, layout.dp, nodes)
    model = dict(data.get("model", {}))
    if layout.tp > 1:
        if model.get("d_ff") is None and "d_model" in model:
            model["d_ff"] = mlp_width(model["d_model"], model.get("mlp_ratio", DEFAULT_MLP_RATIO))
        model = shard_model(model, layout.tp, source)
    run.update(tensor_parallel=layout.tp)
    if training:
        run.update(data_parallel=layout.dp)
    workload = workload_from_dict({**data, "model": model, "run": run}, source)
    check_memory(workload, chip, layout, source)
    return Placement(system, layout, nodes, chip, workload)


def memory_per_card(wl: Workload, layout: Layout) -> tuple[float, float]:
    """(bytes of parameters and optimizer state, bytes of activations) one card holds during a step. Activations
    per layer follow Korthikanti et al. 2022 for tensor parallelism t: s b h (10 + 24/t + 5 a s / (h t)) bytes
    without recomputation, s b h (10 + 24/t) with selective, 2 s b h with full (the layer's input only); with
    sequence parallelism 34/t for 10 + 24/t, and the full recomputation's input sharded too."""
    m, r = wl.spec.model, wl.spec.run
    params = wl.parameters
    if r.mode != "training":
        return params * DTYPE_BYTES[r.dtype], 0.0
    held, optimizer = TRAINING_BYTES_PER_PARAMETER
    state = params * (held + optimizer / (layout.dp if r.zero1 else 1))
    s, b, t = wl.seq_len, r.batch, layout.tp
    h, a = m.d_model, m.heads * t  # the whole model's heads
    kept = 34 / t if r.sequence_parallel else 10 + 24 / t  # sequence parallelism shards the norms' and dropouts'
    per_layer = {
        "none": s * b * h * (kept + 5 * a * s / (h * t)),
        "selective": s * b * h * kept,
        "full": 2 * s * b * h / (t if r.sequence_parallel else 1),
    }[r.recompute]
    return state, per_layer * m.layers


def check_memory(wl: Workload, chip: Chip, layout: Layout, source: str) -> None:
    """A card whose parameters, optimizer state and activations exceed its HBM is refused, with the figures."""
    state, activations = memory_per_card(wl, layout)
    hbm = chip.spec.memory.hbm_gb * 2**30
    if state + activations > hbm:
        raise AccelsimError(
            f"each card needs {state / 1e9:.1f} GB of parameters and optimizer state and {activations / 1e9:.1f} GB "
            f"of activations, more than its {hbm / 1e9:.1f} GB of HBM: use more tensor parallelism, run.zero1, "
            "run.recompute, or a smaller run.batch",
            source=source,
            key="memory",
        )


@dataclass(frozen=True)
class Communication:
    """A card's step: its collectives' time, how much of it no computation overlapped (exposed) and how much it
    did (hidden), and each network group's busy fraction of the step."""

    step_ms: float
    communication_ms: float
    exposed_ms: float
    hidden_ms: float
    network_utilization: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "step_ms": self.step_ms,
            "communication_ms": self.communication_ms,
            "exposed_ms": self.exposed_ms,
            "hidden_ms": self.hidden_ms,
            "network_utilization": self.network_utilization,
        }


def _union(intervals: list[np.ndarray]) -> list[tuple[int, int]]:
    pairs = sorted((int(a), int(b)) for arr in intervals for a, b in arr if b > a)
    out: list[tuple[int, int]] = []
    for a, b in pairs:
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _overlap(xs: list[tuple[int, int]], ys: list[tuple[int, int]]) -> int:
    total, j = 0, 0
    for a, b in xs:
        while j < len(ys) and ys[j][1] <= a:
            j += 1
        k = j
        while k < len(ys) and ys[k][0] < b:
            total += max(0, min(b, ys[k][1]) - max(a, ys[k][0]))
            k += 1
    return total


def communication(results: Results) -> Communication:
    """What a simulated card's step spent communicating, from its engines' busy intervals."""
    chip = results.chip
    network, compute, util = [], [], {}
    for e in range(len(chip.instance_group)):
        group = chip.groups[chip.instance_group[e]]
        intervals = results.busy_intervals(e)
        if group.kind in NETWORK_KINDS:
            network.append(intervals)
        elif group.kind != "dma":
            compute.append(intervals)
    span = max(results.latency_cycles, 1)
    for s in results.engines:
        if s.kind in NETWORK_KINDS:
            util[s.kind] = round(s.busy_cycles / span, 4)
    comm, work = _union(network), _union(compute)
    busy = sum(b - a for a, b in comm)
    hidden = _overlap(comm, work)
    to_ms = chip.cycles_to_us(1) / 1e3
    return Communication(
        step_ms=round(results.latency_cycles * to_ms, 4),
        communication_ms=round(busy * to_ms, 4),
        exposed_ms=round((busy - hidden) * to_ms, 4),
        hidden_ms=round(hidden * to_ms, 4),
        network_utilization=util,
    )


@dataclass(frozen=True)
class PipelineStep:
    """A pipeline-parallel step: each distinct stage's card and times, the 1F1B run, and the step's milliseconds."""

    placement: Placement  # the first stage's
    stages: tuple[str, ...]  # the stage kind of each stage: first, middle..., last
    times: dict[str, StageTimes]
    run: PipelineRun
    step_ms: float


def pipeline_step(
    system: System, layout: Layout, data: dict[str, Any], source: str, scheduler: str, nodes: int | None = None
) -> PipelineStep:
    """``layout`` with pp > 1 stages of ``layers / pp`` layers each, ``batch / micro_batch`` micro-batches through
    them in the 1F1B order (accelsim.pipeline). Each distinct stage (first, middle, last) is simulated on one card
    for one micro-batch: forward only, forward and backward, and the whole step with the optimizer's update, whose
    extra is the stage's tail; sending a micro-batch's activations (or their gradient) to the next stage takes the
    network's time for those bytes between two cards."""
    pp = layout.pp
    model, run = dict(data.get("model", {})), dict(data.get("run", {}))
    if run.get("mode") != "training":
        raise AccelsimError('pipeline parallelism is modelled for training (run.mode = "training")', source=source)
    layers = model.get("layers", 0)
    if not isinstance(layers, int) or layers % pp:
        raise AccelsimError(f"{layers} layers do not divide into {pp} pipeline stages", source=source, key="layers")
    batch, micro = run.get("batch", 1), run.get("micro_batch", 1)
    if not isinstance(batch, int) or not isinstance(micro, int) or micro < 1 or batch % micro:
        raise AccelsimError(
            f"batch {batch} is not a multiple of micro_batch {micro}", source=source, key="run.micro_batch"
        )
    kinds = ("first", *["middle"] * (pp - 2), "last")
    flat = Layout(layout.tp, 1, layout.dp)
    per_node = system.spec.cards_per_node
    times: dict[str, StageTimes] = {}

    def stage_run(kind: str, forward_only: bool = False, **changes: Any) -> tuple[Layout, dict[str, Any]]:
        """One micro-batch on a ``kind`` stage's card: its layout and workload dict."""
        settings = {**run, "batch": micro, "pipeline_stage": kind, **changes}
        shape = flat
        if forward_only:  # no gradients: nothing of training's, no replicas to talk to
            settings = {k: v for k, v in settings.items() if k not in TRAINING_ONLY}
            settings.update(mode="inference", logits="all")
            shape = Layout(flat.tp, 1, 1)
        return shape, {**data, "model": {**model, "layers": layers // pp}, "run": settings}

    def cycles(kind: str, forward_only: bool = False, **changes: Any) -> int:
        shape, stage = stage_run(kind, forward_only, **changes)
        placed = place(system, shape, stage, source, total_cards=layout.cards, nodes=nodes)
        return int(run_graph(placed.chip, lower(placed.workload), scheduler).latency_cycles)

    for kind in dict.fromkeys(kinds):
        forward = cycles(kind, forward_only=True)
        both = cycles(kind, optimizer_step=False)
        whole = cycles(kind)
        times[kind] = StageTimes(forward, max(both - forward, 0), max(whole - both, 0))
    shape, stage = stage_run(kinds[0])
    first = place(system, shape, stage, source, total_cards=layout.cards, nodes=nodes)
    wl = first.workload
    activation_bytes = micro * wl.seq_len * wl.spec.model.d_model * DTYPE_BYTES[wl.spec.run.dtype]
    crosses_nodes = layout.tp * pp > per_node
    send = _send_cycles(system, activation_bytes, crosses_nodes, first.chip)
    pipeline = simulate_pipeline([times[k] for k in kinds], batch // micro, send)
    return PipelineStep(first, kinds, times, pipeline, round(first.chip.cycles_to_us(pipeline.cycles) / 1e3, 4))


def _send_cycles(system: System, nbytes: int, crosses_nodes: bool, chip: Chip) -> int:
    """Chip cycles to send ``nbytes`` from a stage's card to the next's: over one card pair's links inside a node,
    or over the scale-out network between nodes."""
    up, out = system.spec.scale_up, system.spec.scale_out
    if crosses_nodes and out is not None:
        fabric = Fabric(2, "switch", out.ports_per_card * out.port_gbps, 1, out.latency_us, "ring", 2, 0.0, 1, 0.0)
    else:
        fabric = Fabric(2, up.topology, up.link_gbps, up.links, up.latency_us, "ring", 2, 0.0, 1, 0.0)
    return math.ceil(chip.seconds_to_cycles(collective_seconds("send_recv", nbytes, fabric)))
