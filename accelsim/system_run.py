"""A workload on a system of many cards, in a parallel layout: one card simulated for all of them.

With tensor parallelism inside a node and data parallelism across replicas, every card runs the same graph at the
same time (the symmetric shortcut): one card is simulated, its collectives costed by the network simulation of its
whole group on the system's fabric (accelsim.collective_costs). What the run adds to a card's Results: how much of
the communication the computation hid, and how busy each group's network was.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .chip import Chip
from .collective_costs import Fabric, collective_seconds
from .errors import AccelsimError
from .footprint import card_memory
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
TRAINING_ONLY = ("data_parallel", "zero", "recompute", "optimizer_step")


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
    memory_checked: bool = True,
) -> Placement:
    """The card of ``layout`` on ``nodes`` nodes of ``system`` (default: as many as the layout fills) and its share
    of the workload ``data`` (a workload file's dict, its model the whole model's, its batch each replica's). A layout
    whose product is not the system's cards, pipeline stages, or a shard that does not divide are one
    AccelsimError each, and so is a card whose memory the run exceeds (unless ``memory_checked`` is false: the
    caller checks it, as accelsim.training does with its micro-batches in flight)."""
    cards = total_cards or layout.cards  # a pipeline's stage is placed among all the pipeline's cards
    nodes = nodes_used(system, cards, nodes)
    if layout.pp > 1:
        raise AccelsimError("pp > 1 runs as a pipeline: accelsim.system_run.pipeline_step", source="--parallel")
    run = dict(data.get("run", {}))
    training = run.get("mode") == "training"
    if run.get("micro_batch", run.get("batch")) != run.get("batch"):
        raise AccelsimError(
            "micro-batches without a pipeline are accelsim train's (--global-batch, --micro-batch): a run on a "
            "system simulates one pass of its whole batch",
            source=source,
            key="run.micro_batch",
        )
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
    if memory_checked:
        check_memory(workload, chip, layout, source)
    return Placement(system, layout, nodes, chip, workload)


def nodes_used(system: System, cards: int, nodes: int | None = None) -> int:
    """The nodes of ``system`` a layout of ``cards`` runs on: part of one node where it has fewer cards than a node
    (that many of its cards, the node's links and fabric as they are), else the whole nodes it fills; ``nodes``
    where given must be that count."""
    per_node = system.spec.cards_per_node
    if cards < per_node:
        needed = 1
    elif cards % per_node:
        raise AccelsimError(
            f"tp x pp x dp = {cards} cards is neither part of one node nor the cards of whole nodes of {system.name} "
            f"({per_node} cards each)",
            source="--parallel",
        )
    else:
        needed = cards // per_node
    if nodes is not None and nodes != needed:
        raise AccelsimError(
            f"tp x pp x dp = {cards} cards run on {needed} node(s) of {system.name} ({per_node} cards each), not "
            f"{nodes}",
            source="--parallel",
        )
    return needed


def check_memory(wl: Workload, chip: Chip, layout: Layout, source: str) -> None:
    """A card whose parameters, optimizer state and activations exceed its HBM is refused, with the figures."""
    memory = card_memory(wl, layout)
    state, activations, hbm = memory.state, memory.activations, chip.hbm_bytes
    if memory.total > hbm:
        raise AccelsimError(
            f"each card needs {state / 1e9:.1f} GB of parameters and optimizer state and {activations / 1e9:.1f} GB "
            f"of activations, more than its {hbm / 1e9:.1f} GB of HBM: use more tensor parallelism, run.zero, "
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


def group_communication(results: Results) -> dict[str, tuple[int, int]]:
    """Per network group of a simulated card: (busy cycles, of them overlapped by computation)."""
    chip = results.chip
    compute: list = []
    nets: dict[str, list] = {}
    for e in range(len(chip.instance_group)):
        group = chip.groups[chip.instance_group[e]]
        if group.kind in NETWORK_KINDS:
            nets.setdefault(group.kind, []).append(results.busy_intervals(e))
        elif group.kind != "dma":
            compute.append(results.busy_intervals(e))
    work = _union(compute)
    out = {}
    for kind, intervals in nets.items():
        busy = _union(intervals)
        out[kind] = (sum(b - a for a, b in busy), _overlap(busy, work))
    return out


@dataclass(frozen=True)
class PipelineStep:
    """A pipeline-parallel step: each distinct stage's card and times, the 1F1B run, and the step's milliseconds."""

    placement: Placement  # the first stage's
    stages: tuple[str, ...]  # the stage kind of each stage: first, middle..., last
    times: dict[str, StageTimes]
    run: PipelineRun
    step_ms: float
    #: Per stage kind: each network group's (busy, overlapped) cycles in one micro-batch's forward and backward,
    #: and in the last one's with the update (accelsim.training sums them over the step).
    communication: dict[str, tuple[dict[str, tuple[int, int]], dict[str, tuple[int, int]]]] = field(
        default_factory=dict
    )


def pipeline_step(
    system: System,
    layout: Layout,
    data: dict[str, Any],
    source: str,
    scheduler: str,
    nodes: int | None = None,
    cache: dict[tuple, Any] | None = None,
    sample_layers: int | None = None,
) -> PipelineStep:
    """``layout`` with pp > 1 stages of ``layers / pp`` layers each, ``batch / micro_batch`` micro-batches through
    them in the 1F1B order (accelsim.pipeline). Each distinct stage (first, middle, last) is simulated on one card
    for one micro-batch: forward only, forward and backward, and the whole step with the optimizer's update, whose
    extra is the stage's tail; sending a micro-batch's activations (or their gradient) to the next stage takes the
    network's time for those bytes between two cards. ``cache`` (shared by the candidates of a search) keeps the
    cycles of each stage run already simulated: a forward, or a forward and backward without the update, does
    not depend on the replicas (nothing crosses the data network before the update). ``sample_layers`` k: a stage
    of more than 2k layers is simulated with k and 2k layers and its cycles extrapolated linearly (its layers are
    alike: accelsim.training.sampled)."""
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

    def stage_run(
        kind: str, forward_only: bool = False, held: int = layers // pp, **changes: Any
    ) -> tuple[Layout, dict[str, Any]]:
        """One micro-batch on a ``kind`` stage's card holding ``held`` layers: its layout and workload dict."""
        settings = {**run, "batch": micro, "pipeline_stage": kind, **changes}
        shape = flat
        if forward_only:  # no gradients: nothing of training's, no replicas to talk to
            # (sequence parallelism, modelled for training only, left out of the forward's time: the same bytes on
            # the network, its norms on every row)
            settings = {k: v for k, v in settings.items() if k not in (*TRAINING_ONLY, "sequence_parallel")}
            settings.update(mode="inference", logits="all")
            shape = Layout(flat.tp, 1, 1)
        return shape, {**data, "model": {**model, "layers": held}, "run": settings}

    def cycles(kind: str, forward_only: bool = False, **changes: Any) -> Cost:
        return over_layers(
            model, layers // pp, sample_layers, lambda held: simulated(kind, forward_only, held, **changes)
        )

    def simulated(kind: str, forward_only: bool, held: int, **changes: Any) -> Cost:
        shape, stage = stage_run(kind, forward_only, held, **changes)
        updates = not forward_only and changes.get("optimizer_step", True)
        key = (repr(stage), shape.tp, scheduler, *((layout.cards, layout.dp) if updates else ()))
        if cache is not None and key in cache:
            found: Cost = cache[key]
            return found
        placed = place(system, shape, stage, source, total_cards=layout.cards, nodes=nodes)
        results = run_graph(placed.chip, lower(placed.workload), scheduler)
        cost = (int(results.latency_cycles), group_communication(results))
        if cache is not None:
            cache[key] = cost
        return cost

    comms = {}
    for kind in dict.fromkeys(kinds):
        forward, _ = cycles(kind, forward_only=True)
        both, micro_comm = cycles(kind, optimizer_step=False)
        whole, last_comm = cycles(kind)
        times[kind] = StageTimes(forward, max(both - forward, 0), max(whole - both, 0))
        comms[kind] = (micro_comm, last_comm)
    shape, stage = stage_run(kinds[0])
    first = place(system, shape, stage, source, total_cards=layout.cards, nodes=nodes)
    wl = first.workload
    activation_bytes = micro * wl.seq_len * wl.spec.model.d_model * DTYPE_BYTES[wl.spec.run.dtype]
    crosses_nodes = layout.tp * pp > per_node
    send = _send_cycles(system, activation_bytes, crosses_nodes, first.chip)
    pipeline = simulate_pipeline([times[k] for k in kinds], batch // micro, send)
    step_ms = round(first.chip.cycles_to_us(pipeline.cycles) / 1e3, 4)
    return PipelineStep(first, kinds, times, pipeline, step_ms, comms)


#: A card's simulated cost: cycles, and each network group's (busy, overlapped by computation) cycles.
Cost = tuple[int, dict[str, tuple[int, int]]]


def sampled(model: dict[str, Any], layers: int, k: int) -> bool:
    """Whether ``layers`` alike layers of ``model`` may be simulated as k and 2k and extrapolated: more than 2k of
    them, and no alternation of local and global attention layers to break their likeness."""
    alike = model.get("sliding_window") is None or model.get("window_period", 1) == 1
    return layers > 2 * k and alike


def over_layers(model: dict[str, Any], layers: int, k: int | None, simulate: Callable[[int], Cost]) -> Cost:
    """The cost of a card holding ``layers`` layers of ``model``: ``simulate(layers)``, or where k is given and
    sampled() allows, simulate(k) and simulate(2k) extrapolated linearly to ``layers`` (cycles and each group's
    figures alike: each layer adds the same once the engines' work is periodic)."""
    if not k or not sampled(model, layers, k):
        return simulate(layers)
    (a, ga), (b, gb) = simulate(k), simulate(2 * k)

    def at(x: int, y: int) -> int:
        return round(x + (layers - k) * (y - x) / k)

    zero = (0, 0)
    groups = {
        g: (at(ga.get(g, zero)[0], gb.get(g, zero)[0]), at(ga.get(g, zero)[1], gb.get(g, zero)[1])) for g in ga | gb
    }
    return at(a, b), groups


def _send_cycles(system: System, nbytes: int, crosses_nodes: bool, chip: Chip) -> int:
    """Chip cycles to send ``nbytes`` from a stage's card to the next's: over one card pair's links inside a node,
    or over the scale-out network between nodes."""
    up, out = system.spec.scale_up, system.spec.scale_out
    if crosses_nodes and out is not None:
        fabric = Fabric(2, "switch", out.ports_per_card * out.port_gbps, 1, out.latency_us, "ring", 2, 0.0, 1, 0.0)
    else:
        fabric = Fabric(2, up.topology, up.link_gbps, up.links, up.latency_us, "ring", 2, 0.0, 1, 0.0)
    return math.ceil(chip.seconds_to_cycles(collective_seconds("send_recv", nbytes, fabric)))
