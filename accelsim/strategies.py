"""Hypothesis strategies for accelsim's inputs: random valid chips, task graphs and workloads.

Public API, so users can property-test their own schedulers::

    from hypothesis import given
    from accelsim.checks import assert_valid
    from accelsim.strategies import chips, task_graphs

    @given(chips(), task_graphs())          # or workload_graphs(): lowered random transformers
    def test_my_scheduler(chip, graph):
        assert_valid(accelsim.run(chip, graph, "mine"))
"""

from __future__ import annotations

from hypothesis import strategies as st

from .chip import Chip, chip_from_dict
from .graph import TaskGraph, make_task
from .lowering import lower
from .workload import Workload, workload_from_dict

_VECTOR_OPS = ("add", "mul", "exp", "softmax", "layernorm", "gelu", "reduce")


@st.composite
def chip_dicts(draw: st.DrawFn, dma: bool | None = None) -> dict:
    """A valid chip profile as the dict its TOML file would parse to: 1-2 matrix engines (systolic, or GPU-style
    tiled), 1-8 vector cores, optionally a DMA group, a network group (as a system adds to its cards), engines
    sharing a unit, launch gaps and imperfect HBM."""
    rows = draw(st.sampled_from([4, 8, 16, 32, 64, 128]))
    cols = draw(st.sampled_from([4, 8, 16, 32, 64, 128]))
    n_matrix = draw(st.integers(1, 2))
    matrix: dict = {
        "kind": "matrix",
        "count": n_matrix,
        "macs_per_cycle": {"bf16": rows * cols, "fp32": max(1, rows * cols // 4)},
    }
    if draw(st.booleans()):
        matrix.update(rows=rows, cols=cols, dataflow=draw(st.sampled_from(["os", "ws", "is"])))
    else:
        matrix.update(
            model="tiled",
            sms=draw(st.integers(1, 16)),
            tile_m=draw(st.sampled_from([8, 16, 64])),
            tile_n=draw(st.sampled_from([8, 16, 64])),
            efficiency=draw(st.sampled_from([1.0, 0.8])),
            wave_overhead_cycles=draw(st.integers(0, 20)),
        )
    vector: dict = {
        "kind": "vector",
        "count": draw(st.integers(1, 8)),
        "lanes": {"bf16": draw(st.sampled_from([16, 64, 128])), "fp32": 32},
        "pipeline_latency_cycles": draw(st.integers(0, 8)),
    }
    gpu_like = draw(st.booleans())
    if gpu_like:  # matrix and vector engines k share unit k
        matrix["shared_unit"] = vector["shared_unit"] = "sm"
    engines: dict = {"mme": matrix, "tpc": vector}
    with_dma = dma if dma is not None else draw(st.booleans())
    if with_dma:
        engines["dma"] = {
            "kind": "dma",
            "count": draw(st.integers(1, 4)),
            "bytes_per_cycle": draw(st.sampled_from([16, 64, 256])),
        }
    # A card's share of a fabric for tensor-parallel collectives (drawn last in the engines: earlier draws keep their
    # seeds); every random chip has one, since random workloads may be tensor parallel.
    engines["net"] = {
        "kind": "network",
        "count": 1,
        "cards": draw(st.sampled_from([2, 4])),
        "topology": draw(st.sampled_from(["all-to-all", "switch", "ring"])),
        "link_gbps": draw(st.sampled_from([10.0, 100.0])),
        "links": draw(st.integers(1, 3)),
        "latency_us": draw(st.sampled_from([0.0, 2.0])),
    }
    engines["net_dp"] = {**engines["net"], "kind": "data_network", "cards": draw(st.sampled_from([2, 8]))}
    compiler: dict = {}
    if not gpu_like and draw(st.booleans()):  # a graph compiler of Gaudi's kind, each pass on or off
        compiler = {
            "split_over_engines": draw(st.booleans()),
            "fuse_vector_chains": draw(st.booleans()),
            "keep_on_chip": draw(st.booleans()),
            "on_chip_fraction": draw(st.sampled_from([0.25, 1.0])),
            "prefetch_depth": draw(st.sampled_from([0, 1, 2])) if with_dma else 0,
        }
    return {
        "name": "random-chip",
        "clock_ghz": draw(st.sampled_from([0.5, 1.0, 1.8])),
        "dispatch_overhead_cycles": draw(st.integers(0, 50)),
        "launch_gap_cycles": draw(st.sampled_from([0, 0, 3, 40])),
        "engines": engines,
        "memory": {
            "hbm_gb": 16,
            "hbm_bandwidth_gbps": draw(st.sampled_from([50, 200, 1000])),
            # from a few kB, where keeping tensors on chip binds, to plenty
            "sram_mb": draw(st.sampled_from([0.002, 0.02, 8.0])),
            **({"sram_bandwidth_gbps": draw(st.sampled_from([100, 2000]))} if draw(st.booleans()) else {}),
            "bandwidth_efficiency": draw(st.sampled_from([1.0, 0.6])),
        },
        "compiler": compiler,
    }


def chips(dma: bool | None = None) -> st.SearchStrategy[Chip]:
    """Random valid chips (validated exactly as a file would be)."""
    return chip_dicts(dma).map(lambda d: chip_from_dict(d, "<hypothesis>"))


@st.composite
def task_graphs(
    draw: st.DrawFn, min_tasks: int = 1, max_tasks: int = 12, dual: bool = True, dma: bool = False
) -> TaskGraph:
    """A random DAG of matrix, vector and (with ``dual``) matrix-or-vector outer-product tasks."""
    n = draw(st.integers(min_tasks, max_tasks))
    tasks = []
    for i in range(n):
        choices = ["gemm", "vector"] + (["outer"] if dual else []) + (["dma"] if dma else [])
        what = draw(st.sampled_from(choices))
        deps = sorted(draw(st.sets(st.integers(0, i - 1), max_size=min(i, 3)))) if i else []
        dep_names = [f"t{d}" for d in deps]
        if what == "gemm":
            shape = [draw(st.integers(1, 96)) for _ in range(3)]
            tasks.append(make_task(f"t{i}", "gemm", shape, deps=dep_names))
        elif what == "outer":
            shape = [
                draw(st.integers(1, 4)),
                draw(st.integers(1, 64)),
                draw(st.integers(1, 32)),
                draw(st.integers(1, 32)),
            ]
            tasks.append(make_task(f"t{i}", "outer_acc", shape, deps=dep_names))
        elif what == "dma":
            tasks.append(make_task(f"t{i}", "dma", [draw(st.integers(1, 1 << 16))], deps=dep_names))
        else:
            op = draw(st.sampled_from(_VECTOR_OPS))
            shape = [draw(st.integers(1, 64)), draw(st.integers(1, 256))]
            tasks.append(make_task(f"t{i}", op, shape, deps=dep_names))
    return TaskGraph(tasks, name="random-graph", source="<hypothesis>")


@st.composite
def workload_dicts(draw: st.DrawFn) -> dict:
    """A small random workload as the dict its TOML file would parse to: either family, every attention variant,
    mode and granularity."""
    family = draw(st.sampled_from(["gpt", "vit"]))
    heads = draw(st.integers(1, 4))
    d_head = draw(st.sampled_from([4, 8, 16]))
    chunk = draw(st.sampled_from([4, 8, 16]))
    variant = draw(st.sampled_from(["softmax", "window", "linear", "hybrid"]))
    model = {
        "family": family,
        "layers": draw(st.integers(1, 2)),
        "d_model": heads * d_head,
        "heads": heads,
        "mlp_ratio": draw(st.sampled_from([1.0, 2.0, 4.0])),
        "embeddings": draw(st.booleans()),
    }
    batch = draw(st.integers(1, 4))  # drawn before mode, as before: the same examples for the same seed
    run: dict[str, object] = {"batch": batch, "mode": draw(st.sampled_from(["inference", "training"]))}
    if family == "gpt":
        run["seq_len"] = chunk * draw(st.integers(1, 6))
        model["vocab"] = draw(st.integers(5, 300))
    else:
        patch = 2
        side = draw(st.sampled_from([4, 8]))
        model.update(image_size=side * patch, patch_size=patch, classes=draw(st.integers(2, 20)), class_token=False)
        chunk = draw(st.sampled_from([c for c in (4, 8, 16) if (side * side) % c == 0]))
    attention = {"variant": variant, "window": chunk, "chunk": chunk, "linear_heads": draw(st.integers(0, heads))}
    data = {
        "name": "random",
        "model": model,
        "run": run,
        "attention": attention,
        "lowering": {
            "granularity": draw(st.sampled_from(["op", "head", "tile"])),
            "tile_m": draw(st.sampled_from([4, 8, 32])),
            "tile_n": draw(st.sampled_from([4, 8, 32])),
            "batch_split": draw(st.sampled_from([k for k in (1, 2, 4) if batch % k == 0])),
        },
    }
    # The architecture knobs of Hugging Face decoders (drawn last, so the examples above keep their seeds).
    model.update(
        mlp=draw(st.sampled_from(["plain", "gated"])),
        activation=draw(st.sampled_from(["gelu", "silu", "relu"])),
        norm=draw(st.sampled_from(["layernorm", "rmsnorm"])),
        parallel_block=draw(st.booleans()),
        positions=draw(st.sampled_from(["learned", "rotary", "alibi", "none"])),
    )
    if draw(st.booleans()):  # heads wider or narrower than d_model / heads (Gemma)
        model["d_head"] = draw(st.sampled_from([4, 8, 16]))
    if variant == "softmax":  # (or flash, drawn below: the same knobs)
        model["kv_heads"] = draw(st.sampled_from([k for k in range(1, heads + 1) if heads % k == 0]))
        if draw(st.booleans()):
            model.update(sliding_window=draw(st.integers(1, 16)), window_period=draw(st.integers(1, 3)))
    inference = run["mode"] == "inference"
    if inference and variant == "softmax" and draw(st.booleans()):
        variant = "flash"
        attention["variant"] = variant
    routing: tuple[int, int] | None = None  # (experts, experts per token) of a mixture
    if inference and draw(st.booleans()):
        experts = draw(st.integers(1, 6))
        routing = (experts, draw(st.integers(1, experts)))
        model.update(
            experts=experts,
            experts_per_token=routing[1],
            d_ff_expert=draw(st.integers(1, 24)),
            d_ff_shared=draw(st.sampled_from([0, 8])),
        )
    if family == "gpt":
        run["tensor_parallel"] = draw(st.sampled_from([1, 1, 2, 4]))
    if not inference:
        replicas = draw(st.sampled_from([1, 1, 2, 3]))
        run["data_parallel"] = replicas
        run["zero"] = draw(st.integers(0, 3)) if replicas > 1 else 0
        run["recompute"] = draw(st.sampled_from(["none", "selective", "full"]))
        run["optimizer_step"] = draw(st.sampled_from([True, True, False]))
        tp = run.get("tensor_parallel", 1)
        if isinstance(tp, int) and tp > 1 and (heads * d_head) % tp == 0:  # model["d_model"] is heads x d_head
            run["sequence_parallel"] = draw(st.booleans())
    if family == "gpt" and model["embeddings"]:
        run["pipeline_stage"] = draw(st.sampled_from(["all", "all", "first", "middle", "last"]))
    if inference and family == "gpt":
        if variant in ("softmax", "flash"):
            run["past_tokens"] = draw(st.sampled_from([0, 0, 1, 7, 40]))
        if model["embeddings"]:
            run["logits"] = draw(st.sampled_from(["all", "last"]))
    if variant in ("softmax", "flash"):
        run["matmul_dtype"] = draw(st.sampled_from(["bf16", "fp32"]))  # dtypes every random chip has
    # An encoder's knobs (BERT, RoBERTa), drawn last so the examples above keep their seeds: post-norm, token
    # types and the MLM head, bidirectional attention.
    if not model["parallel_block"] and draw(st.booleans()):
        model["norm_position"] = "post"
    if family == "gpt" and model["embeddings"]:
        model["token_types"] = draw(st.sampled_from([0, 0, 1, 2]))
        if run.get("logits") != "last" and not run.get("sequence_parallel") and draw(st.booleans()):
            model["head"] = "mlm"
            if draw(st.booleans()):  # the head on the masked rows only
                run.update(logits="masked", masked_fraction=draw(st.sampled_from([0.15, 0.5, 1.0])))
        if not run.get("past_tokens"):
            model["causal"] = draw(st.booleans())
    # How the serving software runs grouped heads and experts (drawn last: the examples above keep their seeds).
    if variant in ("softmax", "flash") and draw(st.booleans()):
        attention["query_groups"] = "per_query_head"
    if routing is not None and draw(st.booleans()):
        run["experts_used"] = draw(st.integers(routing[1], routing[0]))
    return data


def workloads() -> st.SearchStrategy[Workload]:
    """Small random valid workloads (validated exactly as a file would be)."""
    return workload_dicts().map(lambda d: workload_from_dict(d, "<hypothesis>"))


def workload_graphs() -> st.SearchStrategy[TaskGraph]:
    """Task graphs lowered from small random workloads."""
    return workloads().map(lower)
