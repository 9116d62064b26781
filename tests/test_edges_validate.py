"""Trustworthy at the edges: `accelsim validate` and `accelsim fit` check every measured record, report a bad one
as one line naming the file, the line and the key, list what they skip, and refuse a file with nothing to use."""

import json
import math
import re
import tomllib
from pathlib import Path

import pytest

import accelsim
from accelsim.cli import main
from accelsim.errors import AccelsimError
from accelsim.fit import fit
from accelsim.validation import lower_record, read_records, validate

DATA = Path(__file__).parent / "data"
GOOD = {"kind": "gemm", "M": 8192, "K": 4096, "N": 4096, "ms": 1.25, "iters": 10, "tflops": 219.9}
LAYER = {
    "kind": "layer",
    "model": "gpt2-small",
    "variant": "sdpa_flash",
    "B": 8,
    "S": 1024,
    "d_model": 768,
    "heads": 12,
    "ms": 2.5,
    "iters": 50,
}
CONC = {"kind": "concurrency", "gemm_ms": 1.4, "softmax_ms": 0.9, "serial_ms": 2.35, "two_streams_ms": 2.3}


def _file(tmp_path, *lines, name="m.jsonl"):
    path = tmp_path / name
    path.write_bytes(b"".join((ln if isinstance(ln, bytes) else ln.encode()) + b"\n" for ln in lines))
    return path


def _line(rec):
    return json.dumps(rec)


def _validate(capsys, path, *more, chip="h200"):
    code = main(["validate", "--chip", chip, "--measurements", str(path), *more])
    out, err = capsys.readouterr()
    return code, out, err


BAD = [
    ("[1, 2]", r"line 2: expected a JSON object \(\{\"kind\": \.\.\., \.\.\.\}\), got an array"),
    ('"gemm"', "line 2: expected a JSON object .*got a string"),
    ("null", "line 2: expected a JSON object .*got null"),
    ("{not json", r"line 2: not a JSON object \(Expecting property name"),
    (_line({k: v for k, v in GOOD.items() if k != "ms"}), "line 2: ms: required key is missing"),
    (_line({**GOOD, "ms": 0}), r"line 2: ms: must be a finite number greater than 0 \(got 0\)"),
    (_line({**GOOD, "ms": -1.5}), r"line 2: ms: must be a finite number greater than 0 \(got -1.5\)"),
    (
        _line({**GOOD, "ms": None}),
        r"line 2: ms: Input should be a valid number: a finite number greater than 0 \(got None\)",
    ),
    (
        _line({**GOOD, "ms": "1.2"}),
        r"line 2: ms: Input should be a valid number: a finite number greater than 0 \(got '1.2'\)",
    ),
    (
        _line({**GOOD, "ms": True}),
        r"line 2: ms: Input should be a valid number: a finite number greater than 0 \(got True\)",
    ),
    (_line({**GOOD, "ms": math.nan}), r"line 2: ms: must be a finite number greater than 0 \(got nan\)"),
    (_line({**GOOD, "ms": math.inf}), r"line 2: ms: must be a finite number greater than 0 \(got inf\)"),
    (_line({**GOOD, "ms": -math.inf}), r"line 2: ms: must be a finite number greater than 0 \(got -inf\)"),
    (
        _line({**GOOD, "M": 512.0}),
        r"line 2: M: Input should be a valid integer: an integer greater than 0 and at most 2\^62 \(got 512.0\)",
    ),
    (_line({**GOOD, "M": 0}), r"line 2: M: must be an integer greater than 0 and at most 2\^62 \(got 0\)"),
    (_line({**GOOD, "tflops": math.nan}), r"line 2: tflops: must be a finite number greater than 0 \(got nan\)"),
    (_line({**GOOD, "Ms": 1.0}), "line 2: Ms: unknown key 'Ms' \\(a typo\\?\\); allowed keys here: kind, M, K, N"),
    (_line({**GOOD, "dtype": "int4"}), "line 2: dtype: Input should be 'fp32', .* \\(got 'int4'\\)"),
    ('{"kind": "gemm", "M": 1, "M": 2, "K": 1, "N": 1, "ms": 1}', "line 2: key 'M' is given twice"),
    ('{"M": 1, "K": 1, "N": 1, "ms": 1}', "line 2: kind: required key is missing"),
    ('{"kind": 5, "ms": 1}', "line 2: kind: must be a string naming the record's kind, got 5"),
    (
        _line({"kind": "vector", "op": "tanh", "rows": 8192, "cols": 768, "ms": 0.1}),
        "line 2: op: Input should be 'add', 'gelu', 'exp', 'softmax', 'layernorm' or 'rowsum' \\(got 'tanh'\\)",
    ),
    (_line({**LAYER, "heads": 0}), r"line 2: heads: must be an integer greater than 0 and at most 2\^62 \(got 0\)"),
    (_line({**LAYER, "heads": 5}), r"line 2: heads: must divide d_model \(768\) into whole heads, got 5"),
    (
        _line({**LAYER, "variant": "hybrid", "d_model": 64, "heads": 1}),
        "line 2: heads: a hybrid layer needs at least 2 heads",
    ),
    (_line({**LAYER, "variant": "flash"}), "line 2: variant: Input should be 'softmax_unfused'"),
    (
        _line({"kind": "attention", "variant": "window256", "B": 1, "H": 2, "S": 300, "D": 64, "ms": 0.1}),
        r"line 2: S: must be a multiple of 256 \(the window of window256\), got 300",
    ),
    (
        _line({"kind": "attention", "variant": "linear_chunked", "B": 1, "H": 2, "S": 100, "D": 64, "ms": 0.1}),
        r"line 2: S: must be a multiple of 64 \(the chunk of linear_chunked\), got 100",
    ),
    (
        _line({"kind": "attention", "variant": "hybrid", "B": 1, "H": 2, "S": 512, "D": 64, "ms": 0.1}),
        "line 2: variant: Input should be",
    ),
    (_line({**CONC, "serial_ms": "fast"}), "line 2: serial_ms: Input should be a valid number"),
    (_line({k: v for k, v in CONC.items() if k != "two_streams_ms"}), "line 2: two_streams_ms: required key"),
    (_line({**GOOD, "M": 2**40, "K": 2**40, "N": 2**40}), "line 2: sizes too large to simulate"),
    (_line({**GOOD, "dtype": "fp8"}), "line 2: cannot simulate it on h200: .*dtype fp8"),
    (b'{"kind": "gemm", "M": 8, "K": 8, "N": 8, "ms": 1.0, "iters": 5\xff}', r"line 2: not UTF-8 text \(byte 0xff"),
]


@pytest.mark.parametrize("bad, message", BAD)
def test_a_bad_record_is_one_line_naming_file_line_and_key(capsys, tmp_path, bad, message):
    path = _file(tmp_path, _line(GOOD), bad if isinstance(bad, bytes) else bad, _line(LAYER))
    code, out, err = _validate(capsys, path)
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert re.match(f"accelsim: error: {re.escape(str(path))}: {message}", err), err


def test_every_record_is_checked_before_any_is_simulated(capsys, tmp_path):
    # the first bad line is reported, wherever it is; a syntax error is found before the records are checked
    path = _file(tmp_path, _line({**GOOD, "ms": 0}), _line(GOOD), "not json")
    code, _, err = _validate(capsys, path)
    assert code == 2 and f"{path}: line 3: not a JSON object" in err
    path = _file(tmp_path, _line(GOOD), _line({**GOOD, "ms": 0}), name="n.jsonl")
    assert f"{path}: line 2: ms:" in _validate(capsys, path)[2]


def test_blank_lines_keep_their_numbers(capsys, tmp_path):
    path = _file(tmp_path, "", _line(GOOD), "   ", _line({**GOOD, "ms": -1}))
    assert f"{path}: line 4: ms: must be a finite number greater than 0" in _validate(capsys, path)[2]


def test_kinds_not_predicted_are_listed_as_skipped_not_dropped(capsys, tmp_path):
    device = {"kind": "device", "torch": "2.11", "dev": "cuda", "dtype": "torch.bfloat16", "name": "NVIDIA H200"}
    generate = {  # a Gaudi 2 measurement: not one an H200 profile predicts
        "kind": "llm_generate",
        "chip": "gaudi2",
        "model": "EleutherAI/gpt-j-6b",
        "dtype": "bf16",
        "batch": 1,
        "input_tokens": 8,
        "output_tokens": 100,
        "cards": 1,
        "tokens_per_s": 143.6,
    }
    path = _file(
        tmp_path,
        _line(device),
        _line(GOOD),
        _line(generate),
        _line(generate),
        _line({"kind": "gemn"}),
        _line(CONC),
        _line({**CONC, "serial_ms": 9.0}),
        _line({"kind": "done", "seconds": 12.5}),
    )
    code, out, err = _validate(capsys, path, "--json")
    assert code == 0 and err == ""
    result = json.loads(out)
    assert [r["kind"] for r in result["records"]] == ["gemm"]
    assert result["concurrency"]["measured_serial_ms"] == 2.35  # the first concurrency record is the one compared
    skipped = result["skipped"]
    assert [(s["line"], s["kind"]) for s in skipped] == [
        (1, "device"),
        (3, "llm_generate"),
        (4, "llm_generate"),
        (5, "gemn"),
        (7, "concurrency"),
        (8, "done"),
    ]
    assert "measured on gaudi2" in skipped[1]["reason"] and "gemm, bmm" in skipped[3]["reason"]
    assert "first (line 6)" in skipped[4]["reason"]
    code, out, err = _validate(capsys, path)
    assert code == 0
    tail = out[out.index("skipped 6 records") :].splitlines()
    assert tail[0] == "skipped 6 records, not predicted:"
    assert tail[1] == "  1 device record (line 1): the GPU and its software, not a measurement"
    assert tail[2] == "  2 llm_generate records (line 3 and more): measured on gaudi2, not on h200"
    assert tail[3].startswith("  1 gemn record (line 5): not a kind accelsim predicts (gemm, bmm, vector")
    assert len(tail) == 6


def test_the_shipped_measurements_skip_only_their_device_and_done_records():
    result = validate(accelsim.load_chip("h200"), read_records(DATA / "h200.jsonl"))
    assert [(s.line, s.kind) for s in result.skipped] == [(1, "device"), (128, "done")]


@pytest.mark.parametrize(
    "lines, message",
    [
        ((), "no records: the file is empty"),
        (("", "  ", ""), "no records: the file is empty"),
        (
            (_line({"kind": "device", "name": "NVIDIA H200"}), _line({"kind": "done", "seconds": 1.0})),
            "no record accelsim predicts .*; records found: 1 device, 1 done",
        ),
        (
            (
                _line(
                    {
                        "kind": "llm_generate",
                        "chip": "gaudi2",
                        "model": "gpt2-xl",
                        "dtype": "bf16",
                        "batch": 1,
                        "input_tokens": 8,
                        "output_tokens": 8,
                        "cards": 8,
                        "tokens_per_s": 10.0,
                    }
                ),
            )
            * 3,
            "no record accelsim predicts .*; records found: 3 llm_generate",
        ),
    ],
)
def test_a_file_with_nothing_to_predict_is_an_error(capsys, tmp_path, lines, message):
    path = _file(tmp_path, *lines)
    code, out, err = _validate(capsys, path)
    assert code == 2 and out == ""
    assert re.match(f"accelsim: error: {re.escape(str(path))}: {message}", err) and len(err.splitlines()) == 1


def test_missing_and_directory_paths_are_one_line_errors(capsys, tmp_path):
    code, _, err = _validate(capsys, tmp_path)
    assert code == 2 and err == f"accelsim: error: {tmp_path}: is a directory, expected a JSON-lines file\n"
    code, _, err = _validate(capsys, tmp_path / "none.jsonl")
    assert code == 2 and err == f"accelsim: error: {tmp_path / 'none.jsonl'}: file not found\n"


def test_json_output_never_holds_nan_or_infinity(capsys, tmp_path):
    def refuse(constant):
        raise AssertionError(f"{constant} in the JSON output")

    tiny = {"kind": "vector", "op": "add", "rows": 8, "cols": 8, "ms": 0.005}  # under 0.05 ms: no statistics
    code, out, _ = _validate(capsys, _file(tmp_path, _line(tiny)), "--json")
    result = json.loads(out, parse_constant=refuse)
    assert code == 0 and result["summary"] == {} and result["skipped"] == []
    code, out, _ = _validate(capsys, _file(tmp_path, _line(tiny)))
    assert code == 0 and "none: every record is shorter" in out
    code, out, _ = _validate(capsys, DATA / "h100.jsonl", "--json", chip="h100")
    json.loads(out, parse_constant=refuse)


def test_a_records_dtype_is_checked_and_honoured(capsys, tmp_path):
    gaudi = accelsim.load_chip("gaudi2")
    rec = {"kind": "gemm", "M": 8192, "K": 8192, "N": 8192, "ms": 1.0}
    bf16, fp8 = validate(gaudi, [rec, {**rec, "dtype": "fp8"}]).records
    assert fp8.predicted_ms < 0.75 * bf16.predicted_ms  # the fp8 rate, and half the bytes
    assert fp8.to_dict()["dtype"] == "fp8" and "dtype" not in bf16.to_dict()
    with pytest.raises(AccelsimError, match=r"<records>: line 2: dtype: Input should be"):
        validate(gaudi, [rec, {**rec, "dtype": "bfloat16"}])


def test_records_given_as_mappings_are_checked_as_a_files_are():
    chip = accelsim.load_chip("h200")
    with pytest.raises(AccelsimError, match="<records>: line 1: ms: must be a finite number greater than 0"):
        validate(chip, [{**GOOD, "ms": math.nan}])
    with pytest.raises(AccelsimError, match="<records>: no record accelsim predicts"):
        validate(chip, [])
    with pytest.raises(AccelsimError, match=r"<record>: heads: must be an integer greater than 0"):
        lower_record({**LAYER, "heads": 0})
    with pytest.raises(AccelsimError, match=r"<record>: ms: must be a finite number greater than 0"):
        lower_record({**GOOD, "ms": 0})  # a record with its measurement is checked as one
    with pytest.raises(AccelsimError, match="cannot lower a 'device' record"):
        lower_record({"kind": "device"})


def test_one_window_of_keys_lowers():
    # S equal to the window: one block, nothing shifted (the copy of the shifted blocks would have no elements)
    graph = lower_record({"kind": "attention", "variant": "window256", "B": 1, "H": 2, "S": 256, "D": 64})
    assert all(t.shape[0] > 0 for t in graph.tasks)


# ---- accelsim fit ----


def _fit(capsys, chip, path, *more):
    code = main(["fit", "--chip", str(chip), "--measurements", str(path), *more])
    out, err = capsys.readouterr()
    return code, out, err


def _profile(tmp_path, drop):
    """The shipped H200 profile less one engine group, as TOML."""
    text = (accelsim.resources.resolve("h200", "chips")).read_text()
    data = tomllib.loads(text)
    del data["engines"][drop]
    lines = []
    for name, g in data["engines"].items():
        lines.append(f"[engines.{name}]")
        lines += [f"{k} = {json.dumps(v) if not isinstance(v, dict) else _inline(v)}" for k, v in g.items()]
    lines.append("[memory]")
    lines += [f"{k} = {json.dumps(v)}" for k, v in data["memory"].items()]
    head = [f"{k} = {json.dumps(v)}" for k, v in data.items() if not isinstance(v, dict)]
    path = tmp_path / f"no_{drop}.toml"
    path.write_text("\n".join(head + lines) + "\n")
    return path


def _inline(d):
    return "{ " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in d.items()) + " }"


@pytest.mark.parametrize(
    "drop, missing",
    [
        ("cuda", "it needs a vector group; this profile has tensor \\(matrix, tiled\\)"),
        (
            "tensor",
            'it needs a matrix group with model = "tiled" \\(tensor cores\\); this profile has cuda \\(vector\\)',
        ),
    ],
)
def test_fit_needs_tensor_and_cuda_core_groups(capsys, tmp_path, drop, missing):
    profile = _profile(tmp_path, drop)
    code, out, err = _fit(capsys, profile, DATA / "h200.jsonl")
    assert code == 2 and out == "" and len(err.splitlines()) == 1
    assert re.match(
        f"accelsim: error: {re.escape(str(profile))}: engines: accelsim fit fits GPU profiles: {missing}", err
    ), err


def test_fit_refuses_a_systolic_profile(capsys):
    code, _, err = _fit(capsys, "gaudi2", DATA / "h200.jsonl")
    assert code == 2 and 'engines: accelsim fit fits GPU profiles: it needs a matrix group with model = "tiled"' in err
    assert "mme (matrix, systolic), tpc (vector), dma (dma)" in err


@pytest.mark.parametrize(
    "records, message",
    [
        ([{"kind": "gemm", "M": 128, "K": 128, "N": 128, "ms": 0.012}] * 20, "no records to fit"),
        ([CONC, {"kind": "device"}], "no records to fit"),
        ([GOOD, LAYER, GOOD], "3 records to fit"),
        ([GOOD], "1 record to fit"),
    ],
)
def test_fit_refuses_too_few_usable_records(capsys, tmp_path, records, message):
    path = _file(tmp_path, *map(_line, records))
    code, out, err = _fit(capsys, "h200", path, "--json")
    assert code == 2 and out == "" and len(err.splitlines()) == 1
    assert err.startswith(
        f"accelsim: error: {path}: {message}: accelsim fit needs at least 8 (one per parameter) "
        "of kinds gemm, bmm, vector, attention, layer, layer_train, each of at least 0.05 ms"
    ), err


def test_fit_reports_a_bad_record_with_its_line(capsys, tmp_path):
    path = _file(tmp_path, _line(GOOD), _line({**GOOD, "ms": "slow"}))
    code, _, err = _fit(capsys, "h200", path)
    assert code == 2
    assert f"{path}: line 2: ms: Input should be a valid number: a finite number greater than 0 (got 'slow')" in err
    with pytest.raises(AccelsimError, match="<records>: line 1: M: must be an integer greater than 0"):
        fit("h200", [{**GOOD, "M": 0}])
