"""The cost model of collective tasks: a pure function of (task, network engine), the time the network
simulation gives the whole tensor-parallel group's collective on the card's fabric.

Every card of the group runs the same graph, so the collective starts on all of them together (the symmetric
shortcut: one card simulated stands for the group); how long it takes is the discrete-event simulation of every
card's messages on the fabric (accelsim.network, accelsim.collectives), contention between them included, run once
per distinct (collective, bytes, fabric) and remembered.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import simpy

from .chip import NetworkEngines
from .collectives import collective
from .graph import Task
from .network import Network, Topology, all_to_all, hierarchical, ring, switch
from .ops import OPS, CollectiveOp
from .vocabulary import DTYPE_BYTES

#: The network simulation's clock: 1 ns steps, finer than any message and coarser than a cycle count can overflow.
NETWORK_HZ = 1e9


@dataclass(frozen=True)
class Fabric:
    """NetworkEngines' fields that decide a collective's time, hashable (the memo's key)."""

    cards: int
    topology: str
    link_gbps: float
    links: int
    latency_us: float
    algorithm: str
    cards_per_node: int
    inter_port_gbps: float
    inter_ports: int
    inter_latency_us: float

    @staticmethod
    def of(spec: NetworkEngines) -> Fabric:
        return Fabric(
            spec.cards,
            spec.topology,
            spec.link_gbps,
            spec.links,
            spec.latency_us,
            spec.algorithm,
            spec.cards_per_node or spec.cards,
            spec.inter_port_gbps or 0.0,
            spec.inter_ports,
            spec.inter_latency_us,
        )

    def node(self, cards: int) -> Topology:
        """The fabric inside a node, wiring ``cards`` of the group."""
        bandwidth, latency = self.link_gbps * 1e9, self.latency_us * 1e-6
        if self.topology == "all-to-all":
            return all_to_all(cards, bandwidth, latency, links_per_pair=self.links)
        if self.topology == "switch":
            return switch(cards, bandwidth, latency, ports_per_card=self.links)
        return ring(cards, bandwidth * self.links, latency)

    @property
    def intra(self) -> str:
        """The algorithm inside a node: direct on a link per pair, ring otherwise."""
        return "direct" if self.topology == "all-to-all" else "ring"

    def topology_and_algorithm(self) -> tuple[Topology, str]:
        """The group's wiring and the algorithm its collectives use: inside one node, the fabric's own; across
        nodes with one card in each, a ring over the scale-out switch; with several per node, hierarchical."""
        per_node = self.cards_per_node
        if per_node >= self.cards:
            return self.node(self.cards), self.algorithm
        out_bw, out_latency = self.inter_port_gbps * 1e9, self.inter_latency_us * 1e-6
        if per_node == 1:
            return switch(self.cards, out_bw, out_latency, ports_per_card=self.inter_ports), "ring"
        topology = hierarchical(
            self.cards // per_node, per_node, self.node, out_bw, out_latency, inter_ports_per_card=self.inter_ports
        )
        return topology, "hierarchical"


@lru_cache(maxsize=4096)
def collective_cycles(collective_name: str, nbytes: int, fabric: Fabric, clock_hz: float) -> int:
    """Cycles of a clock of ``clock_hz`` from the collective's start on every card of the group to its end on the
    last one: the network simulated on that clock, as it is when every card is simulated (accelsim.explicit)."""
    if fabric.cards == 1 or nbytes == 0:
        return 0
    topology, algorithm = fabric.topology_and_algorithm()
    env = simpy.Environment()
    net = Network(env, topology, clock_hz)
    done = collective(net, collective_name, list(range(fabric.cards)), nbytes, algorithm, intra=fabric.intra)
    env.run(done)
    return int(env.now)


def collective_seconds(collective_name: str, nbytes: int, fabric: Fabric) -> float:
    """The same in seconds (on a 1 GHz clock)."""
    return collective_cycles(collective_name, nbytes, fabric, NETWORK_HZ) / NETWORK_HZ


def network_engine_cycles(task: Task, spec: NetworkEngines, clock_ghz: float) -> int:
    """Chip cycles a collective task takes on a network engine serving its group (-1 for any other task): its
    messages on the fabric, plus the engine's ``overhead_us`` per collective (set-up and synchronisation) where the
    group has more than one card. Its shape is the card's buffer in elements: reduced, or for a gather the card's
    own part (the gathered result is ``cards`` times larger)."""
    op = OPS[task.op]
    if not isinstance(op, CollectiveOp) or spec.kind not in op.default_engines:
        return -1
    gathered = spec.cards if op.collective == "all_gather" else 1
    nbytes = math.prod(task.shape) * DTYPE_BYTES[task.dtype] * gathered
    messages = collective_cycles(op.collective, nbytes, Fabric.of(spec), clock_ghz * 1e9)
    overhead = math.ceil(round(spec.overhead_us * 1e3 * clock_ghz, 6)) if spec.cards > 1 else 0  # no float noise
    return messages + overhead
