"""A workload on a system of many cards, in a parallel layout: one card simulated for all of them.

With tensor parallelism inside a node and data parallelism across replicas, every card runs the same graph at the
same time (the symmetric shortcut): one card is simulated, its collectives costed by the network simulation of its
whole group on the system's fabric (accelsim.collective_costs). What the run adds to a card's Results: how much of
the communication the computation hid, and how busy each group's network was.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .chip import Chip
from .errors import AccelsimError
from .parallel import Layout, shard_model
from .results import Results
from .system import System
from .vocabulary import DTYPE_BYTES
from .workload import Workload, workload_from_dict

NETWORK_KINDS = ("network", "data_network")
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


def place(system: System, layout: Layout, data: dict[str, Any], source: str) -> Placement:
    """The card of ``layout`` on ``system`` and its share of the workload ``data`` (a workload file's dict, its
    model the whole model's, its batch each replica's). A layout whose product is not a whole number of nodes,
    pipeline stages, or a shard that does not divide are one AccelsimError each."""
    per_node = system.spec.cards_per_node
    if layout.cards % per_node and layout.cards > per_node:
        raise AccelsimError(
            f"tp x pp x dp = {layout.cards} cards is not a whole number of {system.name}'s {per_node}-card nodes",
            source="--parallel",
        )
    if layout.pp > 1:
        raise AccelsimError(
            "pp > 1: pipeline parallelism is not modelled yet (tensor and data parallelism are)", source="--parallel"
        )
    nodes = max(1, layout.cards // per_node)
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
            model["d_ff"] = int(round(model["d_model"] * model.get("mlp_ratio", 4.0)))
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
    without recomputation, s b h (10 + 24/t) with selective, 2 s b h with full (the layer's input only)."""
    m, r = wl.spec.model, wl.spec.run
    params = _parameters(wl)
    if r.mode != "training":
        return params * DTYPE_BYTES[r.dtype], 0.0
    kept, optimizer = TRAINING_BYTES_PER_PARAMETER
    state = params * (kept + optimizer / (layout.dp if r.zero1 else 1))
    s, b, t = wl.seq_len, r.batch, layout.tp
    h, a = m.d_model, m.heads * t  # the whole model's heads
    per_layer = {
        "none": s * b * h * (10 + 24 / t + 5 * a * s / (h * t)),
        "selective": s * b * h * (10 + 24 / t),
        "full": 2 * s * b * h,
    }[r.recompute]
    return state, per_layer * m.layers


def _parameters(wl: Workload) -> float:
    """Parameters one card holds (its shard): attention, MLP and norms per layer, embeddings and head."""
    m = wl.spec.model
    d, qw, kvw = m.d_model, wl.q_width, wl.kv_width
    gated = m.mlp == "gated"
    mlp = (3 if gated else 2) * d * wl.d_ff
    per_layer = d * (qw + 2 * kvw) + qw * d + mlp + 2 * wl.norm_params
    ends = 0
    if m.embeddings and m.family == "gpt":
        ends = (m.vocab or 0) * d * (1 if m.tied_embeddings else 2)
    return float(m.layers * per_layer + ends)


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
