"""Cost models are pure functions of (task, engine group): checked alone, without a simulation."""

import math

import pytest

import accelsim
from accelsim import compute_cycles, estimate_cycles, make_task, systolic_cycles
from accelsim.ops import OPS


def groups(chip):
    return {g.name: g for g in chip.groups}


def test_vector_op_costs_instructions_over_lanes_plus_latency_per_pass():
    chip = accelsim.load_chip("gaudi1")  # 128 bf16 lanes, 4-cycle latency
    tpc = groups(chip)["tpc"]
    add = make_task("a", "add", [128 * 100])
    softmax = make_task("s", "softmax", [100, 128])
    assert compute_cycles(add, tpc, chip) == 100 + 4 * 1
    spec = OPS["softmax"]
    assert compute_cycles(softmax, tpc, chip) == 100 * spec.instructions_per_element + 4 * spec.dependent_steps


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
    chip = accelsim.load_chip("gaudi1")
    mme = groups(chip)["mme"]
    bf16 = compute_cycles(make_task("g", "gemm", [512, 512, 512]), mme, chip)
    fp32 = compute_cycles(make_task("g", "gemm", [512, 512, 512], dtype="fp32"), mme, chip)
    assert bf16 == systolic_cycles(512, 512, 512, 128, 128, "os")
    assert fp32 == 4 * bf16


def test_a_dtype_the_engine_lacks_cannot_run_there():
    chip = accelsim.load_chip("gaudi1")
    assert compute_cycles(make_task("g", "gemm", [64, 64, 64], dtype="fp8"), groups(chip)["mme"], chip) == -1


def test_batched_and_outer_product_tasks_compose_from_the_systolic_model():
    chip = accelsim.load_chip("gaudi2")
    mme, tpc = groups(chip)["mme"], groups(chip)["tpc"]
    assert compute_cycles(make_task("b", "bmm", [6, 128, 64, 128]), mme, chip) == 6 * systolic_cycles(
        128, 64, 128, 256, 256, "os")
    outer = make_task("o", "outer_acc", [4, 64, 32, 32])  # 4 x sum of 64 outer products of 32-vectors
    assert compute_cycles(outer, mme, chip) == 4 * systolic_cycles(32, 64, 32, 256, 256, "os")
    # ... and on a vector core: one FMA per MAC over 128 lanes.
    assert compute_cycles(outer, tpc, chip) == math.ceil(4 * 64 * 32 * 32 / 128) + 4


def test_estimate_is_the_roofline_of_dispatch_plus_compute_and_memory():
    chip = accelsim.load_chip("gaudi2")
    tpc = groups(chip)["tpc"]
    big_copy = make_task("c", "copy", [1 << 24])  # 64 MiB of traffic, little compute per byte
    memory = math.ceil(big_copy.bytes / chip.hbm_bytes_per_cycle)
    assert estimate_cycles(big_copy, tpc, chip) == max(memory, 100 + compute_cycles(big_copy, tpc, chip))


def test_a_task_only_runs_on_kinds_it_allows():
    chip = accelsim.load_chip("gaudi2")
    gemm = make_task("g", "gemm", [64, 64, 64])
    assert compute_cycles(gemm, groups(chip)["tpc"], chip) == -1
    anywhere = make_task("g", "gemm", [64, 64, 64], engines=["matrix", "vector"])
    assert compute_cycles(anywhere, groups(chip)["tpc"], chip) > compute_cycles(anywhere, groups(chip)["mme"], chip)


@pytest.mark.parametrize("op", sorted(OPS))
def test_every_op_has_a_cost_on_its_default_engine(op):
    chip = accelsim.load_chip("gaudi2")
    shape = [4] * (OPS[op].arity or 2)
    task = make_task("t", op, shape)
    by_kind = {g.kind: g for g in chip.groups}
    assert compute_cycles(task, by_kind[task.engines[0]], chip) >= 0
