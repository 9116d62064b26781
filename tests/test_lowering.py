"""Lowering transformer workloads: conservation against closed-form counts, determinism, structure, errors."""

import time
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

import accelsim
from accelsim import AccelsimError, limits
from accelsim.analytic import analytic_counts
from accelsim.lowering import lower
from accelsim.resources import shipped_names
from accelsim.strategies import workload_dicts
from accelsim.workload import load_workload, workload_from_dict

PRESETS = [
    "gpt2-small",
    "gpt2-medium",
    "gpt2-large",
    "llama-7b-like-layer",
    "llama-7b-like",
    "vit-b16",
    "vit-l16",
    "gformer-gpt",
    "gformer-vit",
]


def test_every_required_preset_ships():
    assert set(PRESETS) <= set(shipped_names("workloads"))


@pytest.mark.parametrize("name", PRESETS)
def test_presets_lower_to_their_closed_form_flops_and_bytes(name):
    wl = load_workload(name)
    graph = lower(wl)
    assert (graph.total_flops, graph.total_bytes) == analytic_counts(wl)


@given(workload_dicts())
def test_flops_and_bytes_are_conserved_for_every_variant_mode_and_granularity(data):
    wl = workload_from_dict(data, "<random>")
    graph = lower(wl)
    assert (graph.total_flops, graph.total_bytes) == analytic_counts(wl)


@given(workload_dicts(), st.sampled_from(["op", "head", "tile"]))
def test_granularity_changes_the_tasks_not_the_work(data, other):
    a = lower(workload_from_dict(data, "<random>"))
    data["lowering"]["granularity"] = other
    b = lower(workload_from_dict(data, "<random>"))
    assert (a.total_flops, a.total_bytes) == (b.total_flops, b.total_bytes)


def test_a_causal_flash_tile_early_in_the_sequence_sees_fewer_keys():
    """FlashAttention skips the blocks a causal mask hides: of 8 queries tiled in two blocks of 4, the first block's
    see 1 to 4 keys (2.5 on average, costed as 3) and the last's 5 to 8 (6.5, costed as 7); together they are the
    whole sequence's 8 queries at 5 keys each, as at op granularity. (Each tile was costed as the last, so tiling
    added 40% to this attention's work: Hypothesis found it.)"""
    sets = ["layers=1", "d_model=8", "heads=2", "kv_heads=1", "vocab=5", "embeddings=false", "seq_len=8", "batch=1"]
    sets += ["variant=flash", "tile_m=4", "tile_n=4"]
    shapes = {
        g: [
            t.shape
            for t in lower(load_workload("gpt2-small", [*sets, f"granularity={g}"])).tasks
            if t.op == "flash_attn"
        ]
        for g in ("op", "tile")
    }
    assert shapes["op"] == [(1, 16, 5, 4)]  # both query heads stacked on their key/value head, 8 rows each
    assert shapes["tile"] == [(1, 4, 3, 4), (1, 4, 7, 4)] * 2  # per query head, per block of 4 queries


@pytest.mark.parametrize("positions", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("past", [0, 1, 6])
def test_flash_blocks_add_up_to_the_whole_sequence_and_see_more_keys_later(positions, past):
    """Whatever the block size and the cached keys before them, the blocks' keys per query never fall along the
    sequence, are their exact average or at most one more, and sum to the sequence's own count."""
    from accelsim.attention import flash_keys, flash_unit_keys

    for units in (1, 2, 3, 4, 7, 40):
        keys = past + units * positions
        seen = [flash_unit_keys(u, units, positions, keys, True, False) for u in range(units)]
        assert seen == sorted(seen)
        # A block's queries end at key past + (u + 1) * positions and start positions - 1 before it.
        assert all(0 <= s - (past + (u + 1) * positions - (positions - 1) / 2) <= 1 for u, s in enumerate(seen))
        assert positions * sum(seen) == units * positions * flash_keys(units * positions, keys, True, False)
        # A cache capped below the sequence (a sliding window) lets every query see all its keys, in every block.
        assert [flash_unit_keys(u, units, positions, keys, True, True) for u in range(units)] == [keys] * units
        assert [flash_unit_keys(u, units, positions, keys, False, False) for u in range(units)] == [keys] * units


def test_finer_granularity_gives_more_tasks():
    counts = [len(lower(load_workload("gpt2-small", [f"granularity={g}", "layers=1"]))) for g in ("op", "head", "tile")]
    assert counts[0] < counts[1] < counts[2]


def test_the_same_inputs_give_the_identical_graph():
    a = lower(load_workload("gformer-gpt", ["layers=2", "granularity=tile"]))
    b = lower(load_workload("gformer-gpt", ["layers=2", "granularity=tile"]))
    assert a.tasks == b.tasks


def test_training_is_forward_backward_and_update():
    inf = lower(load_workload("gpt2-small", ["layers=1"]))
    train = lower(load_workload("gpt2-small", ["layers=1", "mode=training"]))
    ops = {t.op for t in train.tasks}
    assert {"adam", "gelu_grad", "softmax_grad", "layernorm_grad"} <= ops
    # A GEMM's backward is two GEMMs of the same size: training has about three times the FLOPs.
    assert 2.8 < train.total_flops / inf.total_flops < 3.2


def test_softmax_attention_runs_products_on_matrix_and_softmax_on_vector():
    g = lower(load_workload("gpt2-small", ["layers=1", "granularity=head"]))
    attn = [t for t in g.tasks if ".fwd." in t.name]
    kinds = {t.op: t.engines for t in attn}
    assert kinds["bmm"] == ("matrix",) and kinds["softmax"] == ("vector",) and kinds["mask"] == ("vector",)


def test_window_attention_is_vector_work_and_linear_attention_mostly_matrix_work():
    window = lower(load_workload("gpt2-small", ["layers=1", "variant=window"]))
    linear = lower(load_workload("gpt2-small", ["layers=1", "variant=linear"]))

    def attn_flops(g, kind):
        return sum(t.flops for t in g.tasks if ".fwd." in t.name and t.engines[0] == kind)

    assert attn_flops(window, "matrix") == 0 and attn_flops(window, "vector") > 0
    assert attn_flops(linear, "matrix") > 10 * attn_flops(linear, "vector")
    outer = [t for t in linear.tasks if t.op == "outer_acc"]
    assert outer and all(t.engines == ("matrix", "vector") for t in outer)


def test_hybrid_mixes_window_and_linear_heads():
    g = lower(load_workload("gformer-gpt", ["layers=1", "mode=inference", "granularity=head"]))
    names = {t.name.split(".")[2] for t in g.tasks if ".fwd." in t.name}
    assert names == {f"h{h}" for h in range(12)}
    ops = {t.op for t in g.tasks if ".fwd.h0." in t.name} | {t.op for t in g.tasks if ".fwd.h11." in t.name}
    assert "window_attn" in ops and "outer_acc" in ops


def test_window_attention_counts_each_query_against_w_keys():
    wl = load_workload("gpt2-small", ["layers=1", "variant=window", "window=128", "granularity=op"])
    (t,) = [t for t in lower(wl).tasks if t.op == "window_attn"]
    B, H, S, D, w = 8, 12, 1024, 64, 128
    assert t.flops == 2 * (2 * B * H * S * w * D) + 5 * B * H * S * w


def test_linear_attention_outer_products_cover_every_token_once():
    wl = load_workload("gpt2-small", ["layers=1", "variant=linear", "granularity=tile"])
    outer = [t for t in lower(wl).tasks if t.op == "outer_acc" and ".fwd." in t.name]
    B, H, S, D = 8, 12, 1024, 64
    assert len(outer) == H * S // 64
    assert sum(t.flops for t in outer) == 2 * B * H * S * D * D


def test_tile_granularity_cuts_gemms_into_output_tiles():
    g = lower(load_workload("gpt2-small", ["layers=1", "granularity=tile", "tile_m=128", "tile_n=256"]))
    qkv = [t for t in g.tasks if t.name.startswith("L0.qkv[")]
    assert len(qkv) == (8 * 1024 // 128) * (3 * 768 // 256)
    assert all(t.shape == (128, 768, 256) for t in qkv)


def test_a_lowered_workload_simulates_end_to_end():
    r = accelsim.run("gaudi2", lower(load_workload("gformer-gpt", ["layers=1", "granularity=tile"])))
    assert r.latency_cycles > 0 and set(r.utilization()) == {"matrix", "vector", "dma"}


@pytest.mark.parametrize(
    "sets, key, words",
    [
        (["heads=5"], "model.d_model", "not divisible by heads"),
        (["variant=linear", "chunk=100"], "attention.chunk", "not divisible by chunk 100"),
        (["variant=window", "window=300"], "attention.window", "not divisible by window 300"),
        (["variant=sparse"], "attention.variant", "'softmax', 'window', 'linear', 'hybrid' or 'flash'"),
        (["mode=serving"], "run.mode", "'inference' or 'training'"),
        (["batch=0"], "run.batch", "greater than 0"),
        (["layers=-2"], "model.layers", "greater than 0"),
        (["kv_heads=5"], "model.kv_heads", "must divide heads"),
        (["experts=4"], "model.experts_per_token", "from 1 to experts"),
        (["experts=4", "experts_per_token=2"], "model.d_ff_expert", "required with experts"),
        (["past_tokens=8", "mode=training"], "run.past_tokens", "KV cache"),
        (
            ["kv_heads=4", "variant=linear", "chunk=64"],
            "model.kv_heads",
            'for attention.variant = "softmax" or "flash" only',
        ),
        (["variant=flash", "mode=training"], "attention.variant", "inference only"),
        (["variant=hybrid", "linear_heads=13"], "attention.linear_heads", "between 0 and heads"),
        (["batch_split=3"], "lowering.batch_split", "not divisible by batch_split 3"),
    ],
)
def test_inconsistent_workloads_name_the_file_and_key(sets, key, words):
    with pytest.raises(AccelsimError) as err:
        load_workload("gpt2-small", sets)
    message = str(err.value)
    assert "gpt2-small.toml" in message and key in message and words in message, message


def test_an_unknown_key_in_a_workload_file(tmp_path):
    text = (accelsim.resources.shipped_dir("workloads") / "gpt2-small.toml").read_text()
    path = tmp_path / "w.toml"
    path.write_text(text.replace("mlp_ratio", "mlp_ration"))
    message = str(pytest.raises(AccelsimError, load_workload, path).value)
    assert str(path) in message and "model.mlp_ration" in message and "mlp_ratio" in message


def test_an_unknown_override_key_lists_the_allowed_ones():
    message = str(pytest.raises(AccelsimError, load_workload, "gpt2-small", ["seqlen=4"]).value)
    assert "unknown key 'seqlen'" in message and "seq_len" in message


def test_vit_sequence_comes_from_image_and_patch():
    assert load_workload("vit-b16").seq_len == 197
    assert load_workload("gformer-vit").seq_len == 256
    with pytest.raises(AccelsimError, match="run.seq_len"):
        load_workload("vit-b16", ["seq_len=100"])


def fits_exactly(wl):
    """A limit of the graph's own size lets the same graph through, and one task less refuses it: the lowering's
    count (its builders counting before they build, the first layer standing for every layer) is the graph's size,
    so it never refuses a graph that fits."""
    graph = lower(wl)
    with mock.patch.object(limits, "MAX_TASKS", len(graph)):
        assert [t.name for t in lower(wl).tasks] == [t.name for t in graph.tasks]
    with mock.patch.object(limits, "MAX_TASKS", len(graph) - 1), pytest.raises(AccelsimError, match="at least"):
        lower(wl)
    return graph


@given(workload_dicts())
def test_a_limit_of_the_graphs_own_size_lets_it_through(data):
    fits_exactly(workload_from_dict(data))


@pytest.mark.parametrize(
    "extra",
    [
        [],
        ["embeddings=false"],
        ["tile_m=100", "tile_n=100", "batch=1"],
        ["batch_split=2"],
        ["zero=3", "data_parallel=2"],
        ["recompute=full"],
    ],
)
@pytest.mark.parametrize("name, size", [("gpt2-small", ["seq_len=256"]), ("vit-b16", []), ("gformer-gpt", [])])
def test_the_budget_lets_every_variant_mode_and_granularity_through_at_its_size(name, size, extra):
    checked = 0
    for granularity in ("op", "head", "tile"):
        for mode in ("inference", "training"):
            for variant in ("softmax", "window", "linear", "hybrid"):
                sets = [f"granularity={granularity}", f"mode={mode}", f"variant={variant}", "layers=2", "batch=2"]
                try:
                    wl = load_workload(name, [*sets, *size, *extra])
                except AccelsimError:  # e.g. a sequence the window does not divide, ZeRO without training
                    continue
                fits_exactly(wl)
                checked += 1
    assert checked


@pytest.mark.parametrize("variant", ["softmax", "flash"])
@pytest.mark.parametrize("model", ["google/gemma-2-9b", "google/gemma-3-4b-it"])
def test_layers_that_attend_locally_or_globally_are_counted_alike(model, variant):
    """The count takes the first layer for every layer: a model alternating local and global layers (Gemma 2 every
    other layer, Gemma 3 one in six), with a window shorter than the sequence, is never refused at its own size."""
    from accelsim.catalog import model_workload

    for mode in ("inference", "training") if variant == "softmax" else ("inference",):  # flash: inference only
        sets = ["layers=7", "seq_len=64", "sliding_window=16", "batch=1", "granularity=tile", "tile_m=16"]
        fits_exactly(model_workload(model, [*sets, "tile_n=1024", f"variant={variant}", f"mode={mode}"]))


@pytest.mark.parametrize("mode", ["inference", "training"])
def test_a_graph_too_large_is_refused_as_its_first_layer_is_counted(mode):
    """400,000 layers of GPT-2 small: the first layer's ops, each counted for every layer, pass the limit within the
    layer, refused in well under a second with the count reached, naming the key to change."""
    wl = load_workload("gpt2-small", ["layers=400000", f"mode={mode}"])
    start = time.perf_counter()
    with pytest.raises(
        AccelsimError,
        match=r"gpt2-small.toml: model.layers: its task graph at op granularity would have at least "
        r"5,200,002 tasks \(about 10.4 GB\); at most 5,000,000",
    ):
        lower(wl)
    assert time.perf_counter() - start < 1


LAYERS = 'use fewer model.layers (or heads at head granularity), or lowering.granularity = "op"'
TILES = (
    'use larger lowering.tile_m and lowering.tile_n, a smaller run.batch or run.seq_len, or lowering.granularity = "op"'
)


@pytest.mark.parametrize(
    ("granularity", "refusal"),
    [
        (
            "op",
            f"model.layers: its task graph at op granularity would have at least 20 tasks (about 40 kB); at most "
            f"19 tasks fit this machine (about 38 kB); {LAYERS}",
        ),
        (
            "head",
            f"model.layers: its task graph at head granularity would have at least 75 tasks (about 150 kB); at "
            f"most 74 tasks fit this machine (about 148 kB); {LAYERS}",
        ),
        (
            "tile",
            f"lowering.tile_m: its task graph at tile granularity would have at least 1,932 tasks (about 3.86 "
            f"MB); at most 1,931 tasks fit this machine (about 3.86 MB); {TILES}",
        ),
    ],
)
def test_a_refusal_names_the_key_and_what_to_change_at_its_granularity(granularity, refusal):
    """One task too few for GPT-2 small's one layer of 64 tokens: the whole line, with the settings that would make
    the graph smaller at that granularity (the tile sizes at tile granularity, the layers otherwise)."""
    wl = load_workload("gpt2-small", ["layers=1", "seq_len=64", f"granularity={granularity}"])
    tasks = len(lower(wl))
    with mock.patch.object(limits, "MAX_TASKS", tasks - 1), pytest.raises(AccelsimError) as refused:
        lower(wl)
    assert str(refused.value) == f"workloads/gpt2-small.toml: {refusal}"


def test_a_layer_only_workload_in_training_lowers_under_tensor_and_data_parallelism():
    """Its layers need no vocabulary: a training step of llama-7b-like-layer over tp=4, dp=2 lowers (the task
    estimate this budget replaced read model.vocab and refused it, naming no file)."""
    wl = load_workload("llama-7b-like-layer", ["mode=training", "tensor_parallel=4", "data_parallel=2"])
    assert wl.spec.model.vocab is None and len(fits_exactly(wl)) > 0


@pytest.mark.parametrize("granularity", ["op", "head", pytest.param("tile", marks=pytest.mark.slow)])
@pytest.mark.parametrize("name", shipped_names("workloads"))
def test_no_shipped_workload_is_refused_at_its_own_size(name, granularity):
    """Every shipped workload as shipped, inference and a training step, at every granularity (tile: 256 x 256, 30 s
    in all, among the slow tests): built at a limit of its graph's own size and refused at one task less."""
    for mode in ("inference", "training"):
        fits_exactly(load_workload(name, [f"granularity={granularity}", f"mode={mode}"]))
