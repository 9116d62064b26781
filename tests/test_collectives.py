"""accelsim.collectives: algorithms as transfers on a Network, against the alpha-beta model, NCCL's bus bandwidth
and the bandwidth lower bounds. Every network runs at 1 GHz: X GB/s is X bytes per cycle, 1 us is 1,000 cycles.
"""

import functools

import pytest
import simpy
from hypothesis import example, given
from hypothesis import strategies as st

from accelsim import collectives as co
from accelsim import network as nw
from accelsim.errors import AccelsimError

GHZ = 1e9


def run(topology, op, nbytes, algorithm="ring", group=None, **kw):
    """Cycles the collective takes over ``group`` (default every card) on a fresh network, and the network."""
    env = simpy.Environment()
    net = nw.Network(env, topology, GHZ)
    done = co.collective(net, op, list(range(topology.cards)) if group is None else group, nbytes, algorithm, **kw)
    env.run()
    assert done.triggered and done.value == env.now
    return done.value, net


def steps_tolerance(steps):
    """Each step rounds its streaming and its latency up to a whole cycle: at most 2 cycles a step."""
    return 2 * steps


@pytest.mark.parametrize("n", [2, 3, 5, 8])
@pytest.mark.parametrize("fabric", [nw.ring, nw.all_to_all])
def test_ring_all_reduce_matches_the_alpha_beta_model(n, fabric):
    s, b, alpha = 3 * 2**20 + 7, 50e9, 2e-6
    cycles, _ = run(fabric(n, b, alpha), "all_reduce", s)
    # 2(n-1) steps of alpha + S/(nB): for n = 8, 14 x (2,000 + 7,864.3) = 138,100 cycles.
    expected = co.analytic_time_s("all_reduce", "ring", n, s, alpha, b) * GHZ
    assert expected - 1 <= cycles <= expected + steps_tolerance(2 * (n - 1))


@pytest.mark.parametrize("op", ["reduce_scatter", "all_gather", "all_to_all", "broadcast"])
@pytest.mark.parametrize("algorithm", ["ring", "direct"])
def test_every_flat_algorithm_matches_its_alpha_beta_time_on_a_per_pair_fabric(op, algorithm):
    n, s, b, alpha = 6, 10**7 + 3, 20e9, 1e-6
    cycles, _ = run(nw.all_to_all(n, b, alpha), op, s, algorithm)
    expected = co.analytic_time_s(op, algorithm, n, s, alpha, b) * GHZ
    assert expected - 1 <= cycles <= expected + steps_tolerance(2 * n)


def test_direct_all_reduce_beats_ring_when_every_pair_has_its_own_link():
    topology = nw.all_to_all(8, 100e9, 1e-6)
    ring, _ = run(topology, "all_reduce", 2**30, "ring")
    direct, _ = run(topology, "all_reduce", 2**30, "direct")
    # Ring: 14 x (1,000 + 1,342,177.3) cycles; direct: 2 x (1,000 + 1,342,177.3), 7x faster.
    assert direct * 6.9 < ring
    # On one switch port per card, direct's 7 messages share the port and the advantage is gone.
    on_switch = nw.switch(8, 100e9, 1e-6)
    assert run(on_switch, "all_reduce", 2**30, "direct")[0] >= 0.99 * run(on_switch, "all_reduce", 2**30, "ring")[0]


def two_nodes_of_four(intra_bw=300e9, inter_bw=25e9):
    intra = functools.partial(nw.all_to_all, link_bytes_per_s=intra_bw, latency_s=1e-6)
    return nw.hierarchical(2, 4, intra, inter_bw, 1e-6)


def test_hierarchical_all_reduce_on_two_nodes_of_four_lies_between_the_bounds():
    topology = two_nodes_of_four()
    s = 2**30
    cycles, _ = run(topology, "all_reduce", s, "hierarchical")
    # Reduce-scatter in the node (3 steps of 1 us + 256 MiB / 300 GB/s), ring all-reduce of 256 MiB across the
    # two nodes (2 steps of 2 us, port up and down, + 128 MiB / 25 GB/s), all-gather in the node: 26.3 ms.
    analytic = co.analytic_time_s(
        "all_reduce", "hierarchical", 8, s, 1e-6, 300e9, nodes=2, inter_alpha_s=2e-6, inter_bytes_per_s=25e9
    )
    assert co.lower_bound_s("all_reduce", topology, s) * GHZ <= cycles <= analytic * GHZ + steps_tolerance(8)
    assert cycles >= analytic * GHZ - 1
    # A flat ring over all 8 cards crosses the nodes' 25 GB/s ports and is about 2.8x slower.
    flat, _ = run(topology, "all_reduce", s, "ring")
    assert flat > 2.5 * cycles


def test_hierarchical_reduce_scatter_and_all_gather_take_their_two_phases():
    topology = two_nodes_of_four()
    s = 2**24
    for op in ("reduce_scatter", "all_gather"):
        cycles, _ = run(topology, op, s, "hierarchical", intra="direct")
        analytic = co.analytic_time_s(
            op, "hierarchical", 8, s, 1e-6, 300e9, nodes=2, inter_alpha_s=2e-6, inter_bytes_per_s=25e9, intra="direct"
        )
        assert analytic * GHZ - 1 <= cycles <= analytic * GHZ + steps_tolerance(4)


def test_ring_all_reduce_moves_two_n_minus_one_over_n_of_the_buffer_out_of_every_card():
    n, s = 5, 1003
    transfers = co.plan("all_reduce", range(n), s, "ring")
    sent = [sum(t.nbytes for t in transfers if t.src == c) for c in range(n)]
    # Parts of 201, 201, 201, 200, 200 B. Card k reduces and passes on every part but its own (part k), then
    # passes on every part but the one it receives last (part k+1): 2(n-1) parts, 2(n-1)/n of the buffer.
    parts = co.split(s, n)
    assert sent == [2 * s - parts[k] - parts[(k + 1) % n] for k in range(n)] and sum(sent) == 2 * (n - 1) * s
    assert all(d < i for i, t in enumerate(transfers) for d in t.after)


@pytest.mark.parametrize("op", ["all_reduce", "all_to_all", "broadcast"])
@pytest.mark.parametrize("algorithm", ["ring", "direct", "hierarchical"])
def test_a_connections_messages_go_in_order(op, algorithm):
    if algorithm == "hierarchical" and op != "all_reduce":
        return
    transfers = co.plan(op, range(6), 6001, algorithm, cards_per_node=3)
    last = {}
    for i, t in enumerate(transfers):
        key = (t.src, t.dst)
        assert key not in last or last[key] in t.after
        last[key] = i


def test_nccl_bandwidths():
    # All-reduce of 1 GB in 10 ms on 8 cards: algbw 100 GB/s, busbw x 2 x 7/8 = 175 GB/s.
    assert co.algbw(1e9, 0.01) == pytest.approx(100e9)
    assert co.busbw("all_reduce", 1e9, 0.01, 8) == pytest.approx(175e9)
    assert co.busbw("all_gather", 1e9, 0.01, 8) == pytest.approx(87.5e9)
    assert co.busbw("send_recv", 1e9, 0.01, 2) == pytest.approx(100e9)
    # A large ring all-reduce's busbw is its links' bandwidth: what NCCL's busbw was made to show.
    s = 2**30
    cycles, _ = run(nw.ring(8, 100e9, 1e-6), "all_reduce", s)
    assert co.busbw("all_reduce", s, cycles / GHZ, 8) == pytest.approx(100e9, rel=2e-3)


def test_a_collective_over_part_of_the_cards_and_after_an_event():
    env = simpy.Environment()
    net = nw.Network(env, nw.switch(6, 10e9, 0.0), GHZ)
    gate = env.timeout(500)
    done = co.all_gather(net, [1, 3, 5], 3000, "direct", after=gate)
    env.run()
    # From cycle 500 each of 3 cards sends its 1000 B shard to 2 others through its 10 B/cycle uplink: 200 cycles.
    assert done.value == 700
    assert {i.link for i in net.intervals} == {1, 3, 5, 6 + 1, 6 + 3, 6 + 5}  # only their up- and downlinks
    one, _ = run(nw.ring(4, 1e9, 1e-6), "all_reduce", 10**6, group=[2])
    assert one == 0


def test_send_recv_is_one_message():
    env = simpy.Environment()
    net = nw.Network(env, nw.ring(4, 10e9, 1e-6), GHZ)
    done = co.send_recv(net, 3, 1, 100)
    env.run()
    # Two hops backward: 10 cycles of streaming, 2 x 1,000 cycles of latency.
    assert done.value == 2010


def test_the_same_collective_ends_on_the_same_cycle():
    topology = two_nodes_of_four(inter_bw=33e9)
    first = run(topology, "all_reduce", 123_457, "ring")
    second = run(topology, "all_reduce", 123_457, "ring")
    assert first[0] == second[0] and first[1].intervals == second[1].intervals


@pytest.mark.parametrize(
    "call, says",
    [
        (lambda net: co.collective(net, "all_sum", [0, 1], 10), "unknown collective 'all_sum'"),
        (lambda net: co.all_reduce(net, [0, 1], 10, "tree"), "unknown algorithm 'tree'"),
        (lambda net: co.all_reduce(net, [0, 1], 10, "ring", intra="tree"), "unknown algorithm 'tree'"),
        (lambda net: co.all_to_all(net, [0, 1], 10, "hierarchical"), "unknown algorithm 'hierarchical'"),
        (lambda net: co.all_reduce(net, [], 10), "at least 1 card"),
        (lambda net: co.all_reduce(net, [0, 0], 10), "each card once"),
        (lambda net: co.all_reduce(net, [0, 8], 10), "card 8 is out of range"),
        (lambda net: co.all_reduce(net, [0, 1], -5), "bytes"),
        (lambda net: co.all_reduce(net, [0, 1, 4], 10, "hierarchical"), "same number"),
        (lambda net: co.broadcast(net, [0, 1], 10, root=2), "root 2"),
        (lambda net: co.busbw("all_reduce", 10, 1.0, 0), "n must be"),
        (lambda net: co.algbw(10, 0.0), "seconds"),
        (lambda net: co.analytic_time_s("all_reduce", "ring", 0, 10, 0.0, 1e9), "n must be"),
    ],
)
def test_bad_requests_are_one_line_errors(call, says):
    net = nw.Network(simpy.Environment(), two_nodes_of_four(), GHZ)
    with pytest.raises(AccelsimError, match=says) as err:
        call(net)
    assert "\n" not in str(err.value)


# Properties: small fabrics of every kind, any collective and algorithm that applies.


@st.composite
def fabrics(draw):
    kind = draw(st.sampled_from(["ring", "all_to_all", "switch", "hierarchical"]))
    bw = draw(st.floats(1e9, 1e12))
    latency = draw(st.sampled_from([0.0, 1e-7, 1e-6, 3.3e-6]))
    if kind == "hierarchical":
        intra = draw(st.sampled_from([nw.ring, nw.all_to_all, nw.switch]))
        nodes, per = draw(st.integers(1, 3)), draw(st.integers(1, 3))
        inter = draw(st.floats(1e9, 1e12))
        return kind, (nodes, per, intra, bw, inter, latency)
    return kind, (draw(st.integers(1, 6)), bw, latency)


def build(kind, params, scale=1.0, inter_scale=1.0):
    if kind == "hierarchical":
        nodes, per, intra, bw, inter, latency = params
        local = functools.partial(
            intra,
            **{"link_bytes_per_s" if intra is not nw.switch else "port_bytes_per_s": bw * scale, "latency_s": latency},
        )
        return nw.hierarchical(nodes, per, local, inter * inter_scale, latency)
    n, bw, latency = params
    return getattr(nw, kind)(n, bw * scale, latency)


OPS = ["all_reduce", "reduce_scatter", "all_gather", "all_to_all"]


def algorithms_for(op):
    return ["ring", "direct"] + (["hierarchical"] if op != "all_to_all" else [])


@given(fabric=fabrics(), op=st.sampled_from(OPS), pick=st.integers(0, 2), nbytes=st.integers(0, 10**9))
def test_no_collective_beats_its_bandwidth_lower_bound(fabric, op, pick, nbytes):
    topology = build(*fabric)
    algorithm = algorithms_for(op)[pick % len(algorithms_for(op))]
    cycles, _ = run(topology, op, nbytes, algorithm)
    assert cycles / GHZ >= co.lower_bound_s(op, topology, nbytes) * (1 - 1e-9)


@given(
    fabric=fabrics(),
    op=st.sampled_from(OPS),
    pick=st.integers(0, 2),
    nbytes=st.integers(0, 10**9),
    scale=st.floats(1.0, 8.0),
    inter_scale=st.floats(1.0, 8.0),
)
# Found by this test: a ring step whose card was fed early over the faster link between the nodes started on top
# of its own previous message and slowed it, 21 cycles against 20, until a connection's messages went in order.
@example(("hierarchical", (2, 3, nw.ring, 1e9, 1e9, 0.0)), "all_reduce", 0, 12, 1.0, 2.0)
def test_more_link_bandwidth_never_makes_a_collective_slower(fabric, op, pick, nbytes, scale, inter_scale):
    algorithm = algorithms_for(op)[pick % len(algorithms_for(op))]
    before, _ = run(build(*fabric), op, nbytes, algorithm)
    after, _ = run(build(*fabric, scale=scale, inter_scale=inter_scale), op, nbytes, algorithm)
    assert after <= before
