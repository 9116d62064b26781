"""How the serving software runs a model, where its kernels differ in cost (issue 23, items 4 and 5).

Mixtures of experts as served: a MoE layer reads the weights of the distinct experts the pass's tokens are routed
to (k at batch 1, nearly all E for a large batch), or a given count; the experts run as one batched product of
one shape, so each pays for the busiest expert's rows; the serving kernel (optimum-habana's dynamic MoE op) is given
every expert of the layer and spends a fixed time on each (the profile's expert_overhead_us, fitted).

Grouped-query attention at large batch: a fused kernel (FusedSDPA) stacks the query heads that share a key/value
head into one product that reads the cache once; optimum-habana's eager attention broadcasts K and V over the
group in a batched matmul, so every query head is a product of its own that reads the cache itself.
"""

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from accelsim.catalog import load_model
from accelsim.chip import load_chip
from accelsim.cli import main
from accelsim.errors import AccelsimError
from accelsim.generation import Serving, generate, workload_for
from accelsim.lowering import lower
from accelsim.ops import OPS
from accelsim.validation import read_records
from accelsim.workload import expected_max_load, workload_from_dict

DATA = Path(__file__).parent / "data"


def _config(tmp_path, **changes):
    """A small llama-style model (4 layers) as a config.json: grouped-query, or a mixture with changes."""
    base = {
        "model_type": "llama",
        "hidden_size": 512,
        "num_hidden_layers": 4,
        "num_attention_heads": 8,
        "num_key_value_heads": 1,
        "intermediate_size": 1024,
        "vocab_size": 1000,
        "hidden_act": "silu",
        "rms_norm_eps": 1e-5,
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**base, **changes}))
    return load_model(str(path))


def _moe(tmp_path, experts=64, k=4):
    return _config(
        tmp_path,
        model_type="qwen3_moe",
        num_key_value_heads=8,
        num_experts=experts,
        num_experts_per_tok=k,
        moe_intermediate_size=256,
        head_dim=64,
    )


def _task(graph, suffix):
    return next(t for t in graph.tasks if t.name.endswith(suffix))


def _reads(task):
    """Elements a bf16 task reads."""
    return task.bytes_read // 2


def _attention_reads(graph):
    return sum(_reads(t) for t in graph.tasks if ".fwd." in t.name and OPS[t.op].category == "matrix")


# --- mixtures of experts ------------------------------------------------------------------------------------


@pytest.mark.parametrize("tokens, k, experts", [(8, 8, 128), (48, 2, 8), (256, 8, 128), (2048, 8, 128), (512, 1, 4)])
def test_the_busiest_experts_load_matches_a_routing_simulation(tokens, k, experts):
    """The closed form (independent binomial loads) against routing tokens at random: within 6%."""
    rng = np.random.default_rng(tokens + k + experts)
    maxima = []
    for _ in range(400):
        chosen = np.argsort(rng.random((tokens, experts)), axis=1)[:, :k]  # k distinct experts per token
        maxima.append(np.bincount(chosen.ravel(), minlength=experts).max())
    simulated = float(np.mean(maxima))
    assert expected_max_load(tokens, k, experts) == pytest.approx(simulated, rel=0.06)
    assert expected_max_load(tokens, k, experts) > tokens * k / experts  # busier than the mean


def test_the_busiest_load_is_exact_at_its_ends_and_never_below_the_mean():
    assert expected_max_load(1, 8, 128) == 1  # one token: one row in each of its k experts
    assert expected_max_load(1000, 8, 8) == 1000  # every expert takes every token
    assert expected_max_load(10**7, 8, 128) >= 625_000  # large T: cheap, and at least the mean
    assert expected_max_load(10**7, 8, 128) < 1.01 * 625_000  # the imbalance shrinks relative to the mean


def test_batch_one_reads_k_experts_and_a_large_batch_nearly_all(tmp_path):
    """A decode step's expert products read the weights of the experts the batch routes to: k at batch 1, E x (1 -
    (1 - k/E)^B) for B sequences, nearly all E at batch 256."""
    model = _moe(tmp_path, experts=64, k=4)
    d, width = 512, 2 * 256  # gate and up side by side

    def experts_read(batch):
        up = _task(lower(workload_for(model, batch, 1, 100, "bf16", layers=1)), ".experts_up")
        used, rows = up.shape[0], up.shape[1]
        assert _reads(up) == used * rows * d + used * d * width  # routed rows in, each used expert's weights
        return used

    assert experts_read(1) == 4
    assert experts_read(8) == round(64 * (1 - (1 - 4 / 64) ** 8))  # 26
    assert experts_read(256) == 64


def test_a_moe_layer_is_no_faster_than_its_busiest_expert(tmp_path):
    """The experts run as one batched product of one shape: every expert runs the busiest one's rows, so the
    expert products' work is that of E experts at the busiest load, more than the routed rows alone."""
    model = _moe(tmp_path, experts=64, k=4)
    wl = workload_for(model, 512, 1, 100, "bf16", layers=1)
    up = _task(lower(wl), ".experts_up")
    used, rows = up.shape[0], up.shape[1]
    busiest = expected_max_load(512, 4, 64)
    assert (used, rows) == (64, busiest) and busiest > 512 * 4 // 64
    assert OPS[up.op].macs(up.shape) == used * busiest * 512 * 512 > 512 * 4 * 512 * 512


def test_the_moe_kernel_is_given_every_expert_of_every_layer_on_every_card(tmp_path):
    """optimum-habana's dynamic MoE op takes all of a layer's expert weights whatever the routing; a tensor-parallel
    shard cuts each expert and keeps them all; a dense model has none."""
    from accelsim.generation import expert_visits, sharded

    assert expert_visits(_moe(tmp_path, experts=64, k=4)) == 4 * 64
    assert expert_visits(load_model("Qwen/Qwen3-30B-A3B")) == 48 * 128
    assert expert_visits(sharded(load_model("mistralai/Mixtral-8x7B-v0.1"), 2)) == 32 * 8
    assert expert_visits(load_model("meta-llama/Llama-2-7b-hf")) == 0


def test_every_pass_of_a_moe_model_pays_the_kernel_time_per_expert_it_is_given(tmp_path):
    """The expert time is no engine's: the prefill and each decode step take visits x expert_overhead_us longer,
    whatever the batch (the same 4 x 64 experts at batch 1 and 32), and a dense model does not pay it."""
    import dataclasses

    from accelsim.chip import Chip

    base = load_chip("gaudi2")

    def with_expert_us(us):
        return Chip(dataclasses.replace(base.spec, expert_overhead_us=us), base.source)

    moe = _moe(tmp_path, experts=64, k=4)
    for batch in (1, 32):
        runs = {us: generate(with_expert_us(us), moe, batch, 16, 5) for us in (0.0, 10.0)}
        assert runs[10.0].ttft_ms - runs[0.0].ttft_ms == pytest.approx(4 * 64 * 10.0 / 1e3)
        assert runs[10.0].tpot_ms - runs[0.0].tpot_ms == pytest.approx(4 * 64 * 10.0 / 1e3)
    dense = load_model("bigcode/starcoder2-3b")
    assert generate(with_expert_us(10.0), dense, 1, 8, 3).latency_ms == generate(base, dense, 1, 8, 3).latency_ms


def test_the_expert_time_fitted_is_the_one_the_moe_records_agree_on():
    """Records whose milliseconds grow by ms_per_us for each us of expert time: the fit picks the time that
    minimizes their median |log error| (the exact one where they agree), the smallest of equals, 0 without
    records."""
    from accelsim.fit_generation import _expert_us

    base, slope = np.array([10.0, 50.0, 4.0]), np.array([2.0, 0.5, 1.0])
    assert _expert_us(base, slope, base + 3.21 * slope) == 3.21
    # Two records want 1 us and one 40 us: the median follows the two.
    assert _expert_us(base, slope, base + slope * np.array([1.0, 1.0, 40.0])) == 1.0
    assert _expert_us(np.array([]), np.array([]), np.array([])) == 0.0
    assert _expert_us(base, slope, base) == 0.0  # nothing left to explain


def test_a_bad_expert_time_is_refused_naming_the_key(tmp_path, capsys):
    profile = tmp_path / "chip.toml"
    text = Path(load_chip("gaudi2").source).read_text()
    profile.write_text(text.replace("expert_overhead_us = 7.4", "expert_overhead_us = -1"))
    assert main(["chips", "show", str(profile)]) == 2
    err = capsys.readouterr().err.strip()
    allowed = "must be a finite number at least 0 and at most 1e+06 (got -1)"
    assert err == f"accelsim: error: {profile}: expert_overhead_us: {allowed}"


def test_a_given_count_of_experts_read_replaces_the_expectation(tmp_path):
    """A kernel that runs every expert (experts_used = E) reads all their weights even at batch 1; a decode step
    then costs several times the routed one's (64 experts' weights against 4)."""
    model = _moe(tmp_path, experts=64, k=4)
    up = _task(lower(workload_for(model, 1, 1, 100, "bf16", layers=1, serving=Serving(experts_used=64))), "_up")
    assert up.shape[0] == 64
    chip = load_chip("gaudi2")
    routed = generate(chip, model, 1, 16, 4)
    every = generate(chip, model, 1, 16, 4, serving=Serving(experts_used=64))
    step = {g.experts_used: g.decode_samples[0][1] for g in (routed, every)}  # simulated, the host's time apart
    assert step[64] > 3 * step[None]
    assert every.experts_used == 64 and routed.experts_used is None


def test_the_shared_expert_runs_for_every_token(tmp_path):
    model = _config(
        tmp_path,
        model_type="qwen2_moe",
        num_experts=16,
        num_experts_per_tok=2,
        moe_intermediate_size=128,
        shared_expert_intermediate_size=512,
    )
    graph = lower(workload_for(model, 3, 1, 10, "bf16", layers=1))
    shared = _task(graph, ".shared_up")
    assert shared.shape == (3, 512, 2 * 512)  # every token's row, the whole shared expert


@pytest.mark.parametrize("value, words", [(3, "from experts_per_token (4) to experts (64), got 3"), (65, "got 65")])
def test_a_given_count_outside_k_to_e_is_refused_with_its_key(tmp_path, value, words):
    model = _moe(tmp_path, experts=64, k=4)
    with pytest.raises(AccelsimError) as err:
        generate(load_chip("gaudi2"), model, 1, 8, 2, serving=Serving(experts_used=value))
    assert err.value.source == "--experts-used" and "got" in str(err.value)
    spec = workload_for(model, 1, 1, 0, "bf16").spec
    data = {"name": "x", "model": vars(spec.model), "run": {**vars(spec.run), "experts_used": value}}
    with pytest.raises(AccelsimError) as err:
        workload_from_dict(data, "w.toml")
    assert err.value.key == "run.experts_used" and words in str(err.value)


def test_experts_used_on_a_dense_model_is_refused(capsys):
    argv = ["generate", "--chip", "gaudi2", "--model", "gpt2-xl", "--batch", "1", "--input-tokens", "8"]
    code = main([*argv, "--output-tokens", "4", "--experts-used", "2"])
    err = capsys.readouterr().err
    assert code == 2 and err == "accelsim: error: --experts-used: gpt2-xl: only with experts > 0\n"


# --- grouped-query attention at large batch ----------------------------------------------------------------


def test_run_per_query_head_every_query_head_reads_the_kv_cache(tmp_path):
    """Multi-query (8 query heads, 1 key/value head): stacked, the cache is read once per sequence; per query
    head, 8 times; the products' rows are 8 per sequence stacked, 1 per query head otherwise."""
    model = _config(tmp_path)
    past, batch, d_head = 1000, 16, 64
    fused = lower(workload_for(model, batch, 1, past, "bf16", layers=1))
    eager = lower(workload_for(model, batch, 1, past, "bf16", layers=1, serving=Serving(attention="eager")))
    cache = 2 * batch * (past + 1) * d_head  # K and V of the one key/value head
    flash = _task(fused, ".flash")
    assert flash.shape[:2] == (batch, 8)  # one product per sequence, 8 stacked query rows
    assert _reads(flash) == cache + batch * 8 * d_head
    qk = _task(eager, ".qk")
    assert qk.shape[:2] == (batch * 8, 1)  # one product per query head
    assert _attention_reads(eager) >= 8 * cache


def test_multi_head_attention_reads_the_same_cache_either_way(tmp_path):
    model = _config(tmp_path, num_key_value_heads=8)
    fused = lower(workload_for(model, 16, 1, 1000, "bf16", layers=1))
    eager = lower(workload_for(model, 16, 1, 1000, "bf16", layers=1, serving=Serving(attention="eager")))
    cache = 2 * 16 * 1001 * 8 * 64
    assert _reads(_task(fused, ".flash")) == cache + 16 * 8 * 64
    assert cache <= _attention_reads(eager) < cache * 1.1  # the scores through HBM besides, a few percent


def test_eager_grouped_attention_costs_grow_with_batch_and_context_not_at_batch_one():
    """Qwen2-7B (7 query heads per key/value head): at batch 1 the kernel hardly matters; at batch 256 and a long
    cache, eager decode steps take much longer than fused ones."""
    chip, model = load_chip("gaudi2"), load_model("Qwen/Qwen2-7B")

    def step_ms(batch, past, attention):
        g = generate(chip, model, batch, past, 2, serving=Serving(attention=attention))
        return g.tpot_ms

    assert step_ms(1, 100, "eager") == pytest.approx(step_ms(1, 100, "fused"), rel=0.02)
    short = step_ms(256, 100, "eager") / step_ms(256, 100, "fused")
    long = step_ms(256, 1000, "eager") / step_ms(256, 1000, "fused")
    assert 1.3 < short < long


def test_the_records_say_which_attention_kernel_each_run_used():
    """The copy of the shared Gaudi 2 file names the kernel of every run whose command had no
    --use_flash_attention (optimum-habana's test file at the records' commit): eager."""
    path = DATA / "gaudi2_generate.jsonl"
    assert len(read_records(path).records) >= 50  # the field is read, not refused
    records = [json.loads(line) for line in path.read_text().splitlines()]
    eager = {(r["model"], r["dtype"], r["batch"]) for r in records if r.get("attention") == "eager"}
    assert ("Qwen/Qwen2-7B", "bf16", 256) in eager and ("mistralai/Mixtral-8x7B-v0.1", "fp8", 48) in eager
    fused = {(r["model"], r["dtype"], r["batch"]) for r in records if r.get("attention", "fused") == "fused"}
    assert ("mistralai/Mistral-7B-Instruct-v0.2", "fp8", 896) in fused and ("bigcode/starcoder", "bf16", 256) in fused
    assert all("no --use_flash_attention" in r["note"] for r in records if r.get("attention") == "eager")


def test_generate_takes_the_attention_kernel(capsys):
    argv = ["generate", "--chip", "gaudi2", "--model", "Qwen/Qwen2-7B", "--batch", "64", "--input-tokens", "512"]
    assert main([*argv, "--output-tokens", "3", "--attention", "eager", "--json"]) == 0
    eager = json.loads(capsys.readouterr().out)
    assert main([*argv, "--output-tokens", "3", "--json"]) == 0
    fused = json.loads(capsys.readouterr().out)
    assert eager["attention"] == "eager" and fused["attention"] == "fused"
    assert eager["tpot_ms"] > fused["tpot_ms"]


def test_a_record_naming_an_unknown_kernel_is_one_line(tmp_path, capsys):
    line = next(x for x in (DATA / "gaudi2_generate.jsonl").read_text().splitlines() if '"eager"' in x)
    path = tmp_path / "m.jsonl"
    path.write_text(line.replace('"eager"', '"flash"') + "\n")
    code = main(["validate", "--chip", "gaudi2", "--measurements", str(path)])
    err = capsys.readouterr().err
    assert (
        code == 2
        and err == f"accelsim: error: {path}: line 1: attention: Input should be 'fused' or 'eager' (got 'flash')\n"
    )


def test_the_fit_predicts_each_record_with_its_own_attention_kernel(tmp_path):
    from accelsim.fit_generation import Usable, _predict
    from accelsim.generation_records import LlmGenerateRecord

    model = _config(tmp_path)  # multi-query: 8 query heads on 1 key/value head
    base = dict(kind="llm_generate", chip="gaudi2", model=model.path, dtype="bf16", batch=64, cards=1)
    ms = {
        kernel: _predict(
            load_chip("gaudi2"),
            Usable(
                "llm_generate",
                "records.jsonl",
                1,
                LlmGenerateRecord(**base, input_tokens=1000, output_tokens=3, tokens_per_s=1.0, attention=kernel),
            ),
            None,
        )
        for kernel in ("fused", "eager")
    }
    assert ms["eager"] > 1.2 * ms["fused"]


@given(st.integers(1, 5000), st.integers(1, 64), st.integers(1, 64))
def test_the_busiest_load_lies_between_the_mean_and_every_token_and_grows_with_the_tokens(tokens, k, experts):
    k = min(k, experts)
    load = expected_max_load(tokens, k, experts)
    assert -(-tokens * k // experts) <= load <= tokens
    assert expected_max_load(tokens + 1, k, experts) >= load


@pytest.mark.parametrize(
    "option, value, words", [("--experts-used", "0", "from 1 to"), ("--attention", "flash", "choose")]
)
def test_generate_refuses_a_bad_kernel_option(capsys, option, value, words):
    argv = ["generate", "--chip", "gaudi2", "--model", "mistralai/Mixtral-8x7B-v0.1", "--batch", "1"]
    assert main([*argv, "--input-tokens", "8", "--output-tokens", "2", option, value]) == 2
    assert words in capsys.readouterr().err
