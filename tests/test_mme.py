"""Gaudi's matrix engines as built: the geometry each GEMM runs in, the clock under load apart from the headline's,
and the fp8 input pass that explains the measured thin-N loss (../shared/calibration/gaudi/README.md)."""

import pytest

from accelsim.chip import SystolicMatrixEngines, chip_from_dict, chip_spec_dict, load_chip
from accelsim.compiler import compile_graph
from accelsim.costs import compute_cycles, geometry
from accelsim.errors import AccelsimError
from accelsim.graph import TaskGraph, make_task
from accelsim.runner import run


def _mme(chip):
    group = next(g for g in chip.groups if isinstance(g.spec, SystolicMatrixEngines))
    return group, group.spec


@pytest.mark.parametrize(
    "gemm, shape",
    [
        ((1, 1, 4096, 4096), (128, 512)),  # a decode GEMV: one row, streamed through the wide shape
        ((1, 16384, 8192, 640), (512, 128)),  # thin N (1280 over 2 MMEs): 5 folds of 128 columns, none wasted
        ((1, 4096, 4096, 4096), (256, 256)),  # square: every shape equal, the default first
        ((1, 640, 4096, 16384), (128, 512)),  # thin M: the tall shape would waste rows
    ],
)
def test_each_gemm_runs_in_the_geometry_that_finishes_it_first(gemm, shape):
    _, spec = _mme(load_chip("gaudi2"))
    chosen, cycles = geometry((gemm,), spec)
    assert chosen == shape
    for other in [(256, 256), (512, 128), (128, 512)]:
        alone = chip_spec_dict(load_chip("gaudi2"))
        alone["engines"]["mme"].update(rows=other[0], cols=other[1], shapes=[])
        _, one = _mme(chip_from_dict(alone))
        assert geometry((gemm,), one)[1] >= cycles


def test_matrix_work_is_costed_at_the_clock_under_load_and_the_headline_keeps_the_datasheet():
    g3 = load_chip("gaudi3")
    data = chip_spec_dict(g3)
    data["engines"]["mme"]["clock_under_load_ghz"] = None
    headline = chip_from_dict(data)
    assert g3.headline().peak_matrix_tflops == headline.headline().peak_matrix_tflops
    assert round(g3.headline().peak_matrix_tflops["bf16"]) == 1835
    task = make_task("mm", "gemm", (8192, 8192, 8192))
    loaded = compute_cycles(task, _mme(g3)[0], g3)
    nominal = compute_cycles(task, _mme(headline)[0], headline)
    assert loaded == pytest.approx(nominal * 1.75 / 1.6, rel=1e-6)


def test_an_fp8_gemm_passes_its_input_through_hbm_first_and_a_bf16_one_does_not():
    chip = load_chip("gaudi2")
    M, K, N = 16384, 8192, 1280
    for dtype, passes in (("fp8", 1), ("bf16", 0)):
        graph = TaskGraph([make_task("mm", "gemm", (M, K, N), dtype=dtype)])
        tasks = compile_graph(graph, chip).graph.tasks
        moved = sum(t.bytes_read for t in tasks if t.name.startswith("input:"))
        assert moved == passes * M * K  # fp8: one byte an element
        gemms = [t for t in tasks if t.op == "gemm"]
        assert all(any(d.startswith("input:") for d in t.deps) for t in gemms) == bool(passes)
    # Its time: read and write M x K bytes at the achieved HBM rate, not hidden behind the MACs.
    data = chip_spec_dict(chip)
    data["compiler"]["input_pass_dtypes"] = []
    without = chip_from_dict(data)
    graph = TaskGraph([make_task("mm", "gemm", (M, K, N), dtype="fp8")])
    extra_us = run(chip, graph, "naive").latency_us - run(without, graph, "naive").latency_us
    hbm = chip.spec.memory.hbm_bandwidth_gbps * 1e3 * chip.spec.memory.bandwidth_efficiency  # bytes per us
    assert extra_us == pytest.approx(2 * M * K / hbm, rel=0.1)


def test_an_input_pass_needs_dma_engines():
    data = chip_spec_dict(load_chip("gaudi2"))
    del data["engines"]["dma"]
    data["compiler"]["prefetch_depth"] = 0
    with pytest.raises(AccelsimError, match="DMA engines") as err:
        chip_from_dict(data)
    assert err.value.key == "compiler"


def test_the_compiled_size_budget_counts_the_input_passes(monkeypatch):
    """The compiler's passes count the tasks they make: the DMA tasks an fp8 matrix op's input pass adds (split
    over the DMA engines like any task) are counted, so a limit of the compiled size passes and one less refuses."""
    from accelsim.catalog import model_workload
    from accelsim.lowering import lower

    chip = load_chip("gaudi2")
    workload = model_workload("meta-llama/Llama-2-7b-hf", ["layers=2", "seq_len=256", "run.matmul_dtype=fp8"])
    graph = lower(workload)
    compiled = compile_graph(graph, chip).graph
    passes = [t for t in compiled.tasks if t.name.startswith("input:")]
    assert passes and all(t.op == "dma" for t in passes)
    monkeypatch.setattr("accelsim.limits.MAX_TASKS", len(compiled))
    assert len(compile_graph(graph, chip).graph) == len(compiled)
    # a limit the input passes themselves pass: refused by the input-pass step, before the split
    monkeypatch.setattr("accelsim.limits.MAX_TASKS", len(graph) + 1)
    with pytest.raises(AccelsimError, match=f"at least {len(graph) + 2:,} tasks") as err:
        compile_graph(graph, chip)
    assert err.value.key == "(size)"
