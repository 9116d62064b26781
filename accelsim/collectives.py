"""Collectives as messages on a Network: each algorithm is a plan of transfers, each waiting on the ones the
algorithm makes it wait on, carried out by ``Network.transfer`` calls; with the alpha-beta times to check them.

Sizes follow NCCL's tests: ``nbytes`` is each card's buffer for all_reduce and broadcast, the input of
reduce_scatter (each card ends with nbytes/n), the output of all_gather (each card starts with nbytes/n), and each
card's send buffer for all_to_all (nbytes/n to every card). Buffers are cut into n parts whose sizes differ by at
most one byte. In every algorithm a connection's messages go in order: a message from card a to card b waits for
the one before it from a to b to have arrived. Reductions cost no time (the engines would do them; nothing here
knows of engines).

Algorithms:
- ``ring``: the cards in group order pass parts to the next card, one step after another; a step waits for the
  part the card received in the step before. reduce_scatter and all_gather take n-1 steps,
  all_reduce 2(n-1), all_to_all n-1 steps forwarding what is still to be delivered; broadcast pipelines n parts
  down the chain;
- ``direct``: every card sends every other card its part at once (all_reduce: reduce_scatter then all_gather,
  each card starting its sends when its own part is reduced; broadcast: the root sends to each card);
- ``hierarchical``: reduce_scatter inside each node, then the collective across nodes among the cards of the same
  local rank (each on its own part), then all_gather inside each node (for all_reduce, reduce_scatter and
  all_gather; which card ends with which part differs from the flat algorithms, the bytes do not). The steps
  inside a node use ``intra`` ("ring" or "direct"); across nodes, ring.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import simpy

from .errors import AccelsimError
from .network import Network, Topology

COLLECTIVES = ("all_reduce", "reduce_scatter", "all_gather", "all_to_all", "broadcast", "send_recv")
ALGORITHMS = ("ring", "direct", "hierarchical")


@dataclass(frozen=True)
class Transfer:
    """One message of a plan: it starts once every transfer in ``after`` (earlier indices) has arrived."""

    src: int
    dst: int
    nbytes: int
    after: tuple[int, ...] = ()


# Per card: the transfers that must have arrived before its data for the next phase is ready.
_Ready = dict[int, tuple[int, ...]]


def _check_op(op: str) -> None:
    if op not in COLLECTIVES:
        raise AccelsimError(f"unknown collective {op!r}; known: {', '.join(COLLECTIVES)}")


def _check_algorithm(algorithm: str, allowed: Sequence[str] = ALGORITHMS) -> None:
    if algorithm not in allowed:
        raise AccelsimError(f"unknown algorithm {algorithm!r}; known here: {', '.join(allowed)}")


def _check_bytes(nbytes: object) -> int:
    if isinstance(nbytes, bool) or not isinstance(nbytes, int) or not 0 <= nbytes <= 2**62:
        raise AccelsimError(f"a collective's bytes must be an integer from 0 to 2^62, got {nbytes!r}")
    return nbytes


def _check_group(group: Sequence[int]) -> list[int]:
    cards = list(group)
    if not cards:
        raise AccelsimError("a collective needs a group of at least 1 card, got none")
    for c in cards:
        if isinstance(c, bool) or not isinstance(c, int) or c < 0:
            raise AccelsimError(f"a group's cards must be card numbers (integers from 0), got {c!r}")
    if len(set(cards)) != len(cards):
        raise AccelsimError(f"a group names each card once, got {cards}")
    return cards


def split(nbytes: int, parts: int) -> list[int]:
    """``nbytes`` cut into ``parts`` sizes that differ by at most one byte, the larger first."""
    q, r = divmod(nbytes, parts)
    return [q + 1 if i < r else q for i in range(parts)]


class _Plan:
    """Transfers being planned. A connection's messages go in order, as NCCL's do: each waits for the one before
    it from the same card to the same card to have arrived. Without that a card fed early would start its next
    step on top of its last and slow both, and a faster link could make a slower collective."""

    def __init__(self) -> None:
        self.transfers: list[Transfer] = []
        self.last: dict[tuple[int, int], int] = {}  # per connection, its latest transfer

    def add(self, src: int, dst: int, nbytes: int, after: Sequence[int]) -> int:
        before = self.last.get((src, dst))
        deps = set(after) if before is None else {*after, before}
        self.transfers.append(Transfer(src, dst, nbytes, tuple(sorted(deps))))
        self.last[(src, dst)] = len(self.transfers) - 1
        return len(self.transfers) - 1

    def ring_steps(
        self, cards: list[int], steps: int, size: Callable[[int, int], int], ready: _Ready
    ) -> list[list[int]]:
        """``steps`` rounds in which card k sends ``size(step, k)`` bytes to card k+1, waiting for its data
        (``ready``) and the message it received in the round before. Returns each round's transfers, by sender."""
        n = len(cards)
        rounds: list[list[int]] = []
        for s in range(steps):
            before = rounds[-1] if rounds else None
            rounds.append(
                [
                    self.add(
                        c,
                        cards[(k + 1) % n],
                        size(s, k),
                        ready[c] + ((before[(k - 1) % n],) if before else ()),
                    )
                    for k, c in enumerate(cards)
                ]
            )
        return rounds

    def ring_reduce_scatter(self, cards: list[int], parts: list[int], ready: _Ready) -> _Ready:
        """Card k ends with part k reduced: at step s card k sends its partial sum of part k-s-1 to card k+1."""
        n = len(cards)
        rounds = self.ring_steps(cards, n - 1, lambda s, k: parts[(k - s - 1) % n], ready)
        return {c: ready[c] + ((rounds[-1][(k - 1) % n],) if rounds else ()) for k, c in enumerate(cards)}

    def ring_all_gather(self, cards: list[int], parts: list[int], ready: _Ready) -> _Ready:
        """Card k starts with part k: at step s it passes part k-s to card k+1."""
        n = len(cards)
        rounds = self.ring_steps(cards, n - 1, lambda s, k: parts[(k - s) % n], ready)
        return {c: ready[c] + tuple(r[(k - 1) % n] for r in rounds) for k, c in enumerate(cards)}

    def direct(self, cards: list[int], parts: list[int], ready: _Ready, gather: bool) -> _Ready:
        """Every card sends at once to every other: its own part (gather) or the part the other card owns."""
        received: dict[int, list[int]] = {c: [] for c in cards}
        for k, c in enumerate(cards):
            for j, d in enumerate(cards):
                if d != c:
                    received[d].append(self.add(c, d, parts[k] if gather else parts[j], ready[c]))
        return {c: ready[c] + tuple(received[c]) for c in cards}

    def ring_all_to_all(self, cards: list[int], nbytes: int, ready: _Ready) -> _Ready:
        """Step 1: card k sends card k+1 its parts for all the others; step s: it passes on what card k-s+1 sent
        for the n-s cards past it. Every card's part for card j has size parts[j], as in direct."""
        n = len(cards)
        parts = split(nbytes, n)

        def travelling(s: int, k: int) -> int:
            return sum(parts[(k + i) % n] for i in range(1, n - s))

        rounds = self.ring_steps(cards, n - 1, travelling, ready)
        return {c: ready[c] + tuple(r[(k - 1) % n] for r in rounds) for k, c in enumerate(cards)}

    def chain_broadcast(self, cards: list[int], nbytes: int, ready: _Ready) -> _Ready:
        """Cut into n parts pipelined down the chain from cards[0]: a hop sends part p once it holds it (and, as on
        every connection, once its part p-1 has arrived at the next card)."""
        n = len(cards)
        parts = split(nbytes, n)
        held: list[list[int]] = [[] for _ in range(n)]  # per card, the transfers that brought it each part
        for p, size in enumerate(parts):
            for h in range(n - 1):
                deps = ready[cards[h]] + ((held[h][p],) if h else ())
                held[h + 1].append(self.add(cards[h], cards[h + 1], size, deps))
        return {c: ready[c] + tuple(held[k]) for k, c in enumerate(cards)}


def _nodes(cards: list[int], cards_per_node: int) -> list[list[int]]:
    """The group's cards by node, in group order; every node must hold the same number of them."""
    by_node: dict[int, list[int]] = {}
    for c in cards:
        by_node.setdefault(c // cards_per_node, []).append(c)
    groups = list(by_node.values())
    if len({len(g) for g in groups}) != 1:
        sizes = {node: len(g) for node, g in by_node.items()}
        raise AccelsimError(f"hierarchical needs the same number of the group's cards on every node, got {sizes}")
    return groups


def plan(
    op: str,
    group: Sequence[int],
    nbytes: int,
    algorithm: str = "ring",
    *,
    cards_per_node: int | None = None,
    intra: str = "ring",
    root: int | None = None,
) -> list[Transfer]:
    """The transfers of collective ``op`` over ``group`` (pure: no clock, no network). For send_recv the group is
    [source, destination]; broadcast starts from ``root`` (default the group's first card)."""
    _check_op(op)
    _check_algorithm(algorithm)
    _check_algorithm(intra, ("ring", "direct"))
    nbytes = _check_bytes(nbytes)
    cards = _check_group(group)
    n = len(cards)
    p = _Plan()
    start: _Ready = {c: () for c in cards}
    if op == "send_recv":
        if n != 2:
            raise AccelsimError(f"send_recv's group is [source, destination], got {cards}")
        p.add(cards[0], cards[1], nbytes, ())
        return p.transfers
    if n == 1:
        return []
    if op == "broadcast":
        _check_algorithm(algorithm, ("ring", "direct"))
        first = cards[0] if root is None else root
        if first not in cards:
            raise AccelsimError(f"the broadcast's root {first!r} is not in the group {cards}")
        cards.remove(first)
        cards.insert(0, first)
        if algorithm == "ring":
            p.chain_broadcast(cards, nbytes, start)
        else:
            for d in cards[1:]:
                p.add(first, d, nbytes, ())
        return p.transfers
    if op == "all_to_all":
        _check_algorithm(algorithm, ("ring", "direct"))
        if algorithm == "ring":
            p.ring_all_to_all(cards, nbytes, start)
        else:
            p.direct(cards, split(nbytes, n), start, gather=False)
        return p.transfers
    if algorithm == "hierarchical":
        _hierarchical(p, op, cards, nbytes, cards_per_node if cards_per_node is not None else n, intra, start)
        return p.transfers
    parts = split(nbytes, n)
    if algorithm == "ring":
        if op in ("reduce_scatter", "all_reduce"):
            start = p.ring_reduce_scatter(cards, parts, start)
        if op in ("all_gather", "all_reduce"):
            p.ring_all_gather(cards, parts, start)
    else:
        if op in ("reduce_scatter", "all_reduce"):
            start = p.direct(cards, parts, start, gather=False)
        if op in ("all_gather", "all_reduce"):
            p.direct(cards, parts, start, gather=True)
    return p.transfers


def _hierarchical(p: _Plan, op: str, cards: list[int], nbytes: int, per: int, intra: str, ready: _Ready) -> None:
    nodes = _nodes(cards, per)
    local = len(nodes[0])
    shards = split(nbytes, local)  # what local rank r works on across nodes
    ranks = [[node[r] for node in nodes] for r in range(local)]  # the cards of local rank r, one per node

    def inside(cards_: list[int], ready_: _Ready, gather: bool) -> _Ready:
        if intra == "direct":
            return p.direct(cards_, shards, ready_, gather)
        return p.ring_all_gather(cards_, shards, ready_) if gather else p.ring_reduce_scatter(cards_, shards, ready_)

    if op in ("reduce_scatter", "all_reduce"):
        for node in nodes:
            ready.update(inside(node, ready, gather=False))
    for r, across in enumerate(ranks):
        parts = split(shards[r], len(across))
        if op in ("reduce_scatter", "all_reduce"):
            ready.update(p.ring_reduce_scatter(across, parts, ready))
        if op in ("all_gather", "all_reduce"):
            ready.update(p.ring_all_gather(across, parts, ready))
    if op in ("all_gather", "all_reduce"):
        for node in nodes:
            ready.update(inside(node, ready, gather=True))


def run_plan(net: Network, transfers: Sequence[Transfer], after: simpy.Event | None = None) -> simpy.Event:
    """Carry out ``transfers`` on ``net`` (once ``after`` has fired, if given): an event that fires, with the
    cycle, when every transfer has arrived."""
    env = net.env
    done = env.event()
    n = len(transfers)
    waiting = [len(t.after) for t in transfers]
    succs: list[list[int]] = [[] for _ in range(n)]
    for i, t in enumerate(transfers):
        for d in t.after:
            if not 0 <= d < i:
                raise AccelsimError(f"transfer {i} waits on {d}, which is not an earlier transfer")
            succs[d].append(i)
    left = n

    def arrived(i: int) -> None:
        nonlocal left
        left -= 1
        for s in succs[i]:
            waiting[s] -= 1
            if not waiting[s]:
                send(s)
        if not left:
            done.succeed(env.now)

    def send(i: int) -> None:
        t = transfers[i]
        net.transfer(t.src, t.dst, t.nbytes).callbacks.append(lambda _event: arrived(i))

    def begin(_event: object = None) -> None:
        if not n:
            done.succeed(env.now)
            return
        for i in range(n):
            if not waiting[i]:
                send(i)

    for t in transfers:  # refuse a card out of range before anything is sent
        net.topology.route(t.src, t.dst)
    if after is None:
        begin()
    else:
        after.callbacks.append(begin)
    return done


def collective(
    net: Network,
    op: str,
    group: Sequence[int],
    nbytes: int,
    algorithm: str = "ring",
    *,
    intra: str = "ring",
    root: int | None = None,
    after: simpy.Event | None = None,
) -> simpy.Event:
    """Run collective ``op`` over ``group`` on ``net``; the event fires, with the cycle, when every card is done."""
    transfers = plan(op, group, nbytes, algorithm, cards_per_node=net.topology.cards_per_node, intra=intra, root=root)
    return run_plan(net, transfers, after)


def all_reduce(
    net: Network,
    group: Sequence[int],
    nbytes: int,
    algorithm: str = "ring",
    *,
    intra: str = "ring",
    after: simpy.Event | None = None,
) -> simpy.Event:
    """Every card ends with the sum of every card's ``nbytes`` buffer."""
    return collective(net, "all_reduce", group, nbytes, algorithm, intra=intra, after=after)


def reduce_scatter(
    net: Network,
    group: Sequence[int],
    nbytes: int,
    algorithm: str = "ring",
    *,
    intra: str = "ring",
    after: simpy.Event | None = None,
) -> simpy.Event:
    """Every card ends with the sum of one n-th of every card's ``nbytes`` buffer."""
    return collective(net, "reduce_scatter", group, nbytes, algorithm, intra=intra, after=after)


def all_gather(
    net: Network,
    group: Sequence[int],
    nbytes: int,
    algorithm: str = "ring",
    *,
    intra: str = "ring",
    after: simpy.Event | None = None,
) -> simpy.Event:
    """Every card ends with every card's nbytes/n shard: ``nbytes`` in all."""
    return collective(net, "all_gather", group, nbytes, algorithm, intra=intra, after=after)


def all_to_all(
    net: Network, group: Sequence[int], nbytes: int, algorithm: str = "ring", *, after: simpy.Event | None = None
) -> simpy.Event:
    """Every card sends a different nbytes/n part of its buffer to every card."""
    return collective(net, "all_to_all", group, nbytes, algorithm, after=after)


def broadcast(
    net: Network,
    group: Sequence[int],
    nbytes: int,
    root: int | None = None,
    algorithm: str = "ring",
    *,
    after: simpy.Event | None = None,
) -> simpy.Event:
    """Every card ends with the root's ``nbytes`` (the root defaults to the group's first card)."""
    return collective(net, "broadcast", group, nbytes, algorithm, root=root, after=after)


def send_recv(net: Network, src: int, dst: int, nbytes: int, *, after: simpy.Event | None = None) -> simpy.Event:
    """One message from ``src`` to ``dst``."""
    return collective(net, "send_recv", [src, dst], nbytes, after=after)


def analytic_time_s(
    op: str,
    algorithm: str,
    n: int,
    nbytes: float,
    alpha_s: float,
    bytes_per_s: float,
    *,
    nodes: int = 1,
    inter_alpha_s: float = 0.0,
    inter_bytes_per_s: float = math.inf,
    intra: str = "ring",
) -> float:
    """The classic alpha-beta time of ``op`` on ``n`` cards: each message costs ``alpha_s`` plus its bytes over
    ``bytes_per_s``, where a card's link to the next card (ring) or to each other card (direct) is its own. For
    hierarchical, ``n`` cards in ``nodes`` nodes; alpha_s and bytes_per_s inside a node, inter_* across."""
    _check_op(op)
    _check_algorithm(algorithm)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise AccelsimError(f"n must be an integer of at least 1, got {n!r}")
    if not bytes_per_s > 0:
        raise AccelsimError(f"bytes_per_s must be positive, got {bytes_per_s!r}")
    s, a, b = float(nbytes), alpha_s, bytes_per_s
    if op == "send_recv":
        return a + s / b
    if n == 1:
        return 0.0
    if algorithm == "hierarchical":
        if op not in ("all_reduce", "reduce_scatter", "all_gather") or nodes < 1 or n % nodes:
            raise AccelsimError(f"hierarchical {op} on {n} cards in {nodes} nodes is not modelled")
        local, m = n // nodes, nodes
        inside = analytic_time_s("reduce_scatter", intra, local, s, a, b) if local > 1 else 0.0
        across = analytic_time_s(op, "ring", m, s / local, inter_alpha_s, inter_bytes_per_s) if m > 1 else 0.0
        return across + (2 * inside if op == "all_reduce" else inside)
    part = s / n
    ring = {
        "all_reduce": 2 * (n - 1) * (a + part / b),
        "reduce_scatter": (n - 1) * (a + part / b),
        "all_gather": (n - 1) * (a + part / b),
        "all_to_all": (n - 1) * a + (n - 1) * s / (2 * b),  # step s forwards (n-s)/n of the buffer
        "broadcast": (2 * n - 2) * (a + part / b),  # n parts down a chain of n-1 hops
    }
    direct = {
        "all_reduce": 2 * (a + part / b),
        "reduce_scatter": a + part / b,
        "all_gather": a + part / b,
        "all_to_all": a + part / b,
        "broadcast": a + s / b,
    }
    return (ring if algorithm == "ring" else direct)[op]


#: NCCL's bus-bandwidth factor per collective: busbw = algbw x factor, comparable with a link's peak bandwidth.
_BUS_FACTOR = {
    "all_reduce": lambda n: 2 * (n - 1) / n,
    "reduce_scatter": lambda n: (n - 1) / n,
    "all_gather": lambda n: (n - 1) / n,
    "all_to_all": lambda n: (n - 1) / n,
    "broadcast": lambda n: 1.0,
    "send_recv": lambda n: 1.0,
}


def algbw(nbytes: float, seconds: float) -> float:
    """NCCL's algorithm bandwidth, bytes/s: the buffer size over the time."""
    if not seconds > 0:
        raise AccelsimError(f"seconds must be positive, got {seconds!r}")
    return nbytes / seconds


def busbw(op: str, nbytes: float, seconds: float, n: int) -> float:
    """NCCL's bus bandwidth, bytes/s: algbw scaled so that it reads against the hardware's link bandwidth
    whatever the number of cards (2(n-1)/n for all_reduce, (n-1)/n for reduce_scatter, all_gather, all_to_all)."""
    _check_op(op)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise AccelsimError(f"n must be an integer of at least 1, got {n!r}")
    return algbw(nbytes, seconds) * _BUS_FACTOR[op](n)


def lower_bound_s(op: str, topology: Topology, nbytes: int) -> float:
    """No algorithm for ``op`` over all the topology's cards can be faster than this (without in-network
    reduction or compression): the larger of two cuts.

    - Bisection: with halves of floor(n/2) and ceil(n/2) cards, the bytes that must cross from one to the other,
      over the bisection bandwidth: all_reduce S (the far half needs a partial sum of every element),
      reduce_scatter and all_gather floor(n/2) parts of S/n (the far half's shards, the near half's parts),
      all_to_all floor(n/2) ceil(n/2) parts (a part is at least floor(S/n) whole bytes).
    - Injection: the bytes all cards must send in total, over all their outgoing links: all_reduce 2(n-1) S (for
      every element, all n cards learning a sum of n values takes at least 2(n-1) one-way messages),
      reduce_scatter, all_gather and all_to_all (n-1) S.
    """
    _check_op(op)
    s = float(_check_bytes(nbytes))
    n = topology.cards
    if n == 1 or op in ("broadcast", "send_recv"):
        return 0.0
    half, least_part = n // 2, float(nbytes // n)  # parts are whole bytes: the smallest is floor(S/n)
    crossing = {
        "all_reduce": s,
        "reduce_scatter": half * least_part,
        "all_gather": half * least_part,
        "all_to_all": half * (n - half) * least_part,
    }[op]
    total = (2 if op == "all_reduce" else 1) * (n - 1) * s
    egress = sum(topology.egress_bytes_per_s(c) for c in range(n))
    return max(crossing / topology.bisection_bytes_per_s(), total / egress)
