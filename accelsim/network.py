"""The network between cards: a topology of directed links, and messages on it sharing bandwidth on a SimPy clock.

A message crosses the links its route names. While it streams, every link it crosses carries it at the same rate,
and concurrent messages share links *max-min fairly* (a fluid model, as processor sharing is for HBM in
accelsim.memory, but over routes of several links: a message's rate is set by its most contended link, and what it
cannot use of the others goes to the messages there). Rates are recomputed whenever a message starts or finishes
streaming, so the cost is a few events per message rather than one per packet. After its last byte has streamed,
a message arrives the route's latency later: the sum of its links' latencies, paid once per message, as a
cut-through fabric overlaps the hops (not once per hop as store-and-forward would).

Time is in integer cycles of a clock, as in accelsim.simulation, so a Network can share the engines' environment:
a stream ends on the first whole cycle at or after its fluid end, and a route's latency is rounded up to cycles.

Not modelled: packets and their headers, congestion control and flow control (a message gets its fair rate at
once), adaptive or multi-path routing (one fixed route per pair of cards; parallel links between two points are
one link of their summed bandwidth, with a message striped over them), switch buffers and head-of-line blocking
(switches are non-blocking), in-network reduction, and the DMA or NIC engines that feed a link.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple, cast

import simpy

from .errors import AccelsimError
from .limits import (
    MAX_BANDWIDTH_GBPS,
    MAX_CARDS,
    MAX_CLOCK_GHZ,
    MAX_COUNT,
    MAX_CYCLES,
    MAX_LINKS,
    MIN_BANDWIDTH_GBPS,
    MIN_CLOCK_GHZ,
)

#: A link's latency, seconds: up to 1 s (a wide-area link is tens of ms; anything longer is a typo).
MAX_LATENCY_S = 1.0

#: A stream whose remaining time is below this many cycles counts as finished (float round-off guard).
_EPS = 1e-6


@dataclass(frozen=True)
class Link:
    """A directed link between two vertices (cards are 0..cards-1; switches are numbered after them)."""

    src: int
    dst: int
    bytes_per_s: float
    latency_s: float
    #: Physical links this one stands for (their bandwidth summed; a message is striped over them).
    lanes: int = 1

    @property
    def name(self) -> str:
        return f"{self.src}->{self.dst}"


class Topology:
    """Cards 0..cards-1, the switches between them, directed links, and the fixed route of every card pair.

    Build one with ``all_to_all``, ``switch``, ``ring`` or ``hierarchical``. ``route(a, b)`` gives the indices
    into ``links`` of the links a message from card a to card b crosses, in order (empty for a == b).
    """

    def __init__(
        self,
        name: str,
        cards: int,
        vertices: int,
        links: tuple[Link, ...],
        router: Callable[[int, int], tuple[int, ...]],
        bisection_bytes_per_s: float,
        cards_per_node: int | None = None,
    ) -> None:
        self.name = name
        self.cards = cards
        #: Cards and switches.
        self.vertices = vertices
        self.links = links
        #: Cards that share a node (scale-up domain); the whole topology where there is one node.
        self.cards_per_node = cards_per_node if cards_per_node is not None else cards
        self._router = router
        self._bisection = bisection_bytes_per_s
        self._route = lru_cache(maxsize=65536)(self._checked_route)

    def route(self, src: int, dst: int) -> tuple[int, ...]:
        """The indices of the links a message from card ``src`` to card ``dst`` crosses, in order."""
        return self._route(src, dst)

    def _checked_route(self, src: int, dst: int) -> tuple[int, ...]:
        for what, card in (("source", src), ("destination", dst)):
            if isinstance(card, bool) or not isinstance(card, int) or not 0 <= card < self.cards:
                raise AccelsimError(f"{what} card {card!r} is out of range; {self.name} has cards 0..{self.cards - 1}")
        return () if src == dst else self._router(src, dst)

    def route_latency_s(self, src: int, dst: int) -> float:
        """What a message from ``src`` to ``dst`` pays once, besides its bytes: its links' latencies summed."""
        return sum(self.links[i].latency_s for i in self.route(src, dst))

    def bisection_bytes_per_s(self) -> float:
        """Bytes/s that can cross, in one direction, the narrowest cut of the cards into two halves (sizes
        floor(n/2) and ceil(n/2)). Infinite for one card: there is nothing to cut."""
        return self._bisection

    def egress_bytes_per_s(self, card: int) -> float:
        """Bytes/s a card can send at once, over all its outgoing links."""
        return sum(link.bytes_per_s for link in self.links if link.src == card)


def _check_cards(n: object, what: str = "cards") -> int:
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_CARDS:
        raise AccelsimError(f"{what} must be an integer from 1 to {MAX_CARDS:,}, got {n!r}")
    return n


def _check_count(k: object, what: str) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_LINKS:
        raise AccelsimError(f"{what} must be an integer from 1 to {MAX_LINKS:,}, got {k!r}")
    return k


def _check_bandwidth(b: object, what: str) -> float:
    low, high = MIN_BANDWIDTH_GBPS * 1e9, MAX_BANDWIDTH_GBPS * 1e9
    if isinstance(b, bool) or not isinstance(b, int | float) or not math.isfinite(b) or not low <= b <= high:
        raise AccelsimError(f"{what} must be a finite number of bytes/s from {low:g} to {high:g}, got {b!r}")
    return float(b)


def _check_latency(s: object, what: str) -> float:
    if isinstance(s, bool) or not isinstance(s, int | float) or not math.isfinite(s) or not 0 <= s <= MAX_LATENCY_S:
        raise AccelsimError(f"{what} must be a finite number of seconds from 0 to {MAX_LATENCY_S:g}, got {s!r}")
    return float(s)


def all_to_all(n: int, link_bytes_per_s: float, latency_s: float, links_per_pair: int = 1) -> Topology:
    """A dedicated link between every ordered pair of cards, as Gaudi's integrated RoCE ports inside a server."""
    n = _check_cards(n)
    bw = _check_bandwidth(link_bytes_per_s, "link_bytes_per_s")
    lat = _check_latency(latency_s, "latency_s")
    k = _check_count(links_per_pair, "links_per_pair")
    links = tuple(Link(a, b, bw * k, lat, k) for a in range(n) for b in range(n) if a != b)

    def router(a: int, b: int) -> tuple[int, ...]:
        return (a * (n - 1) + (b if b < a else b - 1),)

    # Every balanced cut is crossed by floor(n/2) * ceil(n/2) pairs' links in each direction.
    bisection = (n // 2) * (n - n // 2) * bw * k if n > 1 else math.inf
    return Topology(f"all_to_all({n})", n, n, links, router, bisection)


def switch(n: int, port_bytes_per_s: float, latency_s: float, ports_per_card: int = 1) -> Topology:
    """Each card's uplink to one non-blocking switch (vertex n) and the switch's downlink to each card: a message
    crosses two links and pays ``latency_s`` on each."""
    n = _check_cards(n)
    bw = _check_bandwidth(port_bytes_per_s, "port_bytes_per_s")
    lat = _check_latency(latency_s, "latency_s")
    k = _check_count(ports_per_card, "ports_per_card")
    links = tuple(Link(c, n, bw * k, lat, k) for c in range(n)) + tuple(Link(n, c, bw * k, lat, k) for c in range(n))

    def router(a: int, b: int) -> tuple[int, ...]:
        return (a, n + b)

    # The smaller half's uplinks (with the switch on the other side) are the narrowest cut.
    bisection = (n // 2) * bw * k if n > 1 else math.inf
    return Topology(f"switch({n})", n, n + 1, links, router, bisection)


def ring(n: int, link_bytes_per_s: float, latency_s: float) -> Topology:
    """Links between neighbours only, both ways round (one each way for two cards); a message goes the short way
    round, forward (to higher numbers) on a tie, and crosses every card between."""
    n = _check_cards(n)
    bw = _check_bandwidth(link_bytes_per_s, "link_bytes_per_s")
    lat = _check_latency(latency_s, "latency_s")
    forward = tuple(Link(c, (c + 1) % n, bw, lat) for c in range(n)) if n > 1 else ()
    backward = tuple(Link(c, (c - 1) % n, bw, lat) for c in range(n)) if n > 2 else ()

    def router(a: int, b: int) -> tuple[int, ...]:
        ahead = (b - a) % n
        if ahead <= n - ahead or n == 2:
            return tuple((a + h) % n for h in range(ahead))
        return tuple(n + (a - h) % n for h in range(n - ahead))

    # Cutting a ring into two arcs cuts two links each way (one each way for two cards).
    bisection = math.inf if n == 1 else (bw if n == 2 else 2 * bw)
    return Topology(f"ring({n})", n, n, forward + backward, router, bisection)


def hierarchical(
    nodes: int,
    cards_per_node: int,
    intra: Callable[[int], Topology],
    inter_port_bytes_per_s: float,
    inter_latency_s: float,
    inter_ports_per_card: int = 1,
) -> Topology:
    """``nodes`` copies of the scale-up topology ``intra(cards_per_node)`` (e.g. ``functools.partial(all_to_all,
    link_bytes_per_s=..., latency_s=...)``), and every card's own scale-out port to one switch between the nodes.

    Card ``node * cards_per_node + local`` is card ``local`` of that node. A message between cards of one node
    takes the intra route; one between nodes goes up its card's port and down the other's (the scale-up fabric is
    not used to reach a port of another card, as NCCL's PXN would).
    """
    nodes = _check_cards(nodes, "nodes")
    per = _check_cards(cards_per_node, "cards_per_node")
    n = _check_cards(nodes * per, "nodes x cards_per_node")
    bw = _check_bandwidth(inter_port_bytes_per_s, "inter_port_bytes_per_s")
    lat = _check_latency(inter_latency_s, "inter_latency_s")
    k = _check_count(inter_ports_per_card, "inter_ports_per_card")
    local = intra(per)
    if not isinstance(local, Topology) or local.cards != per:
        raise AccelsimError(f"intra({per}) must return a Topology of {per} cards, got {local!r}")
    extra = local.vertices - per  # the node's own switches
    switch_vertex = n + nodes * extra

    def vertex(node: int, v: int) -> int:
        return node * per + v if v < per else n + node * extra + (v - per)

    links: list[Link] = []
    for node in range(nodes):
        links += [
            Link(vertex(node, x.src), vertex(node, x.dst), x.bytes_per_s, x.latency_s, x.lanes) for x in local.links
        ]
    base = len(links)
    links += [Link(c, switch_vertex, bw * k, lat, k) for c in range(n)]
    links += [Link(switch_vertex, c, bw * k, lat, k) for c in range(n)]
    per_node_links = len(local.links)

    def router(a: int, b: int) -> tuple[int, ...]:
        node_a, node_b = divmod(a, per), divmod(b, per)
        if node_a[0] == node_b[0]:
            offset = node_a[0] * per_node_links
            return tuple(offset + i for i in local.route(node_a[1], node_b[1]))
        return (base + a, base + n + b)

    # Every balanced cut: the smaller half's ports, plus, where the nodes cannot be split evenly whole, one node cut
    # through its scale-up fabric.
    split_node = nodes % 2 == 1 and per > 1
    bisection = (n // 2) * bw * k + (local.bisection_bytes_per_s() if split_node else 0.0) if n > 1 else math.inf
    name = f"hierarchical({nodes}x{local.name})"
    return Topology(name, n, switch_vertex + 1, tuple(links), router, bisection, cards_per_node=per)


class Interval(NamedTuple):
    """A message streaming on a link from ``start`` to ``end`` (cycles), for timelines."""

    link: int
    start: int
    end: int
    nbytes: int


class _Message:
    __slots__ = ("links", "remaining", "rate", "nbytes", "start", "latency", "arrived")

    def __init__(self, links: tuple[int, ...], nbytes: int, start: int, latency: int, arrived: simpy.Event) -> None:
        self.links = links
        self.remaining = float(nbytes)
        self.rate = 0.0
        self.nbytes = nbytes
        self.start = start
        self.latency = latency
        self.arrived = arrived


class Network:
    """Messages between the cards of a topology on a SimPy clock of ``clock_hz`` (time in whole cycles).

    ``transfer(src, dst, nbytes)`` returns an event that fires, with the cycle, when the message has arrived.
    Per link, ``busy_cycles(link)`` is the time it carried at least one message, ``bytes_carried[link]`` what it
    carried, and ``intervals`` lists (link, start, end, bytes) of every message on every link it crossed.
    """

    def __init__(self, env: simpy.Environment, topology: Topology, clock_hz: float) -> None:
        low, high = MIN_CLOCK_GHZ * 1e9, MAX_CLOCK_GHZ * 1e9
        if (
            isinstance(clock_hz, bool)
            or not isinstance(clock_hz, int | float)
            or not math.isfinite(clock_hz)
            or not low <= clock_hz <= high
        ):
            raise AccelsimError(f"clock_hz must be a finite number from {low:g} to {high:g}, got {clock_hz!r}")
        self.env = env
        self.topology = topology
        self.clock_hz = float(clock_hz)
        self.capacity = [link.bytes_per_s / self.clock_hz for link in topology.links]  # bytes per cycle
        n_links = len(topology.links)
        self.bytes_carried = [0] * n_links
        self.intervals: list[Interval] = []
        self._busy = [0] * n_links
        self._busy_since = [0] * n_links
        self._users = [0] * n_links  # messages streaming on each link now
        self._active: dict[int, _Message] = {}
        self._seq = 0
        self._last = 0
        self._update_pending = False
        self._generation = 0  # a wake-up from an older plan of rates finds this changed and does nothing
        self._latency_cycles: dict[tuple[int, ...], int] = {}

    def cycles(self, seconds: float) -> int:
        """Seconds as whole cycles of the network's clock, rounded up."""
        return math.ceil(seconds * self.clock_hz - _EPS)

    def seconds(self, cycles: int) -> float:
        return cycles / self.clock_hz

    def transfer(self, src: int, dst: int, nbytes: int) -> simpy.Event:
        """Send ``nbytes`` from card ``src`` to card ``dst`` now; the event fires when the last byte has arrived.

        A message to its own card arrives at once; an empty one pays only the route's latency."""
        if isinstance(nbytes, bool) or not isinstance(nbytes, int) or not 0 <= nbytes <= MAX_COUNT:
            raise AccelsimError(f"a message's bytes must be an integer from 0 to 2^62, got {nbytes!r}")
        route = self.topology.route(src, dst)
        arrived = self.env.event()
        now = self._now()
        if not route:
            arrived.succeed(now)
            return arrived
        latency = self._latency_cycles.get(route)
        if latency is None:
            latency = self.cycles(sum(self.topology.links[i].latency_s for i in route))
            if latency > MAX_CYCLES:
                raise AccelsimError(f"a route's latency of {latency:,} cycles is past {MAX_CYCLES:,}")
            self._latency_cycles[route] = latency
        message = _Message(route, nbytes, now, latency, arrived)
        if nbytes == 0:
            self._arrive_later(message)
            return arrived
        self._advance(now)
        self._active[self._seq] = message
        self._seq += 1
        for i in route:
            if not self._users[i]:
                self._busy_since[i] = now
            self._users[i] += 1
        if not self._update_pending:  # messages started in this cycle share one recomputation of the rates
            self._update_pending = True
            self.env.timeout(0).callbacks.append(self._update)
        return arrived

    def busy_cycles(self, link: int) -> int:
        """Cycles link ``link`` carried at least one message, up to now."""
        open_period = self._now() - self._busy_since[link] if self._users[link] else 0
        return self._busy[link] + open_period

    def utilization(self, until: int | None = None) -> list[float]:
        """Each link's busy fraction of the cycles from 0 to ``until`` (default now)."""
        end = self._now() if until is None else until
        return [self.busy_cycles(i) / end if end > 0 else 0.0 for i in range(len(self.capacity))]

    def _now(self) -> int:
        return cast(int, self.env.now)  # whole cycles: every delay scheduled here is an int

    def _arrive_later(self, message: _Message) -> None:
        def arrive(_event: object = None) -> None:
            message.arrived.succeed(self._now())

        if message.latency:
            self.env.timeout(message.latency).callbacks.append(arrive)
        else:
            arrive()

    def _advance(self, now: int) -> None:
        elapsed = now - self._last
        if elapsed:
            for message in self._active.values():
                message.remaining -= message.rate * elapsed
        self._last = now

    def _update(self, _event: object) -> None:
        self._update_pending = False
        self._settle()

    def _wake(self, event: simpy.Event) -> None:
        if event.value == self._generation:
            self._settle()

    def _settle(self) -> None:
        """Finish the messages whose bytes have all streamed, share the links anew, and book the next end."""
        now = self._now()
        self._advance(now)
        done = [key for key, m in self._active.items() if m.rate > 0 and m.remaining <= m.rate * _EPS]
        for key in done:
            message = self._active.pop(key)
            for i in message.links:
                self._users[i] -= 1
                if not self._users[i]:
                    self._busy[i] += now - self._busy_since[i]
                self.bytes_carried[i] += message.nbytes
                self.intervals.append(Interval(i, message.start, now, message.nbytes))
            self._arrive_later(message)
        self._share()
        self._generation += 1
        if self._active:
            wait = min(math.ceil(m.remaining / m.rate - _EPS) for m in self._active.values())
            self.env.timeout(max(wait, 0), self._generation).callbacks.append(self._wake)

    def _share(self) -> None:
        """Max-min fair rates by progressive filling: the link with the smallest fair share fixes the rate of every
        message still unfixed on it, and what those use is taken off the other links they cross."""
        left: dict[int, float] = {}
        unfixed: dict[int, list[_Message]] = {}
        for message in self._active.values():
            message.rate = -1.0
            for i in message.links:
                left[i] = self.capacity[i]
                unfixed.setdefault(i, []).append(message)
        count = {i: len(ms) for i, ms in unfixed.items()}
        heap = [(left[i] / c, i) for i, c in count.items()]  # a link's fair share; stale entries are skipped
        heapq.heapify(heap)
        while heap:
            share, link = heapq.heappop(heap)
            if link not in count or left[link] / count[link] != share:
                continue
            for message in unfixed[link]:
                if message.rate >= 0:
                    continue
                message.rate = share
                for i in message.links:
                    left[i] = max(left[i] - share, 0.0)
                    count[i] -= 1
                    if not count[i]:
                        del count[i]
                    elif i != link:
                        heapq.heappush(heap, (left[i] / count[i], i))
