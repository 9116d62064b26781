"""Systems of many cards: nodes of identical accelerator cards, a fabric inside each node (scale-up) and a network
between nodes (scale-out), loaded from ``systems/*.toml`` and validated on load.

A new system is a new file. A system names a chip profile (``chips/*.toml``) for its cards; the profile is loaded
with the system, so a system that names a chip that does not exist or does not load is refused.

Every bandwidth is in GB/s per direction (what one side can send while the other sends as much back). The derived
figures (System's properties) are peaks from the link counts and rates, with no protocol overhead:

* per-card scale-up bandwidth, what one card can send into its node's fabric at once, for ``n`` cards per node and
  ``L = links x link_gbps``: all-to-all ``(n - 1) x L`` (L to each peer); ring ``min(2, n - 1) x L`` (L to each
  neighbour); switch ``L`` (the card's links to the switch);
* bisection bandwidth of a node, what crosses the worst cut of its cards into two halves (``floor(n/2)`` and
  ``ceil(n/2)`` cards): all-to-all ``floor(n/2) x ceil(n/2) x L`` (every pair across the cut has its own links);
  ring ``min(2, n - 1) x L`` (a cut crosses the ring twice); switch ``floor(n/2) x L`` (a non-blocking switch: each
  card of the smaller half sends at its full rate);
* per-card scale-out bandwidth: ``ports_per_card x port_gbps``;
* bisection bandwidth of the system: one node, the node's; more, the cut between two halves of the nodes, the
  smaller half's ``floor(nodes/2) x cards_per_node`` cards each sending at its scale-out rate through a
  non-blocking switched network.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, Strict
from pydantic.dataclasses import dataclass as pydantic_dataclass

from .chip import Chip, chip_from_dict, chip_spec_dict, load_chip
from .config import STRICT, BandwidthGbps, build, read_toml
from .errors import AccelsimError
from .limits import MAX_CARDS, MAX_LATENCY_US, MAX_LINKS
from .resources import resolve, shipped_names

#: Cards in a node, or nodes in a system.
CardCount = Annotated[int, Strict(), Field(ge=1, le=MAX_CARDS)]
#: Links per card pair or per card.
LinkCount = Annotated[int, Strict(), Field(ge=1, le=MAX_LINKS)]
#: Network ports per card: a fraction where cards share a NIC (two cards per port: 0.5).
PortCount = Annotated[float, Strict(), Field(gt=0, le=MAX_LINKS, allow_inf_nan=False)]
LatencyUs = Annotated[float, Strict(), Field(ge=0, le=MAX_LATENCY_US, allow_inf_nan=False)]

Topology = Literal["all-to-all", "switch", "ring"]
TOPOLOGIES = ("all-to-all", "switch", "ring")


@pydantic_dataclass(config=STRICT)
class ScaleUpSpec:
    """The fabric inside a node (NVLink to NVSwitch, Gaudi's RoCE ports wired card to card)."""

    #: ``all-to-all``: every pair of cards has its own links; ``ring``: each card has links to its two neighbours;
    #: ``switch``: every card has links to a non-blocking switch, which connects any pair.
    topology: Topology
    #: GB/s per direction of one link: between a pair of cards (all-to-all, ring), or card to switch (switch).
    link_gbps: BandwidthGbps
    #: Links per card pair (all-to-all, ring), or per card to the switch (switch).
    links: LinkCount
    #: Fixed latency of one message across the fabric, microseconds.
    latency_us: LatencyUs


@pydantic_dataclass(config=STRICT)
class ScaleOutSpec:
    """The network between nodes (InfiniBand, Ethernet): each card's ports to a switched network."""

    #: Network ports per card; a fraction where cards share one (DGX-2: 8 NICs for 16 GPUs, 0.5).
    ports_per_card: PortCount
    #: GB/s per direction of one port (a 200 Gb/s port: 25).
    port_gbps: BandwidthGbps
    #: Fixed latency of one message between nodes, microseconds.
    latency_us: LatencyUs
    #: The network is a non-blocking switched fabric (a fat tree); the only topology modelled.
    topology: Literal["switch"] = "switch"


@pydantic_dataclass(config=STRICT)
class SystemSpec:
    """The file's content, as written."""

    name: str
    #: The cards' chip profile: a shipped chip's name (``chips/*.toml``) or a path to a profile (relative paths
    #: from the system file's folder).
    chip: str
    #: Cards in one node (a server: 8 in a DGX or an HLS).
    cards_per_node: CardCount
    scale_up: ScaleUpSpec
    description: str = ""
    #: Nodes in the system; more than one needs ``[scale_out]``.
    nodes: CardCount = 1
    scale_out: ScaleOutSpec | None = None
    #: Time each collective of a step costs beyond its messages, microseconds: the communication library's set-up
    #: of the call and the cards' synchronisation before it (HCCL, NCCL under DeepSpeed or Megatron). Added to every
    #: collective task on the cards' network engines.
    collective_overhead_us: LatencyUs = 0.0


@dataclass(frozen=True)
class System:
    """A validated system with its cards' chip loaded; the derived bandwidths are documented in the module."""

    spec: SystemSpec
    chip: Chip
    source: str

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def total_cards(self) -> int:
        return self.spec.cards_per_node * self.spec.nodes

    @property
    def _link_group_gbps(self) -> float:
        """L: the bandwidth of one card pair's links (all-to-all, ring) or of one card's links to the switch."""
        up = self.spec.scale_up
        return up.links * up.link_gbps

    @property
    def _ring_neighbours(self) -> int:
        return min(2, self.spec.cards_per_node - 1)

    @property
    def scale_up_gbps_per_card(self) -> float:
        """GB/s per direction one card can send into its node's fabric at once."""
        n, bw = self.spec.cards_per_node, self._link_group_gbps
        topology = self.spec.scale_up.topology
        if topology == "all-to-all":
            return (n - 1) * bw
        if topology == "ring":
            return self._ring_neighbours * bw
        return bw

    @property
    def node_bisection_gbps(self) -> float:
        """GB/s per direction across the worst cut of a node's cards into two halves."""
        n, bw = self.spec.cards_per_node, self._link_group_gbps
        topology = self.spec.scale_up.topology
        if topology == "all-to-all":
            return (n // 2) * (n - n // 2) * bw
        if topology == "ring":
            return self._ring_neighbours * bw
        return (n // 2) * bw

    @property
    def scale_out_gbps_per_card(self) -> float:
        """GB/s per direction one card can send to other nodes (0 without a scale-out network)."""
        out = self.spec.scale_out
        return 0.0 if out is None else out.ports_per_card * out.port_gbps

    @property
    def bisection_gbps(self) -> float:
        """GB/s per direction across the cut between two halves of the system (a node's bisection for one node)."""
        if self.spec.nodes == 1:
            return self.node_bisection_gbps
        return (self.spec.nodes // 2) * self.spec.cards_per_node * self.scale_out_gbps_per_card

    def card_chip(self, tensor_parallel: int, data_parallel: int = 1, nodes: int | None = None) -> Chip:
        """One card of a layout of ``tensor_parallel`` x ``data_parallel`` cards on ``nodes`` nodes of this system
        (default: its own), tensor-parallel groups inside a node and the card numbering tensor rank first: the
        system's chip with two network engine groups, "net" for its tensor group's collectives on the node's
        fabric and "net_dp" for its data group's (the cards of the same tensor rank in every replica: inside a
        node on its fabric, across nodes on the scale-out network, hierarchically where a node holds several).
        A tensor group larger than a node is refused: it would cross the scale-out network."""
        n = self.spec.cards_per_node
        nodes = self.spec.nodes if nodes is None else nodes
        if not 1 <= tensor_parallel <= n or n % tensor_parallel:
            raise AccelsimError(
                f"tensor parallelism over {tensor_parallel} cards; a node of {self.name} has {n}: a tensor group "
                f"must fit in a node and divide it (1 to {n}, a divisor of {n})",
                source=self.source,
                key="cards",
            )
        replicas_per_node = n // tensor_parallel
        if data_parallel > replicas_per_node * nodes:
            raise AccelsimError(
                f"{tensor_parallel} x {data_parallel} cards do not fit {nodes} node(s) of {n} cards of {self.name}",
                source=self.source,
                key="nodes",
            )
        up, out = self.spec.scale_up, self.spec.scale_out
        fabric = {
            "kind": "network",
            "count": 1,
            "topology": up.topology,
            "link_gbps": up.link_gbps,
            "links": up.links,
            "latency_us": up.latency_us,
            "overhead_us": self.spec.collective_overhead_us,
            # a dedicated link to every peer: each card sends each its part at once; else NCCL's ring
            "algorithm": "direct" if up.topology == "all-to-all" else "ring",
        }
        data = {**fabric, "kind": "data_network", "cards": data_parallel}
        if data_parallel > replicas_per_node:
            if out is None or data_parallel % replicas_per_node:
                raise AccelsimError(
                    f"{data_parallel} replicas span nodes of {replicas_per_node}: needs a [scale_out] network and a "
                    f"multiple of {replicas_per_node} replicas",
                    source=self.source,
                    key="scale_out",
                )
            data.update(
                cards_per_node=replicas_per_node,
                inter_port_gbps=out.ports_per_card * out.port_gbps,
                inter_latency_us=out.latency_us,
            )
        profile = chip_spec_dict(self.chip)
        profile["engines"]["net"] = {**fabric, "cards": tensor_parallel}
        profile["engines"]["net_dp"] = data
        return chip_from_dict(profile, self.chip.source)

    def summary(self) -> SystemSummary:
        return SystemSummary(
            name=self.name,
            description=self.spec.description,
            chip=self.chip.name,
            cards_per_node=self.spec.cards_per_node,
            nodes=self.spec.nodes,
            total_cards=self.total_cards,
            scale_up=asdict(self.spec.scale_up),
            scale_out=None if self.spec.scale_out is None else asdict(self.spec.scale_out),
            scale_up_gbps_per_card=self.scale_up_gbps_per_card,
            scale_out_gbps_per_card=self.scale_out_gbps_per_card,
            node_bisection_gbps=self.node_bisection_gbps,
            bisection_gbps=self.bisection_gbps,
            collective_overhead_us=self.spec.collective_overhead_us,
        )


@dataclass(frozen=True)
class SystemSummary:
    """A system's figures as written and as derived (``accelsim systems``; ``asdict`` gives the JSON)."""

    name: str
    description: str
    chip: str
    cards_per_node: int
    nodes: int
    total_cards: int
    scale_up: dict[str, object]
    scale_out: dict[str, object] | None
    scale_up_gbps_per_card: float
    scale_out_gbps_per_card: float
    node_bisection_gbps: float
    bisection_gbps: float
    collective_overhead_us: float = 0.0


def system_from_dict(data: dict, source: str = "<dict>") -> System:
    """Validate a system given as a dict (the parsed TOML) and load its chip profile."""
    spec = build(SystemSpec, data, source)
    total = spec.cards_per_node * spec.nodes
    if total > MAX_CARDS:
        raise AccelsimError(
            f"cards_per_node x nodes is {total:,} cards; a system may have at most {MAX_CARDS:,}",
            source=source,
            key="nodes",
        )
    if spec.nodes > 1 and spec.scale_out is None:
        raise AccelsimError(
            f"a system of {spec.nodes:,} nodes needs a [scale_out] table (the network between nodes)",
            source=source,
            key="scale_out",
        )
    return System(spec, _load_card_chip(spec.chip, source), source)


def _load_card_chip(name: str, source: str) -> Chip:
    """The chip profile a system names: a shipped chip, or a path (relative to the system file's folder)."""
    candidates = [Path(name)]
    if source != "<dict>" and not Path(name).is_absolute():
        candidates.insert(0, Path(source).parent / name)
    path = next((p for p in candidates if _is_file(p)), None)
    if path is None and name.removesuffix(".toml") not in shipped_names("chips"):
        raise AccelsimError(
            f"unknown chip {name!r}; allowed: a shipped chip ({', '.join(shipped_names('chips'))}) or the path of "
            "a chip profile",
            source=source,
            key="chip",
        )
    try:
        return load_chip(path if path is not None else name.removesuffix(".toml"))
    except AccelsimError as exc:
        raise AccelsimError(f"chip {name!r} does not load: {exc}", source=source, key="chip") from None


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):  # a parent that cannot be searched, a NUL byte
        return False


def load_system(name_or_path: str | Path) -> System:
    """Load a system by shipped name (``dgx-h100``) or by path; every problem is an AccelsimError."""
    path = resolve(name_or_path, "systems")
    return system_from_dict(read_toml(path), str(path))
