"""Bad input at the edges: numbers past int64, inf and tiny clocks, sizes that cannot fit, deep nesting, special
files, colliding engine names, loose types. Each gets one line ``accelsim: error: FILE: KEY: ...`` and exit 2."""

import os
import re
import time
from pathlib import Path

import pytest

from accelsim import chip_from_dict, graph_from_dict, make_task
from accelsim.chip import load_chip
from accelsim.cli import main
from accelsim.compiler import compile_graph
from accelsim.config import read_toml
from accelsim.costs import check_cycles, serial_cycles_bound
from accelsim.errors import AccelsimError, shown
from accelsim.graph import load_graph
from accelsim.limits import MAX_COUNT, MAX_FILE_BYTES, MAX_NESTING, MAX_TASKS
from accelsim.lowering import lower
from accelsim.resources import resolve
from accelsim.workload import load_workload

from conftest import deadline

ROOT = Path(__file__).parent.parent
GAUDI2 = (ROOT / "chips" / "gaudi2.toml").read_text()
GPT2 = (ROOT / "workloads" / "gpt2-small.toml").read_text()
EXAMPLE = str(ROOT / "examples" / "attention_head.toml")


def cli_error(capsys, *argv, seconds=20):
    """Run the CLI; it must fail with exit 2 and one line ``accelsim: error: ...``, which is returned."""
    with deadline(seconds):
        code = main(list(argv))
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("accelsim: error: "), (code, err)
    return lines[0].removeprefix("accelsim: error: ")


def expect(message, source, key, *words):
    assert message.startswith(f"{shown(str(source))}: {key}: "), message
    for w in words:
        assert w in message, (w, message)


def write(tmp_path, text, name="f.toml"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def chip_file(tmp_path, old, new):
    assert old in GAUDI2
    return write(tmp_path, GAUDI2.replace(old, new, 1), "chip.toml")


GRAPH = """[[tasks]]
name = "a"
op = "{op}"
shape = {shape}
"""


# ---- 1. numbers past int64, inf, tiny clocks ----------------------------------------------------------------


def test_task_shape_of_2_63_is_refused_with_the_bound(capsys, tmp_path):
    f = write(tmp_path, GRAPH.format(op="add", shape=f"[{2**63}]"))
    expect(cli_error(capsys, "run", "--chip", "gaudi2", "--graph", f), f, "tasks[0].shape[0]", "at most 2^62")


def test_gemm_whose_product_passes_int64_is_refused(capsys, tmp_path):
    f = write(tmp_path, GRAPH.format(op="gemm", shape=f"[{2**22}, {2**22}, {2**22}]"))
    expect(cli_error(capsys, "run", "--chip", "gaudi2", "--graph", f), f, "tasks[0] (task 'a'.shape)", "2^62")


def test_gemm_whose_flops_pass_int64_is_refused():
    # 2^31 x 2^31 x 1 MACs is within 2^62 elements, but at 2 FLOPs per MAC the FLOPs are not.
    with pytest.raises(AccelsimError, match=r"flops \(from shape .*2\^62"):
        make_task("g", "gemm", [2**31, 2**31, 1])


def test_graph_whose_total_passes_int64_is_refused():
    tasks = [{"name": f"t{i}", "op": "add", "shape": [1], "flops": 2**61} for i in range(3)]
    with pytest.raises(AccelsimError, match="add up to"):
        graph_from_dict({"tasks": tasks}, "g.toml")


def test_a_graph_built_in_python_whose_bytes_pass_int64_is_refused_too():
    """One owner of the totals (TaskGraph.validate): a task whose read and written bytes are each within 2^62 but
    whose sum is not was an OverflowError in the on-chip plan when the graph was built in Python."""
    from accelsim.graph import TaskGraph

    task = make_task("a", "add", [4], bytes_read=2**62, bytes_written=2**62)
    with pytest.raises(AccelsimError, match=r"the tasks' bytes add up to 9.22e\+18"):
        TaskGraph([task])


def test_dispatch_overhead_of_2_63_cycles_is_refused(capsys, tmp_path):
    f = chip_file(tmp_path, "dispatch_overhead_cycles = 100", f"dispatch_overhead_cycles = {2**63}")
    expect(cli_error(capsys, "chips", "show", f), f, "dispatch_overhead_cycles", "at most 1,000,000,000,000")


def test_vector_instructions_of_1e30_is_refused(capsys, tmp_path):
    f = write(
        tmp_path, GAUDI2.replace("[compiler]", "[vector_instructions]\nsoftmax = 1e30\n\n[compiler]"), "chip.toml"
    )
    expect(cli_error(capsys, "run", "--chip", f, "--graph", EXAMPLE), f, "vector_instructions.softmax", "at most 1e+06")


@pytest.mark.parametrize(
    "old,new,key,words",
    [
        ("hbm_bandwidth_gbps = 2450", "hbm_bandwidth_gbps = inf", "memory.hbm_bandwidth_gbps", "at most 1e+09"),
        ("hbm_bandwidth_gbps = 2450", "hbm_bandwidth_gbps = nan", "memory.hbm_bandwidth_gbps", "finite"),
        ("clock_ghz = 1.65", "clock_ghz = inf", "clock_ghz", "at least 0.01 and at most 100"),
        ("clock_ghz = 1.65", "clock_ghz = -inf", "clock_ghz", "at least 0.01"),
        ("clock_ghz = 1.65", "clock_ghz = 1e-300", "clock_ghz", "at least 0.01 and at most 100 (got 1e-300)"),
        ("bytes_per_cycle = 192", "bytes_per_cycle = 1e400", "engines.dma.bytes_per_cycle", "at most 1e+06"),
        ("sram_mb = 48", "sram_mb = 0.0", "memory.sram_mb", "greater than 0"),
        ("rows = 256", "rows = 9223372036854775807", "engines.mme.rows", "at most 1,000,000,000"),
    ],
)
def test_non_finite_and_out_of_range_numbers_in_a_profile_say_the_bounds(capsys, tmp_path, old, new, key, words):
    f = chip_file(tmp_path, old, new)
    expect(cli_error(capsys, "run", "--chip", f, "--graph", EXAMPLE), f, key, words)


def test_a_tiny_clock_is_refused_not_reported_as_3e298_us(capsys, tmp_path):
    f = chip_file(tmp_path, "clock_ghz = 1.65", "clock_ghz = 1e-300")
    message = cli_error(capsys, "run", "--chip", f, "--graph", EXAMPLE)
    assert "e+298" not in message


def test_set_mlp_ratio_inf_names_file_key_and_bound(capsys):
    source = str(resolve("gpt2-small", "workloads"))
    expect(
        cli_error(capsys, "run", "--chip", "h100", "--workload", "gpt2-small", "--set", "mlp_ratio=inf"),
        source,
        "model.mlp_ratio",
        "at most 1000",
    )


def test_set_mlp_ratio_tiny_names_file_and_key_not_K(capsys):
    source = str(resolve("gpt2-small", "workloads"))
    message = cli_error(capsys, "run", "--chip", "h100", "--workload", "gpt2-small", "--set", "mlp_ratio=1e-9")
    expect(message, source, "model.mlp_ratio", "rounds to 0", "from 1")


# ---- 2. sizes that cannot fit ---------------------------------------------------------------------------------


def test_an_engine_count_of_1e9_is_refused_at_once(capsys, tmp_path):
    f = chip_file(tmp_path, "count = 24", "count = 1000000000")
    start = time.perf_counter()
    expect(cli_error(capsys, "chips", "show", f), f, "engines.tpc.count", "at most 100,000")
    assert time.perf_counter() - start < 2


def test_engine_counts_adding_up_past_the_bound_are_refused():
    d = {
        "name": "x",
        "clock_ghz": 1.0,
        "memory": {"hbm_gb": 1, "hbm_bandwidth_gbps": 10, "sram_mb": 1},
        "engines": {f"g{c}": {"kind": "dma", "count": 60_000, "bytes_per_cycle": 1} for c in "ab"},
    }
    with pytest.raises(AccelsimError, match="add up to 120,000 engines; a chip may have at most 100,000"):
        chip_from_dict(d, "x.toml")


@pytest.mark.parametrize(
    "setting,key,words",
    [
        (f"seq_len={2**63}", "run.seq_len", "at most 2,147,483,647"),
        (f"layers={2**63}", "model.layers", "at most 2,147,483,647"),
        ("layers=2147483647", "model", "past the 4.61e+18 (2^62)"),
        ("seq_len=100000000", "model", "past the 4.61e+18 (2^62)"),
        ("layers=1000000", "model.layers", "tasks"),
    ],
)
def test_workload_sizes_that_cannot_fit_are_refused_before_building(capsys, setting, key, words):
    source = str(resolve("gpt2-small", "workloads"))
    message = cli_error(capsys, "run", "--chip", "h100", "--workload", "gpt2-small", "--set", setting, seconds=10)
    expect(message, source, key, words)


@pytest.mark.parametrize(
    "batch, count",
    [
        # 8 x 1024 row blocks: the graph counted to its LM head, whose 197 column tiles a block pass the limit
        ("8", "5,718,016"),
        # a million sequences of 1024 row blocks: the first row-wise op's blocks alone pass it
        ("1000000", "1,024,000,000"),
    ],
)
def test_tile_m_of_1_is_refused_with_the_count_and_what_to_change(capsys, batch, count):
    """One position per row block: the lowering counts its graph before it builds it (building even its first
    layer would take minutes, each query position's scores depending on every row block of its sequences) and
    refuses at once, naming the key to change."""
    source = str(resolve("gpt2-small", "workloads"))
    start = time.perf_counter()
    message = cli_error(
        capsys,
        "run",
        "--chip",
        "h100",
        "--workload",
        "gpt2-small",
        "--set",
        "granularity=tile",
        "--set",
        "tile_m=1",
        "--set",
        f"batch={batch}",
        seconds=10,
    )
    assert time.perf_counter() - start < 2
    expect(message, source, "lowering.tile_m", f"at least {count} tasks (about", f"at most {MAX_TASKS:,} tasks")


def test_a_products_tiles_are_counted_before_they_are_listed():
    """A vocabulary of 2^31 - 1 is 8.4 million column tiles of 256: the LM head's product, 32 row blocks of them,
    is counted, not listed, and refused before any task is made (listing its tiles, and the tasks of each row
    block, would take minutes and gigabytes)."""
    start = time.perf_counter()
    with pytest.raises(AccelsimError, match=r"lowering.tile_m: .* at least 268,4\d\d,\d{3} tasks") as err:
        lower(load_workload("gpt2-small", ["granularity=tile", f"vocab={2**31 - 1}", "layers=1"]))
    assert time.perf_counter() - start < 2
    assert err.value.key == "lowering.tile_m"


def test_batch_of_a_million_cannot_be_compiled_for_gaudi2():
    """The lowered graph is small (one task per op), but Gaudi 2's compiler would cut it into ~4e8 parts: the split
    sums its cuts' parts and refuses before it makes any, in well under a second."""
    graph = lower(load_workload("gpt2-small", ["batch=1000000"]))
    chip = load_chip("gaudi2")
    start = time.perf_counter()
    with pytest.raises(AccelsimError, match="compiled for gaudi2, the graph would have at least") as err:
        compile_graph(graph, chip)
    assert time.perf_counter() - start < 2
    assert err.value.key == "(size)"


@pytest.mark.parametrize("chip_name", ["gaudi2", "gaudi3", "tpu-v4"])
def test_a_compile_exactly_at_the_limit_passes_and_one_task_less_is_refused(chip_name, monkeypatch):
    """Chips whose compilers split and prefetch: the passes count exactly, so a limit of the compiled graph's size
    lets the same graph through and one less refuses it (a GPU's compiler makes no tasks: fusion only removes)."""
    chip = load_chip(chip_name)
    graph = lower(load_workload("gformer-gpt"))
    compiled = compile_graph(graph, chip).graph
    monkeypatch.setattr("accelsim.limits.MAX_TASKS", len(compiled))
    again = compile_graph(graph, chip).graph
    assert [t.name for t in again.tasks] == [t.name for t in compiled.tasks]
    monkeypatch.setattr("accelsim.limits.MAX_TASKS", len(compiled) - 1)
    with pytest.raises(AccelsimError, match=f"compiled for {chip_name}, the graph would have at least"):
        compile_graph(graph, chip)


def test_a_run_whose_time_would_pass_int64_is_refused(tmp_path):
    """In bounds one by one, a 1 MB/s HBM at 100 GHz and a batch of 100,000 make a run of ~5e19 cycles, which
    overflowed the simulator's 64-bit clock (memory.py); the bound says so first (the cost table calls
    check_cycles)."""
    text = (ROOT / "chips" / "h100.toml").read_text()
    text = re.sub(r"(?m)^hbm_bandwidth_gbps = .*$", "hbm_bandwidth_gbps = 0.001", text)
    text = re.sub(r"(?m)^clock_ghz = .*$", "clock_ghz = 100", text)
    chip = load_chip(write(tmp_path, text, "slow.toml"))
    graph = lower(load_workload("gpt2-small", ["batch=100000"]))
    assert serial_cycles_bound(graph, chip) > MAX_COUNT
    with pytest.raises(AccelsimError, match=r"\(size\): on h100 the run could last up to 4.6\de\+19 cycles"):
        check_cycles(serial_cycles_bound(graph, chip), graph, chip)


def test_the_cycle_bound_holds_for_shipped_runs():
    from accelsim import run
    from accelsim.compiler import compile_graph

    for chip_name in ("gaudi2", "h100"):
        chip = load_chip(chip_name)
        graph = compile_graph(lower(load_workload("gpt2-small")), chip).graph
        check_cycles(serial_cycles_bound(graph, chip), graph, chip)
        assert run(chip, graph).latency_cycles <= serial_cycles_bound(graph, chip)


# ---- 3. nesting and size, before parsing ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "a = " + "[" * 1000 + "]" * 1000 + "\n",
        "a = " + "{b = " * 1000 + "1" + "}" * 1000 + "\n",
        "a = " + "[" * 100_000 + "\n",  # unbalanced: still refused before parsing
    ],
)
def test_deep_nesting_is_refused_before_parsing(capsys, tmp_path, text):
    f = write(tmp_path, text)
    message = cli_error(capsys, "chips", "show", f, seconds=5)
    assert message.startswith(f"{f}: ") and f"at most {MAX_NESTING} levels" in message


def test_a_deeply_nested_set_value_is_refused_before_parsing(capsys):
    message = cli_error(capsys, "run", "--chip", "h100", "--workload", "gpt2-small", "--set", "seq_len=" + "[" * 2000)
    assert (
        message == f"--set seq_len: arrays or tables nested more than {MAX_NESTING} deep; at most {MAX_NESTING} "
        "levels are allowed"
    )


def test_a_long_bad_value_is_quoted_cut_short(capsys):
    message = cli_error(capsys, "run", "--chip", "h100", "--workload", "gpt2-small", "--set", "seq_len=" + "x" * 5000)
    assert message.endswith("(got '" + "x" * 79 + "... (5,002 characters))") and len(message) < 400


def test_dotted_keys_thousands_deep_are_refused_fast(capsys, tmp_path):
    f = write(tmp_path, ".".join(["a"] * 20_000) + " = 1\n")
    start = time.perf_counter()
    message = cli_error(capsys, "chips", "show", f, seconds=5)
    assert "dotted key" in message and time.perf_counter() - start < 1


def test_nesting_inside_strings_and_comments_does_not_count(tmp_path):
    deep = "[" * 100
    p = tmp_path / "ok.toml"
    p.write_text(f'a = "{deep}"\nb = \'{deep}\'\nc = """\n{deep}\n"""\n# {deep}\nd = "{".".join("x" * 50)}"\n')
    assert read_toml(p)["a"] == deep


def test_a_file_past_the_size_bound_is_refused_unread(capsys, tmp_path):
    p = tmp_path / "big.toml"
    with open(p, "wb") as f:
        f.truncate(MAX_FILE_BYTES + 1)  # sparse: nothing to read, and nothing is read
    message = cli_error(capsys, "chips", "show", str(p))
    assert message == f"{p}: is larger than {MAX_FILE_BYTES:,} bytes, the most an input file may be"


def test_a_long_word_without_dots_scans_in_linear_time(tmp_path):
    p = tmp_path / "word.toml"
    p.write_text("a" * (MAX_FILE_BYTES - 10) + " = 1\n")
    start = time.perf_counter()
    assert len(read_toml(p)) == 1
    assert time.perf_counter() - start < 3


@pytest.mark.parametrize("text", ['"""' + 'x\\"' * 1_000_000, '"' + 'x\\"' * 1_000_000, 'a"' * 2_000_000])
def test_unterminated_strings_scan_in_linear_time(tmp_path, text):
    p = tmp_path / "quotes.toml"
    p.write_text(text)
    start = time.perf_counter()
    with pytest.raises(AccelsimError, match="not valid TOML"):
        read_toml(p)
    assert time.perf_counter() - start < 3


# ---- 4. special paths ----------------------------------------------------------------------------------------


def test_dev_zero_is_refused_not_read(capsys):
    message = cli_error(capsys, "chips", "show", "/dev/zero", seconds=5)
    assert message == "/dev/zero: is not a regular file (a FIFO, a device or a socket), expected a TOML file"


def test_a_fifo_is_refused_without_hanging(capsys, tmp_path):
    fifo = tmp_path / "pipe.toml"
    os.mkfifo(fifo)
    message = cli_error(capsys, "run", "--chip", "gaudi2", "--graph", str(fifo), seconds=5)
    assert message.startswith(f"{fifo}: is not a regular file")


def test_a_directory_is_refused(capsys, tmp_path):
    message = cli_error(capsys, "run", "--chip", "gaudi2", "--graph", str(tmp_path))
    assert message == f"{tmp_path}: is a directory, expected a TOML file"


@pytest.mark.skipif(not Path("/proc/1/mem").exists(), reason="no /proc")
def test_proc_mem_gives_one_line(capsys):
    message = cli_error(capsys, "chips", "show", "/proc/1/mem", seconds=5)
    assert message.startswith("/proc/1/mem: ")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_gives_one_line(capsys, tmp_path):
    p = Path(write(tmp_path, GAUDI2))
    p.chmod(0)
    assert cli_error(capsys, "chips", "show", str(p)) == f"{p}: cannot read it: permission denied"


def test_a_utf8_byte_order_mark_is_accepted(tmp_path):
    p = tmp_path / "bom.toml"
    p.write_bytes(b"\xef\xbb\xbf" + GAUDI2.encode())
    assert load_chip(p).name == "gaudi2"
    g = tmp_path / "bom-graph.toml"
    g.write_bytes(b"\xef\xbb\xbf" + Path(EXAMPLE).read_bytes())
    assert len(load_graph(g)) == 5


# ---- 5. engine instance names --------------------------------------------------------------------------------


def test_colliding_instance_names_are_refused_naming_both_groups(capsys, tmp_path):
    text = GAUDI2.replace(
        "[engines.dma]", '[engines.tpc1]\nkind = "vector"\ncount = 1\nlanes = { bf16 = 128 }\n\n[engines.dma]'
    )
    f = write(tmp_path, text, "chip.toml")  # tpc has 24 engines: tpc10 is both tpc's 11th and tpc1's first
    expect(
        cli_error(capsys, "run", "--chip", f, "--graph", EXAMPLE, "--json"),
        f,
        "engines.tpc1",
        "'tpc' and 'tpc1'",
        "'tpc10'",
    )


def test_groups_ending_in_digits_that_do_not_collide_keep_every_engine(capsys, tmp_path):
    import json

    text = GAUDI2.replace(
        "[engines.dma]", '[engines.tpc9x]\nkind = "vector"\ncount = 3\nlanes = { bf16 = 128 }\n\n[engines.dma]'
    )
    chip = load_chip(write(tmp_path, text, "chip.toml"))
    assert len(set(chip.instance_names)) == len(chip.instance_names) == 2 + 24 + 3 + 8
    assert main(["run", "--chip", str(tmp_path / "chip.toml"), "--graph", EXAMPLE, "--json"]) == 0
    engines = json.loads(capsys.readouterr().out)["engines"]
    assert len(engines) == len(chip.instance_names)


# ---- 6. strict types -----------------------------------------------------------------------------------------


def test_an_empty_engines_list_is_an_error_not_the_default(capsys, tmp_path):
    f = write(tmp_path, GRAPH.format(op="add", shape="[8]") + "engines = []\n")
    expect(
        cli_error(capsys, "run", "--chip", "gaudi2", "--graph", f),
        f,
        "tasks[0] (task 'a'.engines)",
        "at least one engine kind",
    )
    with pytest.raises(AccelsimError, match="at least one engine kind"):
        make_task("a", "add", [8], engines=[])


@pytest.mark.parametrize(
    "setting,key,words",
    [
        ("linear_heads=true", "attention.linear_heads", "valid integer"),
        ("embeddings=1", "model.embeddings", "true or false (got 1)"),
        ("class_token=0", "model.class_token", "true or false (got 0)"),
        ("batch=2.0", "run.batch", "valid integer"),
    ],
)
def test_bool_is_not_an_int_and_an_int_is_not_a_bool_in_a_workload(capsys, setting, key, words):
    source = str(resolve("gpt2-small", "workloads"))
    message = cli_error(capsys, "run", "--chip", "h100", "--workload", "gpt2-small", "--set", setting)
    expect(message, source, key, words)


def test_bool_is_not_an_int_in_a_profile(capsys, tmp_path):
    f = chip_file(tmp_path, "fuse_vector_chains = true", "fuse_vector_chains = 1")
    expect(cli_error(capsys, "chips", "show", f), f, "compiler.fuse_vector_chains", "true or false")
    f = chip_file(tmp_path, "count = 24", "count = true")
    expect(cli_error(capsys, "chips", "show", f), f, "engines.tpc.count", "valid integer")


def test_every_shipped_file_still_loads():
    from accelsim.resources import shipped_names

    for name in shipped_names("chips"):
        load_chip(name)
    for name in shipped_names("workloads"):
        load_workload(name)
    assert re.match(r"\w", load_graph(EXAMPLE).name)


def test_a_path_with_a_nul_byte_gives_one_line(capsys):
    message = cli_error(capsys, "chips", "show", "dir/a\x00b.toml")
    assert message.startswith("dir/a\x00b.toml: ")
