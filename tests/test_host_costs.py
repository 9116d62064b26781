"""What the host costs: each collective's set-up and synchronisation (the system's collective_overhead_us), on the
critical path of tensor-parallel decoding (two all-reduces a layer and the logits' gather), and the host's time
per forward pass (the chip's step_overhead_us)."""

import dataclasses
import math

import pytest

import accelsim
from accelsim.catalog import load_model
from accelsim.chip import load_chip
from accelsim.errors import AccelsimError
from accelsim.generation import default_system, generate
from accelsim.system import System, load_system, system_from_dict


def _with_overhead(system: System, us: float) -> System:
    return System(dataclasses.replace(system.spec, collective_overhead_us=us), system.chip, system.source)


def test_every_collective_of_a_group_pays_the_overhead_once_and_a_lone_card_none():
    system = load_system("hls-gaudi2")
    task = accelsim.make_task("ar", "all_reduce", [1 << 20])
    for cards in (1, 8):
        cycles = {}
        for us in (0.0, 40.0):
            chip = _with_overhead(system, us).card_chip(cards)
            net = next(g for g in chip.groups if g.name == "net")
            cycles[us] = accelsim.compute_cycles(task, net, chip)
        assert cycles[40.0] - cycles[0.0] == (math.ceil(round(40.0 * 1e3 * chip.clock_ghz, 6)) if cards > 1 else 0)


def test_a_bad_overhead_is_refused_naming_the_key():
    data = {
        "name": "x",
        "chip": "gaudi2",
        "cards_per_node": 8,
        "scale_up": {"topology": "all-to-all", "link_gbps": 12.5, "links": 3, "latency_us": 2.0},
        "collective_overhead_us": -1.0,
    }
    with pytest.raises(AccelsimError) as err:
        system_from_dict(data)
    assert err.value.key == "collective_overhead_us"


def test_batch_one_tensor_parallel_decode_pays_it_on_every_collective():
    """Two all-reduces a layer and one gather of the logits a step, one after the other on the critical path: a
    step takes up to (2 x layers + 1) x the overhead longer, a little less where the DMA engines prefetch the next
    weights meanwhile (measured here: 94%)."""
    chip, model = load_chip("gaudi2"), load_model("bigcode/starcoder2-3b")  # attention, then the MLP
    base = default_system(chip)
    us = 50.0
    runs = {v: generate(chip, model, 1, 8, 6, cards=4, system=_with_overhead(base, v)) for v in (0.0, us)}
    layers = model.require()["layers"]
    added_ms = runs[us].tpot_ms - runs[0.0].tpot_ms
    assert 0.9 * (2 * layers + 1) * us / 1e3 <= added_ms <= (2 * layers + 1) * us / 1e3
    one = generate(chip, model, 1, 8, 6)
    assert one.tpot_ms == generate(chip, model, 1, 8, 6, cards=1, system=_with_overhead(base, us)).tpot_ms


def test_the_shipped_gaudi_systems_carry_the_fitted_overhead_and_the_default_system_keeps_the_given_chip():
    g2, g3 = load_system("hls-gaudi2"), load_system("hls-gaudi3")
    assert g2.spec.collective_overhead_us > 0
    assert g3.spec.collective_overhead_us == g2.spec.collective_overhead_us  # the software's, not the fabric's
    chip = load_chip("gaudi2")
    assert default_system(chip).chip is chip
    from accelsim.report import system_report

    assert f"each collective: {g2.spec.collective_overhead_us:g} us" in system_report(g2)
    assert g2.summary().collective_overhead_us == g2.spec.collective_overhead_us
