"""What a card holds (accelsim.footprint), worked by hand on a tiny model: the training state under each ZeRO
stage, Korthikanti et al.'s activations under each recomputation, inference weights and the KV cache."""

import pytest

from accelsim.footprint import CardMemory, activation_bytes, card_memory, kv_cache_bytes, weight_bytes
from accelsim.parallel import Layout
from accelsim.workload import workload_from_dict


def tiny(**run):
    """Three layers of d_model 8, two heads a card (d_head 4), two sequences of four tokens."""
    model = {"family": "gpt", "layers": 3, "d_model": 8, "heads": 2, "embeddings": False}
    return workload_from_dict({"name": "tiny", "model": model, "run": {"batch": 2, "seq_len": 4, **run}}, "t")


@pytest.mark.parametrize(
    ("recompute", "sequence_parallel", "per_layer"),
    [
        # s b h = 64; t = 2, a = 4 heads in all: 10 + 24/2 = 22 kept, 5 a s / (h t) = 5.
        ("none", False, 64 * (22 + 5)),
        ("selective", False, 64 * 22),
        ("full", False, 2 * 64),
        # sequence parallelism: 34/2 = 17 for 22, and the full recomputation's input sharded.
        ("none", True, 64 * (17 + 5)),
        ("selective", True, 64 * 17),
        ("full", True, 2 * 64 / 2),
    ],
)
def test_activations_follow_korthikanti(recompute, sequence_parallel, per_layer):
    run = {"mode": "training", "tensor_parallel": 2, "recompute": recompute, "sequence_parallel": sequence_parallel}
    wl = tiny(**run)
    assert activation_bytes(wl, Layout(2, 1, 1)) == 3 * per_layer
    assert card_memory(wl, Layout(2, 1, 1), in_flight=3).activations == 9 * per_layer


@pytest.mark.parametrize(("zero", "shares"), [(0, (2, 2, 12)), (1, (2, 2, 3)), (2, (2, 0.5, 3)), (3, (0.5, 0.5, 3))])
def test_zero_shards_the_optimizer_then_the_gradients_then_the_weights_over_the_replicas(zero, shares):
    wl = tiny(mode="training", data_parallel=4, zero=zero)
    held = card_memory(wl, Layout(1, 1, 4))
    p = wl.parameters
    assert (held.parameters, held.gradients, held.optimizer) == tuple(p * s for s in shares)
    assert held.state == p * sum(shares) and held.kv_cache == 0
    assert held.total == held.state + held.activations == p * sum(shares) + activation_bytes(wl, Layout(1, 1, 4))


def test_inference_holds_weights_and_a_cache_in_the_products_dtype():
    model = {"family": "gpt", "layers": 3, "d_model": 8, "heads": 2, "vocab": 10, "tied_embeddings": False}
    data = {"name": "tiny", "model": model, "run": {"batch": 2, "seq_len": 4, "matmul_dtype": "fp8"}}
    wl = workload_from_dict(data, "t")
    embeddings = 10 * 8 * 2  # the token table and the untied LM head
    assert weight_bytes(wl) == (wl.parameters - embeddings) * 1 + embeddings * 2
    assert kv_cache_bytes(wl, 5) == 2 * 2 * 8 * 5 * 3  # keys and values, 2 sequences, 8 columns, 5 tokens, 3 layers
    held = card_memory(wl, Layout(1, 1, 1), cached_tokens=5)
    assert (held.parameters, held.gradients, held.optimizer, held.activations) == (weight_bytes(wl), 0, 0, 0)
    assert held.kv_cache == kv_cache_bytes(wl, 5) and held.total == held.parameters + held.kv_cache
    assert card_memory(wl, Layout(1, 1, 1)).kv_cache == 0  # no cached positions unless asked
    no_table = tiny(matmul_dtype="fp8")  # no vocabulary: every parameter a matrix's, in fp8
    assert weight_bytes(no_table) == no_table.parameters
    bf16 = workload_from_dict({**data, "run": {"batch": 2, "seq_len": 4}}, "t")
    assert weight_bytes(bf16) == bf16.parameters * 2 and kv_cache_bytes(bf16, 5) == 2 * kv_cache_bytes(wl, 5)


def test_a_training_steps_figures_are_in_gb_rounded_to_a_megabyte():
    # Each figure a hair past a half megabyte: 10^9 bytes to the GB and three decimals, or the rounding flips.
    held = CardMemory(1.23450000001e9, 2.04550000001e9, 3.01250000001e9, 4.00050000001e9, kv_cache=0.5e6)
    assert held.state == 1.23450000001e9 + 2.04550000001e9 + 3.01250000001e9
    assert held.total == pytest.approx(10.29350000004e9)
    assert held.to_dict() == {
        "parameters_gb": 1.235,
        "gradients_gb": 2.046,
        "optimizer_gb": 3.013,
        "activations_gb": 4.001,
        "total_gb": 10.294,
    }
