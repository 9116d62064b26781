"""Every card of a tensor x data layout simulated in one clock, their collectives carried out on one network.

The check of the symmetric shortcut (accelsim.system_run simulates one card and costs each collective on an idle
fabric): here each card runs its own copy of the graph on its own engines, and a collective starts on the shared
network (accelsim.network, accelsim.collectives) once every card of its group has reached it, so collectives of
different groups that overlap in time share the links they cross. Where no two groups' collectives share a link
(a Gaudi node's all-to-all links), the two must agree to the cycle; where they do (a switch port carrying both a
tensor and a data group's bytes), this is slower, and by how much is what the shortcut leaves out.
Memory (HBM, SRAM) is each card's own; only the network is shared. Slow: for small layouts.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import simpy

from .collective_costs import Fabric
from .collectives import collective
from .lowering import lower
from .network import Network, Topology, hierarchical
from .ops import OPS, CollectiveOp
from .parallel import Layout
from .registry import DEFAULT_SCHEDULER
from .results import Results
from .runner import prepare
from .simulation import setup
from .system import System
from .system_run import place
from .vocabulary import DTYPE_BYTES


@dataclass(frozen=True)
class ExplicitRun:
    """Every card's Results; the step ends with the last card."""

    cards: tuple[Results, ...]

    @property
    def latency_cycles(self) -> int:
        return max(r.latency_cycles for r in self.cards)


def _fabric(system: System, cards: int, chip_cards_per_node: int) -> Topology:
    """The layout's cards wired as the system: one node's fabric, or nodes joined by the scale-out network."""
    up, out = system.spec.scale_up, system.spec.scale_out
    node = Fabric(cards, up.topology, up.link_gbps, up.links, up.latency_us, "ring", cards, 0.0, 1, 0.0)
    if cards <= chip_cards_per_node:
        return node.node(cards)
    assert out is not None  # place() refuses a layout across nodes without a scale-out network
    return hierarchical(
        cards // chip_cards_per_node,
        chip_cards_per_node,
        node.node,
        out.ports_per_card * out.port_gbps * 1e9,
        out.latency_us * 1e-6,
    )


def explicit_step(
    system: System,
    layout: Layout,
    data: dict[str, Any],
    source: str,
    scheduler: str = DEFAULT_SCHEDULER,
    nodes: int | None = None,
) -> ExplicitRun:
    """``layout`` (tensor and data parallel) on ``system``, every card simulated: cards numbered tensor rank
    first, a tensor group the consecutive cards of a replica, a data group the cards of one tensor rank."""
    placement = place(system, layout, data, source, nodes=nodes)
    chip, tp, dp = placement.chip, layout.tp, layout.dp
    prepared = prepare(chip, lower(placement.workload))
    graph, costs, schedule = prepared.graph, prepared.costs, prepared.schedule(scheduler)
    per_node = min(system.spec.cards_per_node, tp * dp)
    env = simpy.Environment()
    net = Network(env, _fabric(system, tp * dp, per_node), chip.cycles_per_second)
    intra = "direct" if system.spec.scale_up.topology == "all-to-all" else "ring"
    arrived: dict[tuple[int, str, int], list[Callable[[], None]]] = {}
    dispatch = chip.spec.dispatch_overhead_cycles
    # each collective's set-up and synchronisation, as the symmetric model's network engine adds it
    overhead = math.ceil(round(system.spec.collective_overhead_us * 1e3 * chip.clock_ghz, 6))

    def algorithm(group: list[int]) -> str:
        """As the symmetric model costs it (System.card_chip): the node's inside a node; across nodes a ring with
        one card per node, hierarchical with several."""
        nodes = {c // per_node for c in group}
        if len(nodes) == 1:
            return intra
        return "ring" if len(group) == len(nodes) else "hierarchical"

    def hook_for(card: int) -> Callable[[int, Callable[[], None]], None]:
        rank, replica = card % tp, card // tp

        def hook(i: int, done: Callable[[], None]) -> None:
            if OPS[graph.tasks[i].op].default_engines[0] == "network":
                key, group = (i, "tensor", replica), [replica * tp + r for r in range(tp)]
            else:
                key, group = (i, "data", rank), [d * tp + rank for d in range(dp)]
            env.timeout(dispatch).callbacks.append(lambda _event: arrive(i, key, group, done))

        return hook

    def arrive(i: int, key: tuple[int, str, int], group: list[int], done: Callable[[], None]) -> None:
        """A card has dispatched collective task ``i`` (as its cost counts the dispatch, too); the last of its group
        starts it on the network."""
        task = graph.tasks[i]
        op = OPS[task.op]
        assert isinstance(op, CollectiveOp)
        waiting = arrived.setdefault(key, [])
        waiting.append(done)
        if len(waiting) < len(group):
            return  # the collective starts once every card of the group has reached it
        gathered = len(group) if op.collective == "all_gather" else 1
        nbytes = math.prod(task.shape) * DTYPE_BYTES[task.dtype] * gathered
        if len(group) == 1 or nbytes == 0:
            finished: simpy.Event = env.timeout(0)
        else:
            finished = collective(net, op.collective, group, nbytes, algorithm(group), intra=intra)
        everyone = tuple(waiting)
        extra = overhead if len(group) > 1 else 0

        def release(_event: simpy.Event) -> None:
            for d in everyone:
                d()

        def after_overhead(_event: simpy.Event) -> None:
            if extra:
                env.timeout(extra).callbacks.append(release)
            else:
                release(_event)

        finished.callbacks.append(after_overhead)

    collects = [
        setup(env, graph, chip, schedule, costs, check=card == 0, collectives=hook_for(card)) for card in range(tp * dp)
    ]
    env.run()
    return ExplicitRun(tuple(c(None) for c in collects))
