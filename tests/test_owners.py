"""One owner per rule: each rule is written once and called, and where the same thing is said twice (the
compiler's pass numbers in its docstring and in its section headers) the two agree."""

import re
from pathlib import Path

import pytest

import accelsim
import accelsim.compiler as compiler
from accelsim.trace import chrome_trace

from conftest import tiny_chip_dict

PACKAGE = Path(accelsim.__file__).parent


def test_the_docstring_and_the_section_headers_number_the_passes_alike():
    documented = {int(n): name.lower() for n, name in re.findall(r"^(\d)\. \*\*([^.*]+)", compiler.__doc__, re.M)}
    source = Path(compiler.__file__).read_text()
    headed: dict[int, str] = {}
    for numbers, names in re.findall(r"^# ---- ([\d and]+)\. ([a-z -]+?) -", source, re.M):
        nums = [int(n) for n in re.findall(r"\d", numbers)]
        parts = [p.strip().removeprefix("the ") for p in names.split(" and ")]
        headed.update(zip(nums, parts, strict=True))
    assert documented == {1: "edges", 2: "fusion", 3: "split", 4: "prefetch", 5: "on-chip plan"}
    assert headed == documented


def test_the_chip_converts_cycles_to_time_and_the_trace_uses_it():
    chip = accelsim.chip_from_dict(tiny_chip_dict(clock_ghz=2.0), "tiny.toml")
    assert chip.cycles_to_us(3000) == pytest.approx(1.5) and chip.cycles_per_second == 2e9
    assert chip.seconds_to_cycles(1.5e-6) == pytest.approx(3000)
    graph = accelsim.TaskGraph([accelsim.make_task("a", "add", [4096]), accelsim.make_task("b", "add", [4096])])
    results = accelsim.run(chip, graph)
    events = [e for e in chrome_trace(results)["traceEvents"] if e.get("ph") == "X"]
    assert [e["ts"] + e["dur"] for e in events] == [pytest.approx(chip.cycles_to_us(f)) for f in results.end]


def test_only_the_chip_turns_its_clock_into_a_time_scale():
    """A module that wrote ``clock_ghz * 1e3`` or ``* 1e9`` itself would be a second owner of the conversion (the
    collective cost models take a clock in Hz as an argument)."""
    allowed = {"chip.py", "collective_costs.py"}
    writers = sorted(
        p.name
        for p in PACKAGE.rglob("*.py")
        if re.search(r"clock_ghz \* 1e[39]|1\.0 / \(.*clock_ghz", p.read_text()) and p.name not in allowed
    )
    assert writers == []


def test_only_the_chip_turns_its_hbm_gb_into_bytes():
    """Binary gigabytes (vocabulary.GIB) have one owner, Chip.hbm_bytes: generation, system runs and training read
    a card's HBM through it (generation kept its own HBM_GB and system_run and training wrote ``2**30``)."""
    chip = accelsim.chip_from_dict(tiny_chip_dict(memory={"hbm_gb": 3, "hbm_bandwidth_gbps": 16, "sram_mb": 1}), "t")
    assert chip.hbm_bytes == 3 * 2**30
    writers = sorted(
        p.name
        for p in PACKAGE.rglob("*.py")
        if re.search(r"2 ?\*\* ?30|1 << 30|1024 ?\*\* ?3|memory\.hbm_gb \*", p.read_text())
        and p.name not in ("vocabulary.py", "chip.py")
    )
    assert writers == []


def test_one_roofline_gives_the_cost_tables_estimates_and_the_per_task_estimate():
    from accelsim.costs import CostTable, estimate_cycles, roofline
    from accelsim.lowering import lower
    from accelsim.workload import load_workload

    chip = accelsim.chip_from_dict(tiny_chip_dict(dispatch_overhead_cycles=7, launch_gap_cycles=3), "tiny.toml")
    graph = lower(load_workload("gpt2-small", ["layers=1", "seq_len=64", "batch=1"]))
    table = CostTable.build(graph, chip)
    for i, t in enumerate(graph.tasks):
        for g, group in enumerate(chip.groups):
            c = int(table.compute[i, g])
            want = -1 if c < 0 else 3 + max(7 + c, -(-int(table.stream[i]) // int(chip.hbm_bytes_per_cycle)))
            assert table.estimate[i, g] == want
            assert estimate_cycles(t, group, chip) == (-1 if c < 0 else roofline(c, int(table.stream[i]), chip))
    # Python integers stay exact past 64 bits, for the size check that runs before any array is filled
    assert roofline(2**70, 0, chip) == 3 + 7 + 2**70


def test_the_mlp_width_rule_is_one_function_that_presets_shards_and_hf_configs_call():
    from accelsim.hf_config import model_spec_from_config
    from accelsim.parallel import Layout
    from accelsim.system import load_system
    from accelsim.system_run import place
    from accelsim.workload import DEFAULT_MLP_RATIO, load_workload, mlp_width, workload_data

    assert mlp_width(768) == 3072 and mlp_width(100, 2.675) == 268 and DEFAULT_MLP_RATIO == 4.0
    assert load_workload("gpt2-small", ["mlp_ratio=2.5", "d_model=960"]).d_ff == mlp_width(960, 2.5) == 2400
    # a tensor-parallel shard starts from the unsharded width the same rule gives
    data, source = workload_data("gpt2-small", ["layers=1", "mlp_ratio=3.0", "heads=16"])
    shard = place(load_system("dgx-h100"), Layout(8, 1, 1), data, source).workload
    assert shard.d_ff * 8 == mlp_width(768, 3.0)
    config = {"model_type": "mpt", "d_model": 1000, "n_heads": 8, "n_layers": 2, "vocab_size": 64}
    assert model_spec_from_config({**config, "expansion_ratio": 3}, "c.json")["d_ff"] == 3000
    assert model_spec_from_config(config, "c.json")["d_ff"] == mlp_width(1000)


def test_no_module_but_workload_writes_the_mlp_width_rule():
    writers = sorted(
        p.name
        for p in PACKAGE.rglob("*.py")
        if re.search(r"round\([^)]*(d_model|ratio)[^)]*\*|\* 4\.0\b", p.read_text()) and p.name != "workload.py"
    )
    assert writers == []


def test_run_compare_and_explicit_compile_and_cost_through_the_runner(monkeypatch):
    from accelsim import runner
    from accelsim.compare import compare
    from accelsim.explicit import explicit_step
    from accelsim.lowering import lower
    from accelsim.parallel import Layout
    from accelsim.system import load_system
    from accelsim.workload import load_workload, workload_data

    compiled: list[str] = []
    real = runner.compile_graph

    def counting(graph, chip):
        compiled.append(chip.name)
        return real(graph, chip)

    monkeypatch.setattr(runner, "compile_graph", counting)
    gaudi1 = accelsim.load_chip("gaudi1")
    graph = lower(load_workload("gpt2-small", ["layers=1"]))
    accelsim.run(gaudi1, graph)
    assert [r.scheduler for r in compare(gaudi1, graph, ["naive", "balanced"]).results] == ["naive", "balanced"]
    data, source = workload_data("gpt2-small", ["layers=1", "heads=16", "seq_len=128"])
    assert explicit_step(load_system("dgx-h100"), Layout(8, 1, 1), data, source).latency_cycles > 0
    assert compiled == ["gaudi1", "gaudi1", "h100"]  # once each: compare compiles and costs once for both


def test_every_result_and_record_class_serialises_through_to_dict():
    """One name for a class's plain-data form (the package had to_dict, to_json and as_dict): to_dict."""
    other = sorted(
        f"{p.name}: {name}"
        for p in PACKAGE.rglob("*.py")
        for name in re.findall(r"def ((?:to|as)_(?!dict\b)\w+)\(self", p.read_text())
    )
    assert other == []
    from accelsim.bounds import lower_bound

    chip = accelsim.chip_from_dict(tiny_chip_dict(), "tiny.toml")
    graph = accelsim.TaskGraph([accelsim.make_task("a", "add", [4096])])
    results = accelsim.run(chip, graph)
    assert results.summary().to_dict()["latency_cycles"] == results.latency_cycles
    assert results.to_dict(tasks=False)["engines"] == {e.name: e.to_dict() for e in results.engines}
    assert lower_bound(graph, chip).to_dict()["cycles"] <= results.latency_cycles


def test_one_model_of_what_a_card_holds_serves_generation_system_runs_and_training():
    """accelsim.footprint owns a card's memory: generate's weights and KV cache, a system run's refusal and a
    training step's figures are its numbers (generation had memory_needed's own arithmetic, system_run
    memory_per_card beside card_memory)."""
    from accelsim.catalog import load_model, model_workload_data
    from accelsim.footprint import TRAINING_BYTES_PER_PARAMETER, card_memory
    from accelsim.generation import GB, memory_needed, workload_for
    from accelsim.parallel import Layout
    from accelsim.system import load_system
    from accelsim.system_run import place

    chip, model = accelsim.load_chip("gaudi2"), load_model("google/gemma-2-9b")  # local layers: a windowed cache
    for dtype in ("bf16", "fp8"):
        need = memory_needed(model, 4, 8192, dtype, chip)
        held = card_memory(workload_for(model, 4, 1, 0, dtype), Layout(1, 1, 1), cached_tokens=8192)
        assert (need.weights_gb, need.kv_cache_gb, need.hbm_gb) == (
            held.parameters / GB,
            held.kv_cache / GB,
            103.079215104,
        )
        assert held.gradients == held.optimizer == held.activations == 0
    # Gemma 2 alternates local (4,096-position window) and global layers: half the layers cache 4,096 of 8,192.
    wl = workload_for(model, 4, 1, 0, "bf16")
    full = card_memory(wl, Layout(1, 1, 1), cached_tokens=4096).kv_cache
    assert card_memory(wl, Layout(1, 1, 1), cached_tokens=8192).kv_cache == 1.5 * full

    data, source = model_workload_data("meta-llama/Llama-2-70b-hf", ["seq_len=4096", "batch=8", "mode=training"])
    with pytest.raises(accelsim.AccelsimError, match="memory") as refused:
        place(load_system("hls-gaudi2"), Layout(8, 1, 1), data, source)
    placed = place(load_system("hls-gaudi2"), Layout(8, 1, 1), data, source, memory_checked=False)
    held = card_memory(placed.workload, placed.layout)
    assert held.state == placed.workload.parameters * sum(TRAINING_BYTES_PER_PARAMETER)
    assert f"{held.state / 1e9:.1f} GB of parameters and optimizer state and {held.activations / 1e9:.1f} GB" in str(
        refused.value
    )


def test_an_inference_run_on_a_system_holds_fp8_products_weights_in_fp8_as_generate_does():
    """The one weights rule (footprint.weight_bytes) reaches system runs too: with run.matmul_dtype = "fp8" the
    matrices are held in fp8, the embeddings in run.dtype. Before, system_run counted every parameter in run.dtype,
    so Llama-2-70B (137 GB in bf16, 69 GB with fp8 matrices) was refused on one 103 GB Gaudi 2 card."""
    from accelsim.catalog import model_workload_data
    from accelsim.footprint import card_memory
    from accelsim.parallel import Layout
    from accelsim.system import load_system
    from accelsim.system_run import place

    system = load_system("hls-gaudi2")
    data, source = model_workload_data("meta-llama/Llama-2-70b-hf", ["seq_len=128", "batch=1"])
    with pytest.raises(accelsim.AccelsimError, match="138.0 GB of parameters"):
        place(system, Layout(1, 1, 1), data, source)
    data, source = model_workload_data("meta-llama/Llama-2-70b-hf", ["seq_len=128", "batch=1", "run.matmul_dtype=fp8"])
    wl = place(system, Layout(1, 1, 1), data, source).workload
    # The matrices at one byte each; the 32,000 x 8,192 token table and the LM head (untied: LlamaConfig's default)
    # at two, as the fp8 recipe keeps them in bf16.
    assert card_memory(wl, Layout(1, 1, 1)).parameters == wl.parameters + 2 * 32000 * 8192


def test_every_module_is_in_one_layer_of_the_docs_and_imports_only_from_its_own_or_earlier_layers():
    """docs/layout.md's table of layers is the package's map: every module of accelsim/ is in it once, and every
    import of one accelsim module by another (at the top, in a function, or for type checking) comes from the same
    layer or one above it, so the map says how data flows and the imports cannot drift from it."""
    import ast
    import re

    root = Path(__file__).resolve().parent.parent
    rank: dict[str, int] = {}
    table = [line for line in (root / "docs" / "layout.md").read_text().splitlines() if line.startswith("| ")]
    for i, line in enumerate(table[1:]):  # past the header (its rule starts "|-")
        for module in re.findall(r"`([^`/]+)/?`", line.split("|")[2]):
            assert module not in rank, f"{module} is in two layers"
            rank[module] = i
    modules = sorted(p.stem for p in (root / "accelsim").glob("*.py") if p.stem != "__init__")
    assert [m for m in modules if m not in rank] == []
    wrong = []
    for module in modules:
        tree = ast.parse((root / "accelsim" / f"{module}.py").read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                imported = [node.module.split(".")[0]] if node.module else [a.name for a in node.names]
                wrong += [(module, i) for i in imported if i in rank and rank[i] > rank[module]]
    assert wrong == []
