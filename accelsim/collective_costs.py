"""The cost model of collective tasks: a pure function of (task, network engine), the time the network
simulation gives the whole tensor-parallel group's collective on the card's fabric.

Every card of the group runs the same graph, so the collective starts on all of them together (the symmetric
shortcut: one card simulated stands for the group); how long it takes is the discrete-event simulation of every
card's messages on the fabric (accelsim.network, accelsim.collectives), contention between them included, run once
per distinct (collective, bytes, fabric) and remembered.
"""

from __future__ import annotations

import math
from functools import lru_cache

import simpy

from .chip import NetworkEngines
from .collectives import collective
from .graph import Task
from .network import Network, Topology, all_to_all, ring, switch
from .ops import OPS
from .vocabulary import DTYPE_BYTES

#: The network simulation's clock: 1 ns steps, finer than any message and coarser than a cycle count can overflow.
NETWORK_HZ = 1e9


def topology_of(topology: str, cards: int, link_gbps: float, links: int, latency_us: float) -> Topology:
    """The group's fabric: ``cards`` cards wired as the system file says (NetworkEngines' fields)."""
    bandwidth, latency = link_gbps * 1e9, latency_us * 1e-6
    if topology == "all-to-all":
        return all_to_all(cards, bandwidth, latency, links_per_pair=links)
    if topology == "switch":
        return switch(cards, bandwidth, latency, ports_per_card=links)
    return ring(cards, bandwidth * links, latency)


@lru_cache(maxsize=4096)
def collective_seconds(
    op: str, nbytes: int, cards: int, topology: str, link_gbps: float, links: int, latency_us: float, algorithm: str
) -> float:
    """Seconds from the collective's start on every card to its end on the last one."""
    if cards == 1 or nbytes == 0:
        return 0.0
    env = simpy.Environment()
    net = Network(env, topology_of(topology, cards, link_gbps, links, latency_us), NETWORK_HZ)
    done = collective(net, op, list(range(cards)), nbytes, algorithm)
    env.run(done)
    return float(env.now) / NETWORK_HZ


def network_engine_cycles(task: Task, spec: NetworkEngines, clock_ghz: float) -> int:
    """Chip cycles a collective task takes (-1 for any other task). Its shape is the card's buffer in elements:
    all-reduced, or for an all-gather the card's own part (the gathered result is ``cards`` times larger)."""
    op = OPS[task.op]
    if op.category != "network":
        return -1
    nbytes = math.prod(task.shape) * DTYPE_BYTES[task.dtype] * (spec.cards if task.op == "all_gather" else 1)
    seconds = collective_seconds(
        task.op, nbytes, spec.cards, spec.topology, spec.link_gbps, spec.links, spec.latency_us, spec.algorithm
    )
    return math.ceil(seconds * clock_ghz * 1e9)
