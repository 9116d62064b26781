"""The compiler's passes one at a time, on graphs small enough to follow by hand: what each part reads and waits
for, which tensors stay on chip, what the report says, and where a compiled graph is refused for its size."""

import pytest

import accelsim
from accelsim import TaskGraph, compile_graph, limits, make_task
from accelsim.compiler import (
    _absorb,
    _part_counts,
    _Parts,
    partition,
    plan_on_chip,
    split_over_engines,
    with_edges,
    with_input_passes,
)
from accelsim.errors import AccelsimError

from conftest import tiny_chip_dict


def chip(tpcs: int = 2, sram_mb: float = 8.0, **compiler):
    """tiny: one 4x4 MME, ``tpcs`` 8-lane TPCs, one DMA engine; 16 bytes a cycle of HBM."""
    d = tiny_chip_dict(compiler=compiler, memory={"hbm_gb": 1, "hbm_bandwidth_gbps": 16, "sram_mb": sram_mb})
    d["engines"]["tpc"]["count"] = tpcs
    return accelsim.chip_from_dict(d, "tiny.toml")


def gemms(n: int):
    """A chain of n 64 x 32 x 32 bf16 products: each reads 4,096 bytes of its producer and 2,048 of weights."""
    return with_edges(
        [
            make_task(f"g{k}", "gemm", [64, 32, 32], deps=[f"g{k - 1}"] if k > 1 else [], group=f"L{k}")
            for k in range(1, n + 1)
        ]
    )


# ---- the whole compiler, and its report -------------------------------------------------------------------------


def test_the_report_of_a_fused_split_prefetched_graph_counts_each_thing_once():
    c = chip(
        split_over_engines=True, fuse_vector_chains=True, keep_on_chip=True, on_chip_fraction=1.0, prefetch_depth=1
    )
    graph = TaskGraph(
        [
            make_task("a", "add", [800]),
            make_task("e", "exp", [800], deps=["a"]),
            make_task("g1", "gemm", [64, 32, 32]),
            make_task("g2", "gemm", [64, 32, 32], deps=["g1"]),
            make_task("m", "mul", [800], deps=["e"]),
        ]
    )
    compiled = compile_graph(graph, c)
    tasks = compiled.graph.tasks
    assert [(t.name, t.deps, t.on_chip) for t in tasks] == [
        ("prefetch:g2", (), True),
        ("g1", (), True),
        ("g2", ("g1", "prefetch:g2"), False),
        ("m#0", (), False),
        ("m#1", (), False),
    ]
    # a -> e -> m is one kernel, cut in two over the TPCs: each part does half of every op's elements.
    assert tasks[3].fused == tasks[4].fused == (("add", (400,)), ("exp", (400,)))
    report = compiled.report.to_dict()
    assert report == {
        "chip": "tiny",
        "tasks_before": 5,
        "tasks_after": 5,
        "tasks_per_op_before": {"add": 1, "exp": 1, "gemm": 2, "mul": 1},
        "tasks_per_op_after": {"dma": 1, "gemm": 2, "mul": 2},
        "fused_kernels": 1,  # m's two parts are one kernel
        "ops_fused_away": 2,
        "prefetches": 1,
        "tensors_on_chip": 2,  # g1's output and g2's weights
        "hbm_bytes_before": graph.total_bytes,
        "hbm_bytes_after": 15488,
        "flops_per_kind": {"dma": 0, "matrix": 2 * 131072, "vector": 2400},
        "warnings": [],  # a list, as JSON has it
    }
    assert compiled.report is compiled.report  # worked out once


def test_a_graph_compiled_for_another_chip_is_compiled_again_from_its_source_not_cut_twice():
    source = TaskGraph([make_task("p", "copy", [800]), make_task("q", "copy", [800], deps=["p"])])
    two = compile_graph(source, chip(tpcs=2, split_over_engines=True))
    assert [t.name for t in two.graph.tasks] == ["p#0", "p#1", "q#0", "q#1"]
    three = compile_graph(two.graph, chip(tpcs=3, split_over_engines=True))
    assert [t.name for t in three.graph.tasks] == ["p#0", "p#1", "p#2", "q#0", "q#1", "q#2"]
    assert three.source is source and three.report.tasks_before == 2
    assert three.graph.compiled.source is source and three.graph.compiled.chip == "tiny"


@pytest.mark.parametrize(
    ("split", "what"), [(True, "splits each op over its engines itself"), (False, "runs one kernel per op")]
)
def test_the_warning_for_a_users_cut_says_what_the_chip_would_have_done(split, what):
    graph = TaskGraph(
        [make_task("p", "copy", [800]), make_task("q", "copy", [800], deps=["p"])], meta={"granularity": "head"}
    )
    compiled = compile_graph(graph, chip(split_over_engines=split, keep_on_chip=True, prefetch_depth=1))
    assert compiled.report.warnings == (
        f"granularity head is the workload's own cut and overrides the compiler of tiny, which {what}; "
        "leave it unset for what the chip does",
    )
    assert [t.name for t in compiled.graph.tasks] == ["p", "q"]


def test_a_graph_at_op_granularity_gets_no_warning_and_is_cut():
    graph = TaskGraph([make_task("p", "copy", [800])], meta={"granularity": "op"})
    compiled = compile_graph(graph, chip(split_over_engines=True))
    assert compiled.report.warnings == () and len(compiled.graph) == 2


# ---- sizes past this machine --------------------------------------------------------------------------------------

REFUSAL = (
    "compiled for tiny, the graph would have at least 4 tasks (about 8 kB); at most 3 tasks fit this machine "
    "(about 6 kB); make the run smaller (run.batch, run.seq_len, model.layers) or give the chip's compiler fewer "
    "parts per op (compiler.slices, engine counts, more SRAM)"
)


def test_a_split_is_refused_before_it_makes_more_tasks_than_fit(monkeypatch):
    monkeypatch.setattr(limits, "MAX_TASKS", 3)
    c = chip(split_over_engines=True)
    assert len(split_over_engines(with_edges([make_task("p", "copy", [800])]), c)) == 2  # 2 of 3: fits
    two = with_edges([make_task("p", "copy", [800]), make_task("q", "copy", [800])])
    with pytest.raises(AccelsimError) as refused:
        split_over_engines(two, c, source="w.toml")
    assert (refused.value.detail, refused.value.key, refused.value.source) == (REFUSAL, "(size)", "w.toml")


def test_input_passes_are_refused_as_they_are_counted(monkeypatch):
    monkeypatch.setattr(limits, "MAX_TASKS", 3)
    c = chip()
    g, h = (make_task(n, "gemm", [64, 32, 32], dtype="fp8") for n in "gh")
    passed = with_input_passes([g], ["fp8"], c)
    assert [(t.name, t.deps, t.dep_bytes) for t in passed] == [("input:g", (), ()), ("g", ("input:g",), (0,))]
    assert passed[0].bytes_read == passed[0].bytes_written == 64 * 32  # M x K, one byte each
    with pytest.raises(AccelsimError, match="at least 4 tasks"):
        with_input_passes([g, h], ["fp8"], c)  # 2 given and 2 passes
    assert len(with_input_passes([g, h], ["fp8"])) == 4  # no chip given: no limit checked


def test_prefetches_are_refused_as_they_are_made(monkeypatch):
    monkeypatch.setattr(limits, "MAX_TASKS", 3)
    c = chip()
    out, n = plan_on_chip(gemms(2), 10**6, 1, 1, c)  # 2 products and 1 prefetch: fits
    assert n == 1 and len(out) == 3
    with pytest.raises(AccelsimError, match="at least 4 tasks"):
        plan_on_chip(gemms(2), 10**6, 1, 2, c, "w.toml")  # the prefetch in two shares


# ---- fusion -----------------------------------------------------------------------------------------------------


def test_a_fused_producer_brings_its_own_inputs_and_the_edge_between_them_disappears():
    # a = add(x, y); b = mul(a, x): b's kernel reads x twice over (once for a) and y, never a.
    a = make_task("a", "add", [800], deps=["x", "y"]).but(dep_bytes=(1600, 1600))
    b = make_task("b", "mul", [800], deps=["a", "x"]).but(dep_bytes=(1600, 1600))
    fused = _absorb(b, [a])
    assert (fused.deps, fused.dep_bytes) == (("x", "y"), (3200, 1600))
    assert fused.bytes_read == b.bytes_read - 1600 + a.bytes_read
    assert fused.flops == a.flops + b.flops and fused.fused == (("add", (800,)),)


# ---- the on-chip plan and prefetch ------------------------------------------------------------------------------


def test_each_products_weights_load_a_depth_of_products_ahead_over_every_dma_channel():
    out, n = plan_on_chip(gemms(4), 10**6, 1, channels=2)
    assert n == 3  # g2, g3 and g4: g1 has nothing to hide its load under
    assert [(t.name, t.deps) for t in out] == [
        ("prefetch:g2#0", ()),
        ("prefetch:g2#1", ()),
        ("g1", ()),
        ("prefetch:g3#0", ("g1",)),
        ("prefetch:g3#1", ("g1",)),
        ("g2", ("g1", "prefetch:g2#0", "prefetch:g2#1")),
        ("prefetch:g4#0", ("g2",)),
        ("prefetch:g4#1", ("g2",)),
        ("g3", ("g2", "prefetch:g3#0", "prefetch:g3#1")),
        ("g4", ("g3", "prefetch:g4#0", "prefetch:g4#1")),
    ]
    loads = [t for t in out if t.op == "dma"]
    assert all(t.bytes_read == t.bytes_written == t.shape[0] == 1024 and t.on_chip for t in loads)
    assert [t.prefetch_of for t in loads] == ["g2", "g2", "g3", "g3", "g4", "g4"]
    assert [t.group for t in loads] == ["L2", "L2", "L3", "L3", "L4", "L4"]  # its product's
    assert {(t.dtype, t.engines) for t in loads} == {("bf16", ("dma",))}
    assert [t.dep_bytes for t in loads] == [(), (), (0,), (0,), (0,), (0,)]  # it waits for g1, reads none of it
    assert out[5].dep_bytes == (4096, 1024, 1024)
    assert [t.on_chip for t in out if t.op == "gemm"] == [True, True, True, False]  # g4's output: nobody reads it


def test_with_depth_two_the_loads_start_two_products_ahead():
    out, n = plan_on_chip(gemms(4), 10**6, 2)
    assert n == 3
    assert [(t.name, t.deps) for t in out] == [
        ("prefetch:g2", ()),
        ("prefetch:g3", ()),
        ("g1", ()),
        ("prefetch:g4", ("g1",)),
        ("g2", ("g1", "prefetch:g2")),
        ("g3", ("g2", "prefetch:g3")),
        ("g4", ("g3", "prefetch:g4")),
    ]


def test_without_prefetch_only_outputs_are_kept_and_the_shortest_lived_first():
    out, n = plan_on_chip(gemms(4), 10**6, 0)
    assert n == 0 and [t.name for t in out] == ["g1", "g2", "g3", "g4"]
    # Room for one 4,096-byte output at a time: g1's (positions 0 to 1) and g3's (2 to 3) do not overlap; g2's
    # (1 to 2) overlaps both and comes after g1's, which ends first.
    out, _ = plan_on_chip(gemms(4), 4096, 0)
    assert [t.on_chip for t in out] == [True, False, True, False]
    out, _ = plan_on_chip(gemms(4), 4095, 0)
    assert not any(t.on_chip for t in out)


def test_a_prefetch_is_kept_only_where_its_weights_fit_beside_the_outputs():
    # 6,144 bytes: g1's output (4,096) and g2's weights (2,048) fit together, over positions 0 to 1.
    out, n = plan_on_chip(gemms(3), 4096 + 2048, 1)
    assert n == 1
    assert [(t.name, t.on_chip) for t in out] == [("prefetch:g2", True), ("g1", True), ("g2", False), ("g3", False)]
    # A byte less: g1's output, placed first of the two alike in life, leaves the weights no room.
    out, n = plan_on_chip(gemms(3), 4096 + 2047, 1)
    assert n == 0 and [(t.name, t.on_chip) for t in out] == [("g1", True), ("g2", False), ("g3", False)]
    out, n = plan_on_chip(gemms(2), 2047, 1)
    assert n == 0 and [t.name for t in out] == ["g1", "g2"]


def test_the_parts_of_a_cut_product_count_as_one_product():
    cut = [("g1", 2), ("g2", 2), ("g3", 3)]
    parts = [make_task(f"{g}#{j}", "gemm", [32, 32, 32]).but(origin=g) for g, n in cut for j in range(n)]
    out, n = plan_on_chip(with_edges(parts), 10**6, 1)
    assert n == 5  # every part of g2 and g3; g1's parts are the first product
    # Part j of g3 loads its weights once part j of g1 is done, or its last part; g2's have nothing to wait for.
    assert [(t.name, t.deps) for t in out if t.op == "dma"] == [
        ("prefetch:g2#0", ()),
        ("prefetch:g2#1", ()),
        ("prefetch:g3#0", ("g1#0",)),
        ("prefetch:g3#1", ("g1#1",)),
        ("prefetch:g3#2", ("g1#1",)),
    ]


# ---- the split ----------------------------------------------------------------------------------------------------


def test_a_part_waits_for_the_producer_parts_holding_its_rows():
    rows = _Parts(["a#0", "a#1"], 0, 8, [(0, 4), (4, 8)], 1)
    assert rows.overlap(0, 8, 1, 0, 4) == [4, 0]
    assert rows.overlap(0, 8, 1, 3, 5) == [1, 1]
    assert rows.overlap(0, 8, 1, 4, 8) == [0, 4]
    assert rows.overlap(1, 8, 1, 0, 4) == [4, 4]  # cut along another dimension: every part
    assert rows.overlap(0, 16, 1, 0, 4) == [4, 4]  # a first dimension of another length: every part
    columns = _Parts(["a#0", "a#1"], 1, 8, [(0, 4), (4, 8)], 2)  # the producer cut along its second dimension
    assert columns.overlap(0, 8, 1, 0, 4) == columns.overlap(0, 8, 2, 0, 4) == [4, 4]


def test_a_part_waits_for_the_producer_parts_holding_its_sequences():
    # Two sequences: the producer's 8 rows and the consumer's 16 each run over them one after the other.
    seqs = _Parts(["a#0", "a#1"], 0, 8, [(0, 4), (4, 8)], 2)
    assert seqs.overlap(0, 16, 2, 0, 8) == [4, 0]
    assert seqs.overlap(0, 16, 2, 8, 16) == [0, 4]
    assert seqs.overlap(0, 16, 2, 4, 12) == [4, 4]
    assert seqs.overlap(0, 16, 1, 0, 8) == [4, 4]  # the consumer's sequences unknown
    assert seqs.overlap(1, 16, 2, 0, 8) == [4, 4]
    assert _Parts(["a"], 0, 8, [(0, 8)], 1).overlap(0, 16, 1, 0, 8) == [8]


def test_split_parts_read_their_share_of_each_edge_and_of_memory():
    producer = make_task("p", "copy", [800])
    consumer = make_task(
        "q", "add", [800], deps=["p"], bytes_read=3200
    )  # reads p's 1,600 bytes and 1,600 more from memory
    out = split_over_engines(with_edges([producer, consumer]), chip(split_over_engines=True))
    assert [(t.name, t.origin, t.shape, t.deps, t.dep_bytes, t.bytes_read, t.bytes_written, t.flops) for t in out] == [
        ("p#0", "p", (400,), (), (), 800, 800, 0),
        ("p#1", "p", (400,), (), (), 800, 800, 0),
        ("q#0", "q", (400,), ("p#0",), (800,), 1600, 800, 400),
        ("q#1", "q", (400,), ("p#1",), (800,), 1600, 800, 400),
    ]


def test_a_part_cut_along_another_dimension_waits_for_every_producer_part_in_proportion():
    producer = make_task("p", "copy", [801])
    consumer = make_task("q", "copy", [800], deps=["p"]).but(dep_bytes=(1600,))
    out = split_over_engines([producer, consumer], chip(split_over_engines=True))
    assert [t.shape for t in out[:2]] == [(401,), (400,)]  # the first parts take the remainder
    assert [(t.deps, t.dep_bytes) for t in out[2:]] == [(("p#0", "p#1"), (400, 400))] * 2


def test_a_task_reading_more_from_its_dependencies_than_in_all_is_refused():
    bad = make_task("q", "copy", [800], deps=["p"]).but(dep_bytes=(1601,))
    with pytest.raises(AccelsimError) as refused:
        split_over_engines([make_task("p", "copy", [800]), bad], chip(split_over_engines=True))
    assert refused.value.key == "task 'q'.dep_bytes"
    assert refused.value.detail == "reads 1,601 bytes from its dependencies but 1,600 bytes in all"


def test_a_task_on_a_kind_the_chip_lacks_stays_whole():
    out = split_over_engines([make_task("p", "copy", [800], engines=["network"])], chip(split_over_engines=True))
    assert [(t.name, t.origin) for t in out] == [("p", None)]


def test_the_cut_is_one_part_per_engine_unless_slices_or_sram_ask_for_more():
    c = chip(split_over_engines=True)
    copy = make_task("c", "copy", [800])  # 1,600 bytes out
    assert partition(copy, c) == (0, 2)
    assert partition(copy, c, slices=4) == (0, 4)  # 4 parts of 200 on 2 TPCs load them as 2 of 400 do: a tie
    assert partition(copy, c, fit_bytes=400) == (0, 4)
    assert partition(copy, chip(tpcs=3, split_over_engines=True)) == (0, 3)
    assert _part_counts(copy, 0, 2, 3, 400) == [2, 3, 4]
    assert _part_counts(copy, 0, 2, 1, 0) == [2]
    assert _part_counts(copy, 0, 2, 1, 1600) == [2]  # the output fits already
    assert _part_counts(copy, 0, 2, 1000, 1) == [2, 800]  # never more parts than rows
    # One MME: a product stays whole unless sliced.
    gemm = make_task("g", "gemm", [64, 32, 32])
    assert partition(gemm, c) == (0, 1) and partition(gemm, c, slices=4) == (0, 4)


# ---- which passes the chip's compiler table turns on --------------------------------------------------------------


def test_where_tensors_stay_on_chip_an_op_is_cut_until_each_part_fits_a_quarter_of_the_sram():
    graph = TaskGraph([make_task("p", "copy", [800]), make_task("q", "copy", [800], deps=["p"])])
    # 1,600 bytes of SRAM for kept tensors: parts of at most 400 bytes, 4 of each 1,600-byte output.
    small = chip(sram_mb=0.0016, split_over_engines=True, keep_on_chip=True, on_chip_fraction=1.0)
    assert [t.name for t in compile_graph(graph, small).graph.tasks] == [f"{n}#{j}" for n in "pq" for j in range(4)]
    # Not keeping tensors on chip, SRAM whose share (half of 3,200 bytes) would ask for 4 parts asks for none.
    same = chip(sram_mb=0.0032, split_over_engines=True)
    assert [t.name for t in compile_graph(graph, same).graph.tasks] == ["p#0", "p#1", "q#0", "q#1"]


def _two_dma(**compiler):
    d = tiny_chip_dict(compiler=compiler, memory={"hbm_gb": 1, "hbm_bandwidth_gbps": 16, "sram_mb": 8.0})
    d["engines"]["dma"]["count"] = 2
    return accelsim.chip_from_dict(d, "tiny.toml")


def test_a_prefetch_is_shared_over_the_dma_engines_only_where_the_compiler_splits():
    graph = TaskGraph([make_task("g1", "gemm", [64, 32, 32]), make_task("g2", "gemm", [64, 32, 32], deps=["g1"])])
    split = _two_dma(keep_on_chip=True, prefetch_depth=1, split_over_engines=True)
    assert [t.name for t in compile_graph(graph, split).graph.tasks] == ["prefetch:g2#0", "prefetch:g2#1", "g1", "g2"]
    whole = _two_dma(keep_on_chip=True, prefetch_depth=1)
    assert [t.name for t in compile_graph(graph, whole).graph.tasks] == ["prefetch:g2", "g1", "g2"]
    users = TaskGraph(graph.tasks, meta={"granularity": "tile"})  # the user's cut: nothing split, nor the loads
    assert [t.name for t in compile_graph(users, split).graph.tasks] == ["prefetch:g2", "g1", "g2"]


def test_a_chip_without_dma_engines_prefetches_nothing():
    d = tiny_chip_dict(compiler={"keep_on_chip": True, "prefetch_depth": 1})
    del d["engines"]["dma"]
    graph = TaskGraph([make_task("g1", "gemm", [64, 32, 32]), make_task("g2", "gemm", [64, 32, 32], deps=["g1"])])
    compiled = compile_graph(graph, accelsim.chip_from_dict(d, "tiny.toml"))
    assert [t.name for t in compiled.graph.tasks] == ["g1", "g2"] and compiled.report.prefetches == 0
    assert compiled.graph.tasks[0].on_chip  # g1's output is still kept


def test_an_fp8_product_gets_its_input_pass_where_the_chip_asks_for_one():
    graph = TaskGraph([make_task("g", "gemm", [64, 32, 32], dtype="fp8")])
    assert [t.name for t in compile_graph(graph, chip(input_pass_dtypes=["fp8"])).graph.tasks] == ["input:g", "g"]
    assert [t.name for t in compile_graph(graph, chip(input_pass_dtypes=["bf16"])).graph.tasks] == ["g"]


def test_flops_on_a_kind_the_chip_lacks_are_reported_under_that_kind():
    graph = TaskGraph([make_task("x", "copy", [8], engines=["network"]), make_task("g", "gemm", [4, 4, 4])])
    assert compile_graph(graph, chip()).report.flops_per_kind == {"network": 0, "matrix": 128}


def test_a_compiled_graph_keeps_the_name_source_and_meta_of_the_graph_it_came_from():
    from accelsim.compiler import compiler_warnings

    graph = TaskGraph([make_task("p", "copy", [800])], name="w", source="w.toml", meta={"batch": 2})
    assert compiler_warnings(graph) == ()  # not compiled: nothing warned of
    c = chip(split_over_engines=True)
    compiled = compile_graph(graph, c)
    out = compiled.graph
    assert (out.name, out.source, out.meta) == ("w", "w.toml", {"batch": 2})
    assert compiled.report.ops_fused_away == 0 and compiled.report.tasks_per_op_after == {"copy": 2}
    again = compile_graph(out, c)  # already compiled for this chip: as it is, and its report still tells
    assert again.graph is again.source is out and again.chip is c
    assert again.report.tasks_before == again.report.tasks_after == 2


def test_a_refusal_names_the_workload_file_whichever_pass_makes_too_many_tasks(monkeypatch):
    monkeypatch.setattr(limits, "MAX_TASKS", 2)
    gemm = [make_task("g1", "gemm", [64, 32, 32], dtype="fp8")]
    two = [*gemm, make_task("g2", "gemm", [64, 32, 32], dtype="fp8", deps=["g1"])]
    for tasks, compiler in (
        (two, {"input_pass_dtypes": ["fp8"]}),
        ([make_task("p", "copy", [800]), make_task("q", "copy", [800])], {"split_over_engines": True}),
        (two, {"keep_on_chip": True, "prefetch_depth": 1}),
    ):
        with pytest.raises(AccelsimError) as refused:
            compile_graph(TaskGraph(tasks, source="w.toml"), chip(**compiler))
        assert refused.value.source == "w.toml" and refused.value.key == "(size)"
    # One product and its pass make 2 tasks: they fit.
    assert len(with_input_passes(gemm, ["fp8"], chip())) == 2


def test_an_input_pass_is_the_products_dtype_and_group_and_waits_for_what_the_product_waits_for():
    g = make_task("g", "gemm", [64, 32, 32], dtype="fp8", deps=["x"], group="L0.mlp")
    (p, product) = with_input_passes([g], ["fp8"])
    assert (p.dtype, p.group, p.deps, p.dep_bytes, p.engines, p.op) == ("fp8", "L0.mlp", ("x",), (0,), ("dma",), "dma")
    assert product.deps == ("x", "input:g")


def test_a_part_waits_only_for_the_producer_parts_of_its_own_sequences():
    # Two sequences one after the other: p's 8 rows and q's 16 (q reads p whole, and as much again from memory).
    p = make_task("p", "copy", [8]).but(sequences=2)
    q = make_task("q", "copy", [16], bytes_read=32).but(sequences=2, deps=("p",), dep_bytes=(16,))
    out = split_over_engines([p, q], chip(split_over_engines=True))
    assert [(t.name, t.deps, t.dep_bytes, t.bytes_read) for t in out[2:]] == [
        ("q#0", ("p#0",), (8,), 16),
        ("q#1", ("p#1",), (8,), 16),
    ]
    unknown = split_over_engines([p.but(sequences=1), q.but(sequences=1)], chip(split_over_engines=True))
    assert [t.deps for t in unknown[2:]] == [("p#0", "p#1")] * 2


def test_a_fused_kernel_left_whole_keeps_its_ops_shapes():
    graph = TaskGraph([make_task("a", "add", [4, 200]), make_task("m", "mul", [4, 200], deps=["a"])])
    one = compile_graph(graph, chip(tpcs=1, split_over_engines=True, fuse_vector_chains=True)).graph
    assert [(t.name, t.fused) for t in one.tasks] == [("m", (("add", (4, 200)),))]
    two = compile_graph(graph, chip(split_over_engines=True, fuse_vector_chains=True)).graph
    assert [(t.name, t.fused) for t in two.tasks] == [("m#0", (("add", (400,)),)), ("m#1", (("add", (400,)),))]


def test_a_product_the_chip_cannot_run_in_its_dtype_is_not_cut():
    # tiny's MME has bf16 MACs only: no part of an fp8 product has a cost to compare, so it stays whole.
    assert partition(make_task("g", "gemm", [64, 32, 32], dtype="fp8"), chip(), slices=4) == (0, 1)


def test_weights_of_a_single_byte_are_prefetched_and_a_product_with_none_gets_no_load():
    g1 = make_task("g1", "gemm", [64, 32, 32])
    g2 = make_task("g2", "gemm", [64, 32, 32], deps=["g1"], bytes_read=4096 + 1)  # one byte of weights
    g3 = make_task("g3", "gemm", [64, 32, 32], deps=["g2"], bytes_read=4096, bytes_written=1)  # none
    g4 = make_task("g4", "gemm", [64, 32, 32], deps=["g3"], bytes_read=1)
    out, n = plan_on_chip(with_edges([g1, g2, g3, g4]), 10**6, 1)
    assert n == 1 and [t.name for t in out] == ["prefetch:g2", "g1", "g2", "g3", "g4"]
    assert out[0].bytes_read == 1
    assert [t.on_chip for t in out[1:]] == [True, True, True, False]  # g3's one-byte output too


def _kept(tasks, capacity):
    out, _ = plan_on_chip(with_edges(tasks), capacity, 0)
    return [t.name for t in out if t.on_chip]


def test_room_goes_to_the_shortest_lived_tensor_first_then_the_earliest_ending():
    def copy(name, deps=(), n=800):
        return make_task(name, "copy", [n], deps=list(deps))  # 2 x n bytes out

    # Room for one 1,600-byte output: a's lives from 0 to 2, c's from 2 to 3. c's is shorter, and taken.
    assert _kept([copy("a"), copy("b"), copy("c", ["a"]), copy("d", ["c"])], 1600) == ["c"]
    # a's (0 to 1) and b's (1 to 2, 800 bytes) live as long: a's ends first and is taken,
    # not b's for being smaller.
    assert _kept([copy("a"), copy("b", ["a"], 400), copy("c", ["b"])], 1600) == ["a"]
    # d's (3 to 4) is taken first; a's (0 to 2) ends before d's begins: both kept.
    assert _kept([copy("a"), copy("b"), copy("c", ["a"]), copy("d"), copy("e", ["d"])], 1600) == ["a", "d"]


def test_a_kernel_absorbing_two_producers_runs_both_ops_first():
    graph = TaskGraph(
        [
            make_task("a", "exp", [800]),
            make_task("b", "relu", [800]),
            make_task("c", "mul", [800], deps=["a", "b"]),
        ]
    )
    (kernel,) = compile_graph(graph, chip(fuse_vector_chains=True)).graph.tasks
    assert kernel.name == "c" and kernel.fused == (("exp", (800,)), ("relu", (800,)))


def test_the_edges_of_a_plan_at_its_limits():
    # g2's 2,048 bytes of weights fill the SRAM exactly: loaded. g1's 4,096-byte output does not fit.
    out, n = plan_on_chip(gemms(2), 2048, 1)
    assert n == 1 and [(t.name, t.on_chip) for t in out] == [("prefetch:g2", True), ("g1", False), ("g2", False)]
    # An fp8 product's weights load as fp8; an empty output is never kept.
    fp8 = [t.but(dtype="fp8") for t in gemms(2)]
    out, _ = plan_on_chip([fp8[0].but(bytes_written=0), fp8[1].but(dep_bytes=(0,))], 10**6, 1)
    assert [(t.name, t.dtype, t.on_chip) for t in out] == [
        ("prefetch:g2", "fp8", True),
        ("g1", "fp8", False),
        ("g2", "fp8", False),
    ]


def test_three_parts_each_wait_for_the_producer_part_of_their_rows():
    graph = TaskGraph([make_task("p", "copy", [9]), make_task("q", "copy", [9], deps=["p"])])
    out = compile_graph(graph, chip(tpcs=3, split_over_engines=True)).graph.tasks
    assert [(t.name, t.deps) for t in out[3:]] == [("q#0", ("p#0",)), ("q#1", ("p#1",)), ("q#2", ("p#2",))]


def test_engines_of_one_kind_in_two_groups_all_take_a_part_and_flops_go_to_the_first_kind_present():
    d = tiny_chip_dict(compiler={"split_over_engines": True})
    d["engines"]["tpc2"] = {"kind": "vector", "count": 1, "lanes": {"bf16": 8}, "pipeline_latency_cycles": 0}
    c = accelsim.chip_from_dict(d, "tiny.toml")
    assert partition(make_task("p", "copy", [900]), c) == (0, 3)
    graph = TaskGraph([make_task("x", "exp", [8], engines=["network", "vector"])])
    assert compile_graph(graph, chip()).report.flops_per_kind == {"vector": make_task("x", "exp", [8]).flops}


def test_a_product_on_the_one_mme_stays_whole_unless_asked_to_slice():
    assert [t.name for t in split_over_engines(gemms(1), chip())] == ["g1"]
