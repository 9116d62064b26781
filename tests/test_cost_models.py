"""Each cost model on a tiny hand-built chip, with the expected cycles and bytes worked out by hand."""

import numpy as np
import pytest

import accelsim
from accelsim import AccelsimError, CostTable, TaskGraph, compute_cycles, estimate_cycles, make_task
from accelsim import costs as costs_module
from accelsim.costs import check_cycles, serial_cycles_bound, slowest_cycles, stream_bytes

from conftest import tiny_chip_dict


def chip_with(engines=None, memory=None, **over):
    """The tiny chip (4x4 os MME at 16 bf16 MACs, two 8-lane TPCs, a 1000 B/cycle DMA; 16 B/cycle of HBM), with
    some engine groups' or the memory's fields replaced."""
    d = tiny_chip_dict(**over)
    for name, fields in (engines or {}).items():
        d["engines"][name] = {**d["engines"].get(name, {}), **fields}
    d["memory"] = {**d["memory"], **(memory or {})}
    return accelsim.chip_from_dict(d, "test.toml")


def group(chip, name):
    return next(g for g in chip.groups if g.name == name)


# Systolic matrix engines


def test_a_dtype_runs_at_its_own_mac_rate_against_the_arrays_cells():
    chip = chip_with({"mme": {"macs_per_cycle": {"bf16": 16, "fp32": 8, "int8": 32}}})
    mme = group(chip, "mme")
    # A 4x4x4 GEMM on the 4x4 output-stationary array: one fold, (4 + 4 + 4 - 2) - 1 = 9 cycles.
    assert compute_cycles(make_task("g", "gemm", [4, 4, 4]), mme, chip) == 9
    # fp32 at 8 MACs per cycle on a 16-MAC array: 9 x 16 / 8 = 18 cycles.
    assert compute_cycles(make_task("g", "gemm", [4, 4, 4], dtype="fp32"), mme, chip) == 18
    # int8 at 32 MACs per cycle packs two MACs per cell (fp8 on Gaudi 2 doubles bf16): 9 x 16 / 32 = 4.5 -> 5.
    assert compute_cycles(make_task("g", "gemm", [4, 4, 4], dtype="int8"), mme, chip) == 5


def test_systolic_cycles_stay_exact_integers_past_float_precision(tiny_chip):
    # M = N = 1, K = 2^60 on the 4x4 os array: one fold of (4 + 4 + 2^60 - 2) - 1 = 2^60 + 5 cycles, which a
    # float would round to 2^60.
    task = make_task("g", "gemm", [1, 2**60, 1])
    assert compute_cycles(task, group(tiny_chip, "mme"), tiny_chip) == 2**60 + 5


# Tiled (GPU-style) matrix engines


def chip_tiled(sms, macs, efficiency=1.0, wave_overhead=0):
    d = tiny_chip_dict()
    d["engines"]["mme"] = {
        "kind": "matrix",
        "count": 1,
        "model": "tiled",
        "sms": sms,
        "tile_m": 2,
        "tile_n": 2,
        "macs_per_cycle": {"bf16": macs},
        "efficiency": efficiency,
        "wave_overhead_cycles": wave_overhead,
    }
    return accelsim.chip_from_dict(d, "gpu.toml")


def test_tiled_gemm_runs_its_tiles_in_waves_at_the_achieved_efficiency():
    chip = chip_tiled(sms=2, macs=8, efficiency=0.5, wave_overhead=3)  # 4 MACs per cycle per SM
    # 4x4 output in 2x2 tiles = 4 tiles over 2 SMs = 2 waves; a wave is one 2x2x4 tile = 16 MACs / 4 per cycle
    # / 0.5 efficiency = 8 cycles, + 3 of overhead = 11; two waves: 22.
    assert compute_cycles(make_task("g", "gemm", [4, 4, 4]), group(chip, "mme"), chip) == 22


def test_a_partial_tile_counts_as_a_whole_tile_in_the_wave_count():
    chip = chip_tiled(sms=3, macs=12)  # 4 MACs per cycle per SM
    # 2 batches of a 1x4 @ 4x3 GEMM: each has ceil(1/2) x ceil(3/2) = 2 tiles, 4 in all, over 3 SMs = 2 waves.
    # A wave's tile is 1 x 2 (M below the tile) x K 4 = 8 MACs / 4 per cycle = 2 cycles; two waves: 4.
    assert compute_cycles(make_task("b", "bmm", [2, 1, 4, 3]), group(chip, "mme"), chip) == 4


def test_a_fused_kernel_costs_the_sum_of_its_gemms_on_tiled_engines():
    chip = chip_tiled(sms=2, macs=8, efficiency=0.5, wave_overhead=3)  # 4 MACs per cycle per SM
    # Causal attention over S = 6, D = 2: QK^T over half = 3 keys is a 6x2 @ 2x3 GEMM: 3 x 2 = 6 tiles = 3 waves
    # of a 2x2x2 tile (8 MACs / 4 / 0.5 = 4 cycles, + 3) = 21; P V is 6x3 @ 3x2: 3 tiles = 2 waves of a 2x2x3 tile
    # (12 MACs / 4 / 0.5 = 6, + 3) = 18. Together 39.
    assert compute_cycles(make_task("f", "flash_attn_causal", [1, 6, 2]), group(chip, "mme"), chip) == 39


# Vector cores


def test_a_vector_core_cannot_run_a_dma_transfer_even_where_the_task_allows_it(tiny_chip):
    task = make_task("d", "dma", [64], engines=["dma", "vector"])
    assert compute_cycles(task, group(tiny_chip, "tpc"), tiny_chip) == -1
    assert compute_cycles(task, group(tiny_chip, "dma"), tiny_chip) == 1  # 64 bytes at 1000 per cycle


def test_a_vector_core_cannot_run_a_dtype_it_has_no_lanes_for(tiny_chip):
    assert compute_cycles(make_task("a", "add", [64], dtype="fp32"), group(tiny_chip, "tpc"), tiny_chip) == -1


def test_issue_width_multiplies_the_lanes():
    chip = chip_with({"tpc": {"vector_issue_per_cycle": 2, "pipeline_latency_cycles": 3}})
    # 160 adds over 8 lanes x 2 instructions per cycle = 10 cycles, + 3 of latency for its one pass.
    assert compute_cycles(make_task("a", "add", [160]), group(chip, "tpc"), chip) == 13


def test_a_row_op_pays_the_latency_once_per_dependent_pass():
    chip = chip_with({"tpc": {"pipeline_latency_cycles": 3}})
    # softmax over 2 rows of 8: 10 instructions x 16 elements / 8 lanes = 20 cycles, + 3 passes x 3 = 29.
    assert compute_cycles(make_task("s", "softmax", [2, 8]), group(chip, "tpc"), chip) == 29


def test_a_scan_pays_the_latency_once_per_position_along_its_length():
    chip = chip_with({"tpc": {"pipeline_latency_cycles": 3}})
    # cumsum over length 5 and 16 columns: 80 adds / 8 lanes = 10 cycles, + 5 dependent steps x 3 = 25.
    assert compute_cycles(make_task("c", "cumsum", [5, 16]), group(chip, "tpc"), chip) == 25


def test_an_engine_on_a_slower_clock_takes_more_chip_cycles():
    chip = chip_with({"tpc": {"clock_ghz": 0.5}})  # the chip runs at 1 GHz
    # 80 adds / 8 lanes = 10 of the core's cycles = 20 cycles of the chip's clock.
    assert compute_cycles(make_task("a", "add", [80]), group(chip, "tpc"), chip) == 20
    same = chip_with({"tpc": {"clock_ghz": 1.0}})  # the chip's own clock: 10
    assert compute_cycles(make_task("a", "add", [80]), group(same, "tpc"), same) == 10


# Bytes streamed through HBM


def test_a_task_streams_its_operands_once():
    chip = chip_with()
    # A GEMM's operands once: (16 + 16) x 2 bytes in, 16 x 2 out = 96; softmax 2 x 16 bf16 in and out = 128.
    assert stream_bytes(make_task("g", "gemm", [4, 4, 4]), chip) == 96
    assert stream_bytes(make_task("s", "softmax", [2, 16]), chip) == 128
    # Only part of it (what the compiler did not keep on chip): 40 bytes at the full rate.
    assert stream_bytes(make_task("s", "softmax", [2, 16]), chip, 40) == 40


def test_strided_operands_stream_at_the_strided_efficiency():
    chip = chip_with(memory={"strided_bandwidth_efficiency": 0.5})
    # 64 bf16 in and out = 256 bytes; strided at half efficiency costs as 512 at the full rate.
    assert stream_bytes(make_task("t", "strided_copy", [64]), chip) == 512
    assert stream_bytes(make_task("c", "copy", [64]), chip) == 256


# The uncontended estimate


def test_a_task_with_nothing_to_do_still_pays_dispatch_and_the_launch_gap():
    chip = chip_with(dispatch_overhead_cycles=3, launch_gap_cycles=2)
    empty = make_task("d", "dma", [64], bytes_read=0)  # no bytes: 0 cycles of transfer, 0 of HBM
    assert compute_cycles(empty, group(chip, "dma"), chip) == 0
    assert estimate_cycles(empty, group(chip, "dma"), chip) == 5  # 2 + max(3 + 0, 0)


def test_estimate_adds_the_gap_to_the_longer_of_dispatch_plus_compute_and_memory():
    chip = chip_with(dispatch_overhead_cycles=3, launch_gap_cycles=2)
    tpc = group(chip, "tpc")
    # copy of 800 bf16: 100 cycles of compute, 3,200 bytes / 16 = 200 of HBM: 2 + max(103, 200) = 202.
    assert estimate_cycles(make_task("c", "copy", [800]), tpc, chip) == 202
    # exp of 800: 600 cycles of compute, the same 200 of HBM: 2 + max(603, 200) = 605.
    assert estimate_cycles(make_task("e", "exp", [800]), tpc, chip) == 605
    assert estimate_cycles(make_task("e", "exp", [800]), group(chip, "mme"), chip) == -1


# The cost table


def test_the_cost_table_holds_compute_stream_and_estimate_per_task_and_group():
    chip = chip_with(dispatch_overhead_cycles=3, launch_gap_cycles=2)  # groups: mme, tpc, dma
    graph = TaskGraph(
        [make_task("c", "copy", [800]), make_task("e", "exp", [800]), make_task("d", "dma", [64], bytes_read=0)]
    )
    table = CostTable.build(graph, chip)
    # copy: 100 cycles of compute, 3,200 bytes; exp: 600 and 3,200; the empty transfer 0 and 0. The bytes are
    # the task's, wherever it runs.
    assert table.compute.tolist() == [[-1, 100, -1], [-1, 600, -1], [-1, -1, 0]]
    assert table.stream.tolist() == [3200, 3200, 0]
    # 2 + max(3 + 100, 3,200 / 16 = 200) = 202; 2 + max(603, 200) = 605; 2 + max(3 + 0, 0) = 5.
    assert table.estimate.tolist() == [[-1, 202, -1], [-1, 605, -1], [-1, -1, 5]]
    assert table.compute.dtype == table.stream.dtype == table.estimate.dtype == np.int64


def test_the_estimate_table_rounds_memory_cycles_up_in_integers():
    chip = chip_with()
    graph = TaskGraph([make_task("c", "copy", [801])])
    table = CostTable.build(graph, chip)
    # 801 bf16 in and out = 3,204 bytes / 16 per cycle = 200.25, rounded up: 201 (compute is 101).
    assert table.estimate.tolist() == [[-1, 201, -1]]
    assert table.estimate.dtype == np.int64


def test_fastest_is_the_smallest_estimate_over_the_groups_allowed():
    chip = chip_with()
    graph = TaskGraph(
        [
            # os 4x4: 2 x 2 folds of (4 + 4 + 8 - 2) - 1 = 55 cycles on the MME; 512 MACs / 8 lanes = 64 on a TPC.
            make_task("g", "gemm", [8, 8, 8], engines=["matrix", "vector"]),
            make_task("d", "dma", [64], bytes_read=0),  # nothing to move: 0
            make_task("c", "copy", [800]),  # 3,200 bytes / 16 = 200 cycles on a TPC, the only kind it allows
        ]
    )
    assert CostTable.build(graph, chip).fastest().tolist() == [55, 0, 200]


def test_tasks_with_the_same_signature_are_costed_once(monkeypatch):
    chip = chip_with()
    calls = []
    original = costs_module.compute_cycles

    def counting(task, group, chip):
        calls.append(task.name)
        return original(task, group, chip)

    monkeypatch.setattr(costs_module, "compute_cycles", counting)
    graph = TaskGraph(
        [
            make_task("a", "copy", [800]),
            make_task("b", "copy", [800], deps=["a"]),
            make_task("c", "copy", [800], bytes_read=800),
        ]
    )
    table = CostTable.build(graph, chip)
    assert calls == ["a"] * 3 + ["c"] * 3  # one call per group (mme, tpc, dma) for a, none for b
    # c reads 800 bytes instead of 1,600: 2,400 bytes streamed, not 3,200.
    assert table.stream.tolist() == [3200, 3200, 2400]


def test_a_task_no_engine_can_run_is_named_with_what_the_chip_has():
    chip = chip_with()  # the MME has bf16 only
    graph = TaskGraph(
        [make_task("ok", "add", [8]), make_task("g", "gemm", [4, 4, 4], dtype="fp32")], source="model.toml"
    )
    with pytest.raises(AccelsimError) as err:
        CostTable.build(graph, chip)
    assert err.value.source == "model.toml"
    assert err.value.key == "task 'g'"
    assert str(err.value) == (
        "model.toml: task 'g': no engine on chip tiny can run it (op gemm, dtype fp32, "
        "allowed kinds ['matrix']; chip has ['mme:matrix', 'tpc:vector', 'dma:dma'])"
    )


def test_a_fused_kernel_pays_the_dependent_passes_of_every_op_in_it():
    chip = chip_with({"tpc": {"pipeline_latency_cycles": 5}})
    tpc = group(chip, "tpc")
    # layernorm (5 instructions, 3 passes) fused ahead of an add (1 instruction, 1 pass) over 80 bf16 on 8 lanes:
    # (5 + 1) x 80 / 8 = 60 cycles of issue, and 5 cycles of latency for each of the 3 + 1 passes: 80.
    fused = make_task("a", "add", [80]).but(fused=(("layernorm", (80,)),))
    assert compute_cycles(fused, tpc, chip) == 60 + 5 * 4


# The bound on a run's cycles


def test_a_tasks_slowest_cycles_are_its_worst_group_with_all_traffic_through_hbm():
    chip = chip_with(dispatch_overhead_cycles=3, launch_gap_cycles=2)
    # copy of 800 bf16 on a TPC: 100 cycles of compute; 3,200 bytes / 16 = 200 of HBM: 2 + max(3 + 100, 200).
    assert slowest_cycles(make_task("c", "copy", [800]), [-1, 100, -1], chip) == 202
    # The slower of two groups that may run it counts: 2 + max(3 + 500, 200) = 505.
    assert slowest_cycles(make_task("c", "copy", [800]), [-1, 100, 500], chip) == 505
    # An empty transfer computes for 0 cycles and still pays dispatch and gap: 2 + max(3 + 0, 0) = 5.
    assert slowest_cycles(make_task("d", "dma", [64], bytes_read=0), [-1, -1, 0], chip) == 5
    # No group may run it: it adds nothing.
    assert slowest_cycles(make_task("c", "copy", [800]), [-1, -1, -1], chip) == 0


def test_a_runs_cycles_are_bounded_by_its_tasks_one_after_another():
    chip = chip_with(dispatch_overhead_cycles=3, launch_gap_cycles=2)
    graph = TaskGraph(
        [make_task("a", "copy", [800]), make_task("e", "exp", [800]), make_task("b", "copy", [800], deps=["a"])]
    )
    # copy 202 (above), exp 2 + max(3 + 600, 200) = 605, copy again 202.
    assert serial_cycles_bound(graph, chip) == 202 + 605 + 202


def test_a_run_past_2_to_the_62_cycles_is_refused_naming_the_chip_and_the_size():
    chip = chip_with()
    graph = TaskGraph([make_task("a", "copy", [8])], source="big.toml")
    check_cycles(2**62, graph, chip)  # exactly the most the simulator counts: fine
    with pytest.raises(AccelsimError) as err:
        check_cycles(2**62 + 1, graph, chip)
    assert (err.value.source, err.value.key) == ("big.toml", "(size)")
    assert err.value.detail == (
        "on tiny the run could last up to 4.61e+18 cycles (4.61e+09 s), past the 2^62 (4.61e+18) cycles the "
        "simulator counts; make the run smaller or the chip faster (memory.hbm_bandwidth_gbps, engine rates, "
        "vector_instructions)"
    )


def test_the_cost_table_refuses_a_run_it_could_not_count_before_filling_its_arrays():
    # 1 MB/s of HBM at 100 GHz: 1e-5 bytes a cycle. A copy of 2^37 bf16 moves 2^39 bytes: 5.5e16 cycles. 83 of
    # them, 4.56e18 cycles, stay within 2^62 = 4.61e18; an 84th passes it.
    chip = chip_with(clock_ghz=100.0, memory={"hbm_bandwidth_gbps": 0.001})
    copies = [make_task(f"c{i}", "copy", [2**37]) for i in range(83)]
    CostTable.build(TaskGraph(copies, source="ok.toml"), chip)
    with pytest.raises(AccelsimError, match=r"big.toml: \(size\): on tiny the run could last up to 4.62e\+18"):
        CostTable.build(TaskGraph([*copies, make_task("c83", "copy", [2**37])], source="big.toml"), chip)


def test_one_task_whose_bytes_alone_pass_64_bits_of_cycles_is_refused():
    # 1 MB/s of HBM at 100 GHz: 1e-5 bytes a cycle. One add streaming 2^62 bytes takes 4.6e23 cycles, more than a
    # 64-bit integer holds: the bound is worked out in Python integers, so it is refused rather than wrapped.
    chip = chip_with(clock_ghz=100.0, memory={"hbm_bandwidth_gbps": 0.001})
    task = make_task("a", "add", [8], bytes_read=2**62, bytes_written=0)
    assert slowest_cycles(task, [1, 1, -1], chip) == pytest.approx(2**62 * 1e5) and 2**62 * 1e5 > 2**64
    with pytest.raises(AccelsimError, match=r"big.toml: \(size\): on tiny the run could last up to 4.61e\+23"):
        CostTable.build(TaskGraph([task], source="big.toml"), chip)
