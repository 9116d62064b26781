"""accelsim.network: topologies, and messages sharing links max-min fairly on an integer-cycle SimPy clock.

Every network here runs at 1 GHz, so a bandwidth of X GB/s is X bytes per cycle and 1 us is 1,000 cycles. Expected
cycles are worked out by hand in the comment above each assertion.
"""

import functools
import math

import pytest
import simpy

from accelsim.errors import AccelsimError
from accelsim.network import Interval, Network, all_to_all, hierarchical, ring, switch

GHZ = 1e9


def net_of(topology):
    env = simpy.Environment()
    return env, Network(env, topology, GHZ)


def send_at(env, net, cycle, src, dst, nbytes):
    """The arrival event of a message sent at ``cycle``, as a one-item list filled in once it is sent."""
    box = []
    if cycle == 0:
        box.append(net.transfer(src, dst, nbytes))
    else:
        env.timeout(cycle).callbacks.append(lambda _e: box.append(net.transfer(src, dst, nbytes)))
    return box


def test_one_message_on_an_idle_link_takes_its_latency_plus_its_bytes_over_the_bandwidth():
    env, net = net_of(all_to_all(2, 10e9, 0.5e-6))
    arrived = net.transfer(0, 1, 1005)
    env.run()
    # 1005 B at 10 B/cycle = 100.5 -> 101 cycles of streaming (ends on the next whole cycle), then 0.5 us = 500
    # cycles of latency: 601.
    assert arrived.value == 601 and env.now == 601
    # The link carried it from 0 to 101.
    assert net.intervals == [Interval(0, 0, 101, 1005)]
    assert net.busy_cycles(0) == 101 and net.bytes_carried == [1005, 0]
    assert net.utilization() == [pytest.approx(101 / 601), 0.0]


def test_two_messages_on_one_link_take_twice_as_long_and_on_disjoint_links_as_long_as_one():
    env, net = net_of(all_to_all(3, 10e9, 1e-6))
    a, b = net.transfer(0, 1, 1000), net.transfer(0, 1, 1000)
    c = net.transfer(1, 0, 1000)  # the other direction is another link
    d = net.transfer(2, 1, 1000)  # so is another card's link to card 1
    env.run()
    # Sharing 0->1 each gets 5 B/cycle: 1000 B in 200 cycles, + 1000 cycles of latency. Alone: 100 + 1000.
    assert (a.value, b.value) == (1200, 1200)
    assert (c.value, d.value) == (1100, 1100)


def test_a_message_that_joins_late_shares_from_the_cycle_it_joins():
    env, net = net_of(ring(2, 10e9, 0.0))
    first = send_at(env, net, 0, 0, 1, 1000)
    second = send_at(env, net, 40, 0, 1, 1000)
    env.run()
    # 0..40: the first alone at 10 B/cycle moves 400 B. From 40 each gets 5 B/cycle: the first's 600 B take 120
    # cycles -> 160, when the second has moved 600 B; its last 400 B alone take 40 cycles -> 200.
    assert (first[0].value, second[0].value) == (160, 200)
    # The link was busy without a break from 0 to 200.
    assert net.busy_cycles(0) == 200
    assert sorted(net.intervals) == [Interval(0, 0, 160, 1000), Interval(0, 40, 200, 1000)]


def test_links_are_shared_max_min_fairly_along_routes():
    env, net = net_of(switch(4, 30e9, 0.0))
    to3 = [net.transfer(c, 3, 300) for c in range(3)]
    aside = net.transfer(0, 1, 200)
    env.run()
    # Switch downlink 3 carries three messages: 10 B/cycle each. Card 0's uplink carries 0->3 (held to 10 by the
    # downlink) and 0->1, which gets the other 20 (plain sharing would give it 15): 200 B in 10 cycles.
    assert aside.value == 10
    # Meanwhile the three moved 100 B each; nothing else limits them, 200 B more at 10 B/cycle -> 30.
    assert [e.value for e in to3] == [30, 30, 30]


def test_busy_time_counts_only_cycles_with_a_message_on_the_link():
    env, net = net_of(ring(2, 10e9, 0.0))
    send_at(env, net, 0, 0, 1, 100)
    send_at(env, net, 50, 0, 1, 100)
    env.run()
    # 0..10 and 50..60 busy; idle between.
    assert net.busy_cycles(0) == 20 and env.now == 60
    assert net.utilization(until=100)[0] == pytest.approx(0.2)


def test_an_empty_message_pays_only_latency_and_one_to_its_own_card_arrives_at_once():
    env, net = net_of(switch(2, 10e9, 1e-6))
    empty = net.transfer(0, 1, 0)
    own = net.transfer(1, 1, 10**6)
    env.run()
    # Two links of 1 us each: 2000 cycles, no streaming; nothing crossed a link.
    assert empty.value == 2000 and own.value == 0
    assert net.intervals == [] and net.busy_cycles(0) == 0


def test_latency_is_paid_once_per_message_over_the_whole_route():
    env, net = net_of(ring(8, 10e9, 0.25e-6))
    arrived = net.transfer(0, 3, 100)
    env.run()
    # Three hops forward: 3 x 250 cycles of latency, once, after 10 cycles of streaming on all three links at once.
    assert arrived.value == 760
    assert sorted(net.intervals) == [Interval(i, 0, 10, 100) for i in range(3)]


def test_time_stays_in_whole_cycles():
    env, net = net_of(all_to_all(3, 3e9, 1e-9 / 3))
    events = [net.transfer(0, 1, 10), net.transfer(0, 1, 7), net.transfer(2, 1, 11)]
    env.run()
    assert all(isinstance(e.value, int) for e in events) and isinstance(env.now, int)
    # 0->1: two share 3 B/cycle, 1.5 each: the 7 B one streams 4.67 cycles -> 5; at 5 the 10 B one has 10 - 7.5 =
    # 2.5 B left, alone at 3 B/cycle: 0.83 -> 6. 2->1: 11 B at 3 B/cycle = 3.67 -> 4. Latency 1/3 ns -> 1 cycle.
    assert [e.value for e in events] == [7, 6, 5]


def test_routes_and_bisections():
    r = ring(6, 1e9, 0.0)
    assert [len(r.route(0, d)) for d in range(6)] == [0, 1, 2, 3, 2, 1]  # the short way round, forward on a tie
    assert [r.links[i].dst for i in r.route(0, 4)] == [5, 4]
    assert r.bisection_bytes_per_s() == 2e9  # two links each way cross a cut of the ring
    a = all_to_all(5, 1e9, 0.0, links_per_pair=2)
    assert a.route(3, 1) == (a.links.index(next(x for x in a.links if (x.src, x.dst) == (3, 1))),)
    assert a.bisection_bytes_per_s() == 2 * 3 * 2e9  # 2 x 3 card pairs across, 2 links each
    s = switch(5, 1e9, 0.0, ports_per_card=4)
    assert [(s.links[i].src, s.links[i].dst) for i in s.route(1, 4)] == [(1, 5), (5, 4)]
    assert s.bisection_bytes_per_s() == 2 * 4e9  # the smaller half's uplinks
    assert ring(1, 1e9, 0.0).bisection_bytes_per_s() == math.inf and ring(2, 1e9, 0.0).bisection_bytes_per_s() == 1e9


def test_hierarchical_routes_inside_a_node_on_the_scale_up_fabric_and_across_through_the_switch():
    h = hierarchical(2, 4, functools.partial(ring, link_bytes_per_s=100e9, latency_s=1e-7), 25e9, 1e-6, 2)
    assert h.cards == 8 and h.cards_per_node == 4
    inside = [(h.links[i].src, h.links[i].dst, h.links[i].bytes_per_s) for i in h.route(5, 7)]
    assert inside == [(5, 6, 100e9), (6, 7, 100e9)]
    across = [(h.links[i].src, h.links[i].dst, h.links[i].bytes_per_s) for i in h.route(1, 6)]
    assert across == [(1, 8, 50e9), (8, 6, 50e9)]  # card 1's two ports, the switch (vertex 8), card 6's ports
    assert h.route_latency_s(1, 6) == pytest.approx(2e-6)
    # Halves of whole nodes: 4 cards' ports cross.
    assert h.bisection_bytes_per_s() == 4 * 50e9
    # Three nodes of two: one node is cut through its ring (one link each way), plus 3 cards' ports.
    h3 = hierarchical(3, 2, functools.partial(ring, link_bytes_per_s=100e9, latency_s=0.0), 25e9, 0.0)
    assert h3.bisection_bytes_per_s() == 3 * 25e9 + 100e9


def test_the_same_messages_end_on_the_same_cycles():
    def run():
        env, net = net_of(switch(5, 7e9, 3e-8))
        events = [net.transfer(a, b, 1000 + 37 * a + b) for a in range(5) for b in range(5)]
        env.run()
        return [e.value for e in events], net.intervals

    assert run() == run()


@pytest.mark.parametrize(
    "build",
    [
        lambda: ring(0, 1e9, 0.0),
        lambda: ring(2.0, 1e9, 0.0),
        lambda: switch(True, 1e9, 0.0),
        lambda: all_to_all(4, float("nan"), 0.0),
        lambda: all_to_all(4, float("inf"), 0.0),
        lambda: all_to_all(4, 0.0, 0.0),
        lambda: switch(4, -1e9, 0.0),
        lambda: ring(4, 1e9, -1e-6),
        lambda: ring(4, 1e9, float("nan")),
        lambda: all_to_all(4, 1e9, 0.0, links_per_pair=0),
        lambda: hierarchical(0, 4, functools.partial(ring, link_bytes_per_s=1e9, latency_s=0.0), 1e9, 0.0),
        lambda: hierarchical(2, 4, lambda n: ring(n + 1, 1e9, 0.0), 1e9, 0.0),
        lambda: Network(simpy.Environment(), ring(2, 1e9, 0.0), 0.0),
        lambda: Network(simpy.Environment(), ring(2, 1e9, 0.0), float("inf")),
    ],
)
def test_bad_topologies_and_clocks_are_one_line_errors(build):
    with pytest.raises(AccelsimError) as err:
        build()
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "src, dst, nbytes, says",
    [(0, 4, 10, "destination card 4"), (-1, 0, 10, "source card -1"), (0, 1, -1, "bytes"), (0, 1, 1.5, "bytes")],
)
def test_bad_messages_are_one_line_errors(src, dst, nbytes, says):
    _env, net = net_of(ring(4, 1e9, 0.0))
    with pytest.raises(AccelsimError, match=says) as err:
        net.transfer(src, dst, nbytes)
    assert "\n" not in str(err.value)
