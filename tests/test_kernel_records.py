"""Kernel and collective records of the Gaudi file kind (tests/data/gaudi_kernels.jsonl, a copy of
../shared/calibration/gaudi's): read as written, told apart from the GPU calibration's gemm records, predicted by
the same paths as any graph and any collective, and a bad one refused as one line naming the line and the key."""

import copy
import json
import math
from pathlib import Path

import pytest

from accelsim import AccelsimError, kernel_records
from accelsim.chip import load_chip
from accelsim.cli import main
from accelsim.kernel_records import CollectiveRecord, GemmKernelRecord, is_kernel_record, record_dtype
from accelsim.validation import read_records, validate

DATA = Path(__file__).parent / "data"
KERNELS = DATA / "gaudi_kernels.jsonl"
RECORDS = [json.loads(line) for line in KERNELS.read_text().splitlines()]
GEMM = next(r for r in RECORDS if r["kind"] == "gemm")
ALL_REDUCE = next(r for r in RECORDS if r["kind"] == "collective" and r["chip"] == "gaudi2")


def test_the_copy_is_the_shared_file():
    shared = Path(__file__).parents[2] / "shared" / "calibration" / "gaudi" / "gaudi_kernels.jsonl"
    if not shared.exists():
        pytest.skip("../shared is not next to this checkout")
    assert shared.read_bytes() == KERNELS.read_bytes()


def test_every_record_is_read_as_its_kind():
    m = read_records(KERNELS)
    assert not m.skipped
    kinds = [type(r.spec) for r in m.records]
    assert kinds.count(GemmKernelRecord) == 24 and kinds.count(CollectiveRecord) == 6


@pytest.mark.parametrize(
    "written, dtype",
    [("bf16 (FP32 accumulate)", "bf16"), ("fp8 E4M3 (default fp8_type), bf16 output", "fp8"), ("FP32", "fp32")],
)
def test_a_dtype_as_written_names_its_first_word(written, dtype):
    assert record_dtype(written) == dtype


def test_measured_times_follow_the_sources_arithmetic():
    """The source's own derived_ms (M*N*(2K-1) / TFLOPS) and per-op times come back from the rates."""
    for r in read_records(KERNELS).records:
        spec = r.spec
        if isinstance(spec, GemmKernelRecord):
            assert spec.ms == pytest.approx(spec.params.derived_ms, rel=2e-3)
        elif isinstance(spec, CollectiveRecord) and spec.params.derived_time_per_op_ms is not None:
            assert spec.ms == pytest.approx(spec.params.derived_time_per_op_ms, rel=1e-3)
        elif isinstance(spec, CollectiveRecord) and spec.params.derived_time_per_op_us is not None:
            assert spec.ms * 1e3 == pytest.approx(spec.params.derived_time_per_op_us, rel=1e-3)


def test_a_gemm_is_predicted_as_a_graph_and_a_collective_on_the_chips_system():
    v = validate(load_chip("gaudi2"), [GEMM, ALL_REDUCE, {**ALL_REDUCE, "chip": "gaudi3"}])
    gemm, coll = v.records
    assert gemm.kind == "gemm bf16" and coll.kind == "collective"
    p = GEMM["params"]
    assert gemm.predicted_rate == pytest.approx(p["M"] * p["N"] * (2 * p["K"] - 1) / gemm.predicted_ms / 1e9, rel=1e-3)
    # An 8-card all-reduce of 32 MiB on 21 x 100 GbE all-to-all: busbw at most the 262.5 GB/s line rate.
    assert 200 < coll.predicted_rate <= 262.5
    assert [s.reason for s in v.skipped] == ["measured on gaudi3, not on gaudi2"]
    assert math.isclose(coll.rel_error, coll.predicted_rate / coll.measured_rate - 1, abs_tol=2e-3)


def test_gpu_gemm_records_are_read_as_before():
    gpu = {"kind": "gemm", "M": 4096, "K": 4096, "N": 4096, "ms": 0.2}
    v = validate(load_chip("h100"), [gpu])
    assert v.records[0].kind == "gemm"


def _mutated(path, **changes):
    rec = copy.deepcopy(GEMM if "gemm" in changes.pop("which", "gemm") else ALL_REDUCE)
    for k, v in changes.items():
        target = rec["params"] if k in rec["params"] or k in ("M", "ranks", "bytes_per_rank_input", "extra") else rec
        if v is None:
            target.pop(k)
        else:
            target[k] = v
    path.write_text(json.dumps(rec) + "\n")
    return path


@pytest.mark.parametrize(
    "which, change, key",
    [
        ("gemm", {"dtype": "bfloat17 x"}, "line 1: params.dtype"),
        ("gemm", {"M": 0}, "line 1: params.M"),
        ("gemm", {"unit": "GB/s"}, "line 1: unit"),
        ("gemm", {"value": -3.0}, "line 1: value"),
        ("gemm", {"extra": 1}, "line 1: params.extra"),
        ("collective", {"ranks": 1}, "line 1: params.ranks"),
        ("collective", {"op": "all_to_some"}, "line 1: params.op"),
        ("collective", {"bytes_per_rank_input": 5}, "line 1: params.bytes_per_rank"),
        ("collective", {"unit": "TFLOPS"}, "line 1: unit"),
        ("collective", {"params": None}, "line 1: params"),
    ],
)
def test_a_bad_record_is_one_line_naming_the_line_and_key(tmp_path, capsys, which, change, key):
    path = _mutated(tmp_path / "k.jsonl", which=which, **change)
    assert main(["validate", "--chip", "gaudi2", "--measurements", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"accelsim: error: {path}: {key}:"), err


def test_validate_prints_the_kernel_table(capsys):
    assert main(["validate", "--chip", "gaudi3", "--measurements", str(KERNELS)]) == 0
    out = capsys.readouterr().out
    assert "all_reduce 8 ranks" in out and "256 MiB per rank" in out and "measured on gaudi2" in out


def test_the_fitted_gaudi_profiles_hold_their_errors_on_the_kernel_records():
    """The errors docs/generation.md's Gaudi validation table reports for the kernel file (gaudi2 fitted to it,
    GEMMs; gaudi3 carrying gaudi2's fitted values over, collectives): medians as fitted, a little room for rounding."""
    g2 = validate(load_chip("gaudi2"), read_records(KERNELS)).summary
    assert g2["gemm bf16"].median_abs_error <= 0.025 and g2["gemm bf16"].records == 8
    assert g2["gemm fp8"].median_abs_error <= 0.025 and g2["gemm fp8"].records == 16
    assert g2["collective"].median_abs_error <= 0.005 and g2["collective"].records == 3
    g3 = validate(load_chip("gaudi3"), read_records(KERNELS)).summary
    assert g3["collective"].median_abs_error <= 0.025 and g3["collective"].records == 2


@pytest.mark.slow
def test_the_fitted_gaudi2_profile_holds_its_errors_on_the_generation_records():
    """The generation rows of the same table: one card and tensor parallel (both fitted to)."""
    g2 = validate(load_chip("gaudi2"), read_records(DATA / "gaudi2_generate.jsonl")).summary
    assert g2["llm_generate"].median_abs_error <= 0.08 and g2["llm_generate"].records == 40
    assert g2["llm_generate, several cards"].median_abs_error <= 0.07
    assert g2["llm_generate, several cards"].records == 12


def _collective(**params):
    rec = copy.deepcopy(ALL_REDUCE)
    for k, v in params.items():
        if v is None:
            rec["params"].pop(k, None)
        else:
            rec["params"][k] = v
    return CollectiveRecord(**rec)


@pytest.mark.parametrize(
    "params, message",
    [
        (
            {"bytes_per_rank_input": 4096},
            "params.bytes_per_rank: give exactly one of bytes_per_rank (all_reduce, reduce_scatter) and "
            "bytes_per_rank_input (all_gather)",
        ),
        (
            {"op": "all_gather"},
            "params.bytes_per_rank: all_gather takes bytes_per_rank_input",
        ),
        (
            {"bytes_per_rank": None, "bytes_per_rank_input": 4096},
            "params.bytes_per_rank: all_reduce takes bytes_per_rank",
        ),
        ({"ranks": 1}, "params.ranks: a collective needs at least 2 ranks, got 1"),
        (
            {"ranks": 16, "nodes": 2, "ranks_per_node": 4},
            "params.ranks: 16 ranks on 2 nodes: the ranks must be the nodes times ranks_per_node",
        ),
        (
            {"ranks": 15, "nodes": 2},
            "params.ranks: 15 ranks on 2 nodes: the ranks must be the nodes times ranks_per_node",
        ),
    ],
)
def test_a_collective_record_that_does_not_add_up_says_what_to_give(params, message):
    with pytest.raises(AccelsimError) as info:
        _collective(**params).check()
    assert str(info.value) == message


def test_two_ranks_make_a_collective():
    _collective(ranks=2).check()


def test_a_dtype_that_names_none_lists_the_dtypes():
    with pytest.raises(AccelsimError) as info:
        record_dtype("bfloat17 (FP32 accumulate)")
    assert str(info.value) == (
        "params.dtype: must start with a dtype (fp32, tf32, bf16, fp16, fp8, int8), then anything, "
        "e.g. 'bf16 (FP32 accumulate)'; got 'bfloat17 (FP32 accumulate)'"
    )


def test_a_kernel_record_is_a_gemm_or_collective_with_params():
    assert is_kernel_record(GEMM) and is_kernel_record(ALL_REDUCE)
    assert not is_kernel_record({"kind": "gemm", "M": 64, "K": 64, "N": 64, "ms": 0.01})  # the GPU calibration's
    assert not is_kernel_record({"kind": "llm_generate", "params": {}})


def test_a_prediction_keeps_the_record_and_adds_its_figures():
    gemm = validate(load_chip("gaudi2"), [GEMM]).records[0]
    assert gemm.to_dict() == {
        **GEMM,
        "measured_ms": gemm.measured_ms,
        "predicted_ms": gemm.predicted_ms,
        "predicted_value": gemm.predicted_rate,
        "rel_error": gemm.rel_error,
    }


def test_the_figures_are_rounded_as_printed_and_tell_one_story():
    """Times to 10 ns (5 decimals of a ms), rates to 2 decimals, errors to 4; the time and the rate of a prediction
    are one figure (the work over the time), and its error is the measured time over the predicted one, less 1."""
    measurements = read_records(KERNELS)
    rows = validate(load_chip("gaudi2"), measurements).records
    specs = [r.spec for r in measurements.records if r.spec.chip == "gaudi2"]
    assert len(rows) == len(specs) == 28
    for row, spec in zip(rows, specs, strict=True):
        assert row.measured_ms == round(row.measured_ms, 5) == pytest.approx(spec.ms, abs=5e-6)
        assert row.predicted_ms == round(row.predicted_ms, 5)
        assert row.predicted_rate == round(row.predicted_rate, 2)
        assert row.measured_rate == spec.value
        assert row.predicted_rate * row.predicted_ms == pytest.approx(spec.value * spec.ms, rel=1e-4)
        assert row.rel_error == round(row.rel_error, 4) == pytest.approx(spec.ms / row.predicted_ms - 1, abs=1e-4)
    assert [r.kind for r in rows].count("collective, several nodes") == 1
    assert rows[-1].kind == "collective, several nodes" and rows[-1].record["params"]["nodes"] == 2


def _one_line(path, record):
    path.write_text(json.dumps(record) + "\n")
    return read_records(path)


def test_a_gemm_the_chip_cannot_run_is_refused_naming_the_line(tmp_path):
    fp8 = next(r for r in RECORDS if r["kind"] == "gemm" and r["params"]["dtype"].startswith("fp8"))
    path = tmp_path / "k.jsonl"
    with pytest.raises(AccelsimError) as info:
        validate(load_chip("gaudi1"), _one_line(path, {**fp8, "chip": "gaudi1"}))
    assert str(info.value).startswith(f"{path}: line 1: cannot simulate it on gaudi1: task 'k0.gemm': no engine")


def test_a_gemm_too_large_to_count_is_refused_naming_the_line(tmp_path):
    huge = copy.deepcopy(GEMM)
    huge["params"].update(M=2**40, K=2**40, N=2**40)
    path = tmp_path / "k.jsonl"
    with pytest.raises(AccelsimError) as info:
        validate(load_chip("gaudi2"), _one_line(path, huge))
    assert str(info.value).startswith(f"{path}: line 1: sizes too large to simulate: task 'k0.gemm'.shape: shape")


@pytest.mark.parametrize(
    "ranks, nodes, why",
    [
        (64, 1, "nodes: 1 x 64 cards do not fit 1 node(s) of 8 cards of hls-gaudi2"),
        # Old code: the network's own limit escaped without the file and line.
        (4096, 512, "nodes x cards_per_node must be an integer from 1 to 1,024, got 4096"),
    ],
)
def test_a_collective_the_system_cannot_hold_is_refused_naming_the_line(tmp_path, ranks, nodes, why):
    big = copy.deepcopy(ALL_REDUCE)
    big["params"].update(ranks=ranks, nodes=nodes)
    path = tmp_path / "k.jsonl"
    with pytest.raises(AccelsimError) as info:
        validate(load_chip("gaudi2"), _one_line(path, big))
    assert str(info.value) == f"{path}: line 1: cannot place it on gaudi2's system: {why}"
    assert info.value.source == str(path) and info.value.key == "line 1"


def test_a_collective_the_model_says_never_ends_is_refused_naming_the_line(tmp_path, monkeypatch):
    monkeypatch.setattr(kernel_records, "collective_seconds", lambda op, nbytes, fabric: math.inf)
    path = tmp_path / "k.jsonl"
    with pytest.raises(AccelsimError) as info:
        validate(load_chip("gaudi2"), _one_line(path, ALL_REDUCE))
    assert str(info.value) == f"{path}: line 1: cannot predict it on gaudi2: inf ms"
    assert info.value.source == str(path) and info.value.key == "line 1"
