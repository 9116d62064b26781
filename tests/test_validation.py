"""GPU profiles against measured H200 latencies: lowering records as their code ran, fitting, validating."""

import json
from pathlib import Path

import pytest

import accelsim
from accelsim import make_task
from accelsim.cli import main
from accelsim.config import read_toml
from accelsim.costs import compute_cycles
from accelsim.fit import fit
from accelsim.validation import concurrency, lower_record, read_records, validate

DATA = Path(__file__).parent / "data"
H200 = read_records(DATA / "h200.jsonl")


def test_records_lower_to_the_kernels_their_code_launched():
    ops = lambda rec: [t.op for t in lower_record(rec).tasks]  # noqa: E731
    base = {"kind": "attention", "B": 2, "H": 2, "S": 512, "D": 64}
    assert ops({**base, "variant": "softmax_unfused"}) == ["bmm", "scale", "copy", "mask", "softmax", "bmm"]
    assert ops({**base, "variant": "sdpa_flash"}) == ["flash_attn_causal"]
    layer = lower_record({"kind": "layer", "variant": "sdpa_flash", "B": 1, "S": 512, "d_model": 256, "heads": 4})
    assert [t.op for t in layer.tasks].count("gemm") == 4
    train = lower_record({"kind": "layer_train", "variant": "sdpa_flash", "B": 1, "S": 512, "d_model": 256,
                          "heads": 4})
    assert [t.op for t in train.tasks].count("gemm") == 4 * 3  # each GEMM's backward is two GEMMs
    # one stream: every kernel waits for the one before
    assert all(t.deps == (train.tasks[i - 1].name,) for i, t in enumerate(train.tasks) if i)


def test_gpu_gemm_cost_shows_wave_quantisation():
    chip = accelsim.load_chip("h200")
    tensor = chip.groups[0]
    one_wave = compute_cycles(make_task("a", "gemm", [128 * 132, 4096, 256]), tensor, chip)
    two_waves = compute_cycles(make_task("b", "gemm", [128 * 133, 4096, 256]), tensor, chip)
    assert two_waves == pytest.approx(2 * one_wave, rel=0.01)


def test_tensor_and_cuda_cores_do_not_overlap_but_gaudi_engines_do():
    rec = next(r for r in H200 if r["kind"] == "concurrency")
    gpu = concurrency(accelsim.load_chip("h200"), rec)
    assert gpu["two_streams_ms"] == pytest.approx(gpu["serial_ms"])  # as measured: 2.30 against 2.35 ms
    gaudi = concurrency(accelsim.load_chip("gaudi2"), rec)
    assert gaudi["two_streams_ms"] < 0.9 * gaudi["serial_ms"]


def test_the_shipped_h200_parameters_are_what_fit_gives():
    result = fit("h200", H200)
    profile = read_toml(accelsim.resources.resolve("h200", "chips"))
    for key, value in result["parameters"].items():
        node = profile
        for part in key.split("."):
            node = node[part]
        assert node == value, key


def test_validation_accuracy_on_h200_as_measured_today():
    # Today's accuracy, kept from regressing; the target (median 10%, 90th percentile 25%) is not met yet.
    summary = validate(accelsim.load_chip("h200"), H200)["summary"]
    assert summary["overall"]["records"] == 99
    assert summary["overall"]["median_abs_error"] <= 0.15
    assert summary["overall"]["p90_abs_error"] <= 0.35
    assert summary["layer_train"]["median_abs_error"] <= 0.10
    repeat = validate(accelsim.load_chip("h200"), read_records(DATA / "h200_repeat.jsonl"))["summary"]
    assert repeat["overall"]["median_abs_error"] <= 0.17  # another H200, not fitted


def test_validate_command_json(capsys):
    code = main(["validate", "--chip", "h200", "--measurements", str(DATA / "h200.jsonl"), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and {"records", "summary"} <= set(out)
    rec = out["records"][0]
    assert {"kind", "measured_ms", "predicted_ms", "rel_error", "M", "K", "N"} <= set(rec)


def test_bad_measurement_files_are_one_line_errors(capsys, tmp_path):
    bad = tmp_path / "m.jsonl"
    bad.write_text('{"kind": "gemm", "M": 1}\nnot json\n')
    assert main(["validate", "--chip", "h200", "--measurements", str(bad)]) == 2
    assert "line 2" in capsys.readouterr().err
    assert main(["validate", "--chip", "h200", "--measurements", str(tmp_path / "none.jsonl")]) == 2
