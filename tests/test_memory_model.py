"""accelsim.memory.SharedBandwidth on its own: processor-sharing HBM told as short stories on a bare SimPy clock.

Each expected cycle is worked out by hand in the comment above it. Written against the survivors of a mutation run
(tools/mutation.sh); the simulation tests only see this model through whole task graphs.
"""

import simpy

from accelsim.memory import SharedBandwidth


class Hbm:
    """A SharedBandwidth on a fresh clock that notes (token, cycle) for every finished stream."""

    def __init__(self, bytes_per_cycle):
        self.env = simpy.Environment()
        self.done = []
        self.bw = SharedBandwidth(self.env, bytes_per_cycle, lambda token: self.done.append((token, self.env.now)))

    def add_at(self, cycle, token, nbytes):
        if cycle == 0:
            self.bw.add(token, nbytes)
        else:
            self.env.timeout(cycle).callbacks.append(lambda _event: self.bw.add(token, nbytes))

    def run(self, max_events=1000):
        """Run to the end, but fail (instead of hanging) if the model keeps waking up without finishing."""
        for _ in range(max_events):
            if self.env.peek() == float("inf"):
                return self.done
            self.env.step()
        raise AssertionError(f"still busy after {max_events} events at cycle {self.env.now}; done so far {self.done}")

    def changes(self):
        return list(zip(self.bw.change_cycles, self.bw.change_streams, strict=True))


def test_a_late_stream_shares_from_the_cycle_it_joins():
    hbm = Hbm(10)
    hbm.add_at(0, "A", 100)
    hbm.add_at(4, "B", 100)
    # 0..4: A alone at 10 B/cycle moves 40 B, 60 B left.
    # From 4 both get 10/2 = 5 B/cycle: A's 60 B take 60/5 = 12 cycles -> A ends at 4 + 12 = 16,
    #   and B has moved 12 * 5 = 60 B of its 100 by then.
    # From 16 B is alone again: 40 B / 10 = 4 cycles -> B ends at 20.
    assert hbm.run() == [("A", 16), ("B", 20)]
    # Streams active: 1 from 0, 2 from 4, 1 from 16, none from 20.
    assert hbm.changes() == [(0, 1), (4, 2), (16, 1), (20, 0)]


def test_two_streams_started_on_one_cycle_make_one_change_and_one_wake_up():
    hbm = Hbm(10)
    hbm.add_at(0, "A", 100)
    # A alone would end at 100 / 10 = 10: one wake-up, at cycle 10.
    assert hbm.bw.pending == [10]
    hbm.add_at(0, "B", 50)
    # Now each gets 5 B/cycle: B's 50 B end at 50 / 5 = 10, the cycle already booked, so no second wake-up.
    assert hbm.bw.pending == [10]
    # At 10 A has 100 - 50 = 50 B left, alone at 10 B/cycle: 5 more cycles -> 15.
    assert hbm.run() == [("B", 10), ("A", 15)]
    # Both streams started at cycle 0: one entry saying 2, not (0, 1) then (0, 2).
    assert hbm.changes() == [(0, 2), (10, 1), (15, 0)]


def test_a_new_stream_never_books_a_wake_up_before_the_earliest_end():
    hbm = Hbm(10)
    hbm.add_at(0, "A", 100)
    hbm.add_at(0, "B", 100)
    # A alone booked cycle 10. Shared 2 ways, the earliest end is 100 / 5 = 20, later than 10,
    # so the wake-up at 10 is kept (it will find nothing finished and book 20) and nothing earlier is added.
    assert hbm.bw.pending == [10]
    assert hbm.run() == [("A", 20), ("B", 20)]


def test_streams_ending_on_the_same_cycle_are_reported_in_the_order_they_started():
    hbm = Hbm(10)
    for token in (5, 7, 3):
        hbm.add_at(0, token, 10)
    # Three ways at 10/3 B/cycle each: 10 B take 3 cycles, all three end at 3; first started, first reported.
    assert hbm.run() == [(5, 3), (7, 3), (3, 3)]


def test_a_stream_exactly_one_guard_from_done_is_done_at_once():
    # 1 byte at 1,000,000 B/cycle takes 1 / 1e6 = 1e-6 cycles, exactly the round-off guard _EPS:
    # it counts as finished on the cycle it starts (0), not rounded up to cycle 1, and without spinning.
    hbm = Hbm(1_000_000)
    hbm.add_at(0, "tiny", 1)
    assert hbm.run() == [("tiny", 0)]


def test_a_stream_two_millionths_of_a_cycle_short_takes_one_more_cycle():
    # R = 3.29999901 B/cycle; A = 10 B, B = 11 B, C = 100 B all start at 0, each gets R/3 = 1.09999967 B/cycle.
    # A ends at 10 / 1.09999967 = 9.09 -> cycle 10. At 10 every stream has moved 10 * 1.09999967 = 10.9999967 B,
    # so B is 11 - 10.9999967 = 3.3e-6 B short. Shared 2 ways (B and C) at R/2 = 1.649999505 B/cycle that is
    # 3.3e-6 / 1.65 = 2e-6 cycles: more than the 1e-6 guard, so B is not done at 10 and ends at 11.
    # C: 10.9999967 + 1.649999505 = 12.65 B moved by 11, then alone at 3.3 B/cycle: (100 - 12.65) / 3.3 = 26.47
    # -> 27 more cycles -> 11 + 27 = 38.
    hbm = Hbm(3.29999901)
    hbm.add_at(0, "A", 10)
    hbm.add_at(0, "B", 11)
    hbm.add_at(0, "C", 100)
    assert hbm.run() == [("A", 10), ("B", 11), ("C", 38)]
