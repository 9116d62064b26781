"""Cost models are pure functions of (task, engine group): checked alone, without a simulation."""

import pytest

import accelsim
from accelsim import compute_cycles, estimate_cycles, make_task
from accelsim.config import read_toml
from accelsim.ops import OPS
from accelsim.system import load_system


def groups(chip):
    return {g.name: g for g in chip.groups}


def test_vector_op_costs_instructions_over_lanes_plus_latency_per_pass():
    chip = accelsim.load_chip("gaudi1")  # 128 bf16 lanes, 4-cycle latency
    tpc = groups(chip)["tpc"]
    add = make_task("a", "add", [128 * 100])
    softmax = make_task("s", "softmax", [100, 128])
    assert compute_cycles(add, tpc, chip) == 100 + 4 * 1  # 12,800 adds over 128 lanes, one pass
    # softmax: 10 instructions per element (ops.py: max, subtract, exp 6, sum, scale) over 12,800 elements and
    # 128 lanes = 1,000 cycles, plus 4 cycles of latency for each of its 3 dependent passes.
    assert compute_cycles(softmax, tpc, chip) == 1_012


def test_exp_and_divide_cost_more_than_add():
    chip = accelsim.load_chip("gaudi1")
    tpc = groups(chip)["tpc"]
    cost = {op: compute_cycles(make_task(op, op, [1 << 16]), tpc, chip) for op in ("add", "exp", "divide")}
    assert cost["add"] < cost["divide"] < cost["exp"]


def test_a_profile_can_override_an_ops_instruction_count():
    from conftest import tiny_chip_dict

    chip = accelsim.chip_from_dict(tiny_chip_dict(vector_instructions={"exp": 2}), "x.toml")
    task = make_task("e", "exp", [80])
    assert compute_cycles(task, chip.groups[1], chip) == 20


def test_fp32_on_the_gaudi1_mme_runs_at_a_quarter_of_bf16():
    chip = _ideal("gaudi1")
    mme = groups(chip)["mme"]
    bf16 = compute_cycles(make_task("g", "gemm", [512, 512, 512]), mme, chip)
    fp32 = compute_cycles(make_task("g", "gemm", [512, 512, 512], dtype="fp32"), mme, chip)
    assert bf16 == 8_192  # os on 128 x 128, folds pipelined: 16 folds x K = 512 cycles each
    assert fp32 == 4 * 8_192


def test_without_pipelined_folds_a_gemm_pays_scale_sims_fill_and_drain_on_every_fold():
    data = read_toml(accelsim.resources.resolve("gaudi1", "chips"))
    data["engines"]["mme"].pop("efficiency", None)
    data["engines"]["mme"]["pipelined_folds"] = False
    data["engines"]["mme"]["shapes"] = []
    chip = accelsim.chip_from_dict(data, "gaudi1.toml")
    mme = groups(chip)["mme"]
    assert compute_cycles(make_task("g", "gemm", [512, 512, 512]), mme, chip) == 12_255  # (128+128+512-2) x 16 - 1


def _ideal(name):
    """A shipped profile with its matrix engines at the systolic formulas' own rate (no fitted efficiency)."""
    data = read_toml(accelsim.resources.resolve(name, "chips"))
    for group in data["engines"].values():
        group.pop("efficiency", None)
    return accelsim.chip_from_dict(data, f"{name}.toml")


def test_the_mme_takes_the_shape_that_finishes_a_gemv_first():
    chip = _ideal("gaudi2")
    mme = groups(chip)["mme"]
    # A decode step's 1 x 4096 @ 4096 x 4096: one row of the array is used whatever its shape, so the widest
    # (128 x 512) wins: 4096 / 512 = 8 folds of K = 4096 cycles (256 x 256 would take 16 folds).
    assert compute_cycles(make_task("g", "gemm", [1, 4096, 4096]), mme, chip) == 8 * 4096


def test_a_dtype_the_engine_lacks_cannot_run_there():
    chip = accelsim.load_chip("gaudi1")
    assert compute_cycles(make_task("g", "gemm", [64, 64, 64], dtype="fp8"), groups(chip)["mme"], chip) == -1


def test_batched_and_outer_product_tasks_compose_from_the_systolic_model():
    chip = _ideal("gaudi2")
    mme, tpc = groups(chip)["mme"], groups(chip)["tpc"]
    # Each 128 x 64 @ 64 x 128 GEMM fits the 256 x 256 array in one fold of K = 64 cycles (folds pipelined).
    assert compute_cycles(make_task("b", "bmm", [6, 128, 64, 128]), mme, chip) == 6 * 64
    outer = make_task("o", "outer_acc", [4, 64, 32, 32])  # 4 x sum of 64 outer products of 32-vectors
    assert compute_cycles(outer, mme, chip) == 4 * 64  # each is (32 x 64) @ (64 x 32): one fold, K = 64
    # ... and on a vector core: one FMA per MAC, 4 x 64 x 32 x 32 = 262,144 MACs over 128 lanes, + 4 latency.
    assert compute_cycles(outer, tpc, chip) == 2_048 + 4


def test_estimate_is_the_roofline_of_dispatch_plus_compute_and_memory(tiny_chip):
    tpc = groups(tiny_chip)["tpc"]  # 8 bf16 lanes, no latency, no dispatch cost; HBM 16 bytes per cycle
    copy = make_task("c", "copy", [800])  # 1,600 bytes in and 1,600 out: 200 cycles of HBM, 100 of compute
    assert estimate_cycles(copy, tpc, tiny_chip) == 200
    exp = make_task("e", "exp", [800])  # the same traffic, 6 instructions per element: 600 cycles of compute
    assert estimate_cycles(exp, tpc, tiny_chip) == 600


def test_a_task_only_runs_on_kinds_it_allows():
    chip = accelsim.load_chip("gaudi2")
    gemm = make_task("g", "gemm", [64, 64, 64])
    assert compute_cycles(gemm, groups(chip)["tpc"], chip) == -1
    anywhere = make_task("g", "gemm", [64, 64, 64], engines=["matrix", "vector"])
    assert compute_cycles(anywhere, groups(chip)["tpc"], chip) > compute_cycles(anywhere, groups(chip)["mme"], chip)


@pytest.mark.parametrize("op", sorted(OPS))
def test_every_op_has_a_cost_on_its_default_engine(op):
    chip = load_system("hls-gaudi2").card_chip(8)  # a card with its fabric, for the collectives
    shape = [4] * (OPS[op].arity or 2)
    task = make_task("t", op, shape)
    by_kind = {g.kind: g for g in chip.groups}
    assert compute_cycles(task, by_kind[task.engines[0]], chip) >= 0


def test_a_tiled_gemm_costs_whole_waves_of_tiles():
    from conftest import tiny_chip_dict

    tiled = {
        "kind": "matrix",
        "count": 1,
        "model": "tiled",
        "sms": 2,
        "tile_m": 4,
        "tile_n": 4,
        "macs_per_cycle": {"bf16": 32},
        "efficiency": 0.5,
        "wave_overhead_cycles": 10,
    }
    chip = accelsim.chip_from_dict(tiny_chip_dict(engines={"tc": tiled}), "gpu.toml")
    # (8 x 3) @ (3 x 12): 2 x 3 = 6 output tiles over 2 SMs = 3 waves; a tile is 4 x 4 x 3 = 48 MACs at 16 MACs
    # per cycle per SM and half efficiency = 6 cycles, + 10 of overhead = 16 cycles a wave.
    assert compute_cycles(make_task("g", "gemm", [8, 3, 12]), chip.groups[0], chip) == 3 * 16
    # 9 rows: a third row of tiles (partial, still whole tiles): 9 tiles = 5 waves.
    assert compute_cycles(make_task("g", "gemm", [9, 3, 12]), chip.groups[0], chip) == 5 * 16
