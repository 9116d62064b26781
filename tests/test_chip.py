"""Loading chip profiles: shipped figures, and one clear error for every kind of bad file."""

import math

import pytest

import accelsim
from accelsim import AccelsimError, load_chip
from accelsim.resources import shipped_names


@pytest.mark.parametrize(
    "name, matrix_bf16, vector_bf16, hbm",
    [
        ("gaudi1", 59.0, 3.7, 0.9),  # [HC24] 60 TFLOPS (derived 59); TPC derived ~3.7
        ("gaudi2", 432.5, 10.1, 2.45),  # [HC24] 432; TPC derived ~10.1
        ("gaudi3", 1835.0, 28.7, 3.67),  # [HC24] 1835 and 28.7
    ],
)
def test_shipped_gaudi_profiles_match_the_published_peaks(name, matrix_bf16, vector_bf16, hbm):
    h = load_chip(name).headline()
    assert h.peak_matrix_tflops["bf16"] == pytest.approx(matrix_bf16, rel=0.01)
    assert h.peak_vector_tflops["bf16"] == pytest.approx(vector_bf16, rel=0.01)
    assert h.hbm_tb_per_s == pytest.approx(hbm)


def test_every_shipped_profile_loads_and_engines_are_numbered():
    assert {"gaudi1", "gaudi2", "gaudi3"} <= set(shipped_names("chips"))
    chip = load_chip("gaudi2")
    assert chip.instance_names[:3] == ("mme0", "mme1", "tpc0")
    assert len(chip.instance_names) == 2 + 24 + 8
    assert chip.kinds == ("matrix", "vector", "dma")


def test_a_profile_can_be_loaded_by_path_and_by_name_with_suffix(tmp_path):
    src = (accelsim.resources.shipped_dir("chips") / "gaudi1.toml").read_text()
    (tmp_path / "mine.toml").write_text(src.replace('name = "gaudi1"', 'name = "mine"'))
    assert load_chip(tmp_path / "mine.toml").name == "mine"
    assert load_chip("gaudi1.toml").name == "gaudi1"


def _write(tmp_path, text):
    p = tmp_path / "chip.toml"
    p.write_text(text)
    return p


def _gaudi1_text():
    return (accelsim.resources.shipped_dir("chips") / "gaudi1.toml").read_text()


@pytest.mark.parametrize(
    "edit, key, words",
    [
        (lambda s: s.replace("clock_ghz = 1.8", ""), "clock_ghz", "required key is missing"),
        (lambda s: s.replace("rows = 128", 'rows = "128"'), "engines.mme.rows", "valid integer"),
        (
            lambda s: s.replace("count = 8                       # [L1]", "count = 0"),
            "engines.tpc.count",
            "greater than 0",
        ),
        (
            lambda s: s.replace("bytes_per_cycle = 64", "bytes_per_cycle = -64"),
            "engines.dma.bytes_per_cycle",
            "greater than 0",
        ),
        (lambda s: s.replace('kind = "vector"', 'kind = "vectr"'), "engines.tpc", "unknown kind 'vectr'; allowed:"),
        (lambda s: s.replace('dataflow = "os"', 'dataflow = "xs"'), "engines.mme.dataflow", "'os', 'ws' or 'is'"),
        (lambda s: s.replace("sram_mb = 24", "sram_mbb = 24"), "memory.sram_mbb", "unknown key 'sram_mbb'"),
        (
            lambda s: s.replace("hbm_bandwidth_gbps = 900", "hbm_bandwidth_gbps = true"),
            "memory.hbm_bandwidth_gbps",
            "valid number",
        ),
        (
            lambda s: s.replace("macs_per_cycle = { bf16 = 16384, fp32 = 4096 }", "macs_per_cycle = { bf17 = 1 }"),
            "engines.mme.macs_per_cycle",
            "bf16",
        ),
        (lambda s: s + "\n[vector_instructions]\nexpp = 3\n", "vector_instructions", "unknown op 'expp'"),
    ],
)
def test_bad_profiles_name_the_file_the_key_and_what_is_allowed(tmp_path, edit, key, words):
    path = _write(tmp_path, edit(_gaudi1_text()))
    with pytest.raises(AccelsimError) as err:
        load_chip(path)
    message = str(err.value)
    assert message.startswith(str(path)) and f": {key}" in message and words in message
    assert "\n" not in message


def test_a_typo_names_the_typo_and_lists_the_allowed_keys(tmp_path):
    path = _write(tmp_path, _gaudi1_text().replace("pipeline_latency_cycles = 4", "pipline_latency_cycles = 4"))
    message = str(pytest.raises(AccelsimError, load_chip, path).value)
    assert "engines.tpc.pipline_latency_cycles" in message and "pipeline_latency_cycles" in message


@pytest.mark.parametrize("text, words", [("", "empty"), ("x = [", "not valid TOML"), ("   \n", "empty")])
def test_empty_or_malformed_files(tmp_path, text, words):
    path = _write(tmp_path, text)
    assert words in str(pytest.raises(AccelsimError, load_chip, path).value)


def test_a_missing_file_lists_the_shipped_profiles():
    message = str(pytest.raises(AccelsimError, load_chip, "gaudi9").value)
    assert "gaudi9" in message and "gaudi1, gaudi2, gaudi3" in message


def test_an_engine_at_its_own_clock_is_converted_to_chip_cycles():
    from conftest import tiny_chip_dict

    d = tiny_chip_dict()
    d["engines"]["tpc"]["clock_ghz"] = 0.5  # half the chip clock: each engine cycle is two chip cycles
    chip = accelsim.chip_from_dict(d, "slow-tpc.toml")
    task = accelsim.make_task("a", "add", [80])
    assert accelsim.compute_cycles(task, chip.groups[1], chip) == 20


@pytest.mark.parametrize(
    "name, matrix_bf16, kinds",
    [
        ("tpu-v4", 275.0, ("matrix", "vector")),  # [C4] 275 TFLOPS BF16
        ("trainium2", 8 * 78.6, ("matrix", "vector", "scalar", "gpsimd", "dma")),  # [N3] 79 TFLOPS per core
        ("ascend910b", 354.0, ("matrix", "vector")),  # derived ~354 TFLOPS FP16
    ],
)
def test_other_accelerators_are_profiles_not_code(name, matrix_bf16, kinds):
    chip = load_chip(name)
    assert chip.headline().peak_matrix_tflops["bf16"] == pytest.approx(matrix_bf16, rel=0.01)
    assert chip.kinds == kinds


def test_trainium2_engines_run_at_their_own_clocks():
    chip = load_chip("trainium2")
    clocks = {g.name: chip.group_clock_ghz(g) for g in chip.groups}
    assert clocks == {"tensor": 2.4, "vector": 0.96, "scalar": 1.2, "gpsimd": 1.2, "dma": 2.4}
    vector = next(g for g in chip.groups if g.name == "vector")
    task = accelsim.make_task("a", "add", [512 * 100])
    # 100 vector-engine cycles at 0.96 GHz are 250 cycles of the 2.4 GHz chip clock.
    assert accelsim.compute_cycles(task, vector, chip) == math.ceil((100 + 4) * 2.4 / 0.96)


def test_every_shipped_chip_names_each_engine_once():
    for name in shipped_names("chips"):
        chip = load_chip(name)
        assert len(set(chip.instance_names)) == len(chip.instance_names) == sum(g.count for g in chip.groups)
