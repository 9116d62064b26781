"""Tensor parallelism: a model's shard per card, its collectives on the system's fabric, and what they cost."""

import json
import math

import pytest

import accelsim
from accelsim.catalog import load_model
from accelsim.chip import load_chip
from accelsim.cli import main
from accelsim.collective_costs import Fabric, collective_seconds
from accelsim.collectives import lower_bound_s
from accelsim.compiler import compile_graph
from accelsim.errors import AccelsimError
from accelsim.generation import generate, sharded, workload_for
from accelsim.lowering import lower
from accelsim.network import all_to_all
from accelsim.options import parallel_layout
from accelsim.parallel import Layout, shard_model
from accelsim.system import load_system, system_from_dict


def test_a_shard_holds_a_share_of_heads_mlp_and_vocabulary():
    spec = load_model("meta-llama/Llama-2-70b-hf").require()  # 64 heads, 8 KV heads, d_ff 28672, vocab 32000
    four = shard_model(spec, 4, "x")
    assert (four["heads"], four["kv_heads"], four["d_ff"], four["vocab"], four["d_head"]) == (16, 2, 7168, 8000, 128)
    sixteen = shard_model(spec, 16, "x")  # fewer KV heads than cards: one per card, replicated
    assert (sixteen["heads"], sixteen["kv_heads"]) == (4, 1)


@pytest.mark.parametrize(
    "model, cards, key",
    [("tiiuae/falcon-7b", 2, "heads"), ("Qwen/Qwen2-7B", 14, "kv_heads"), ("gpt2-xl", 3, "heads")],
)
def test_a_split_that_does_not_divide_is_refused_naming_the_key(model, cards, key):
    with pytest.raises(AccelsimError) as err:
        shard_model(load_model(model).require(), cards, "m.json")
    assert f"m.json: {key}: tensor parallelism over {cards} cards" in str(err.value)


def test_layouts_parse_and_refuse_typos():
    assert parallel_layout("tp=8,dp=128") == Layout(8, 1, 128) and parallel_layout("tp=8,dp=128").cards == 1024
    for bad, words in (("tq=2", "unknown key 'tq'"), ("tp=two", "whole number"), ("pp=0", "from 1 to")):
        with pytest.raises(AccelsimError, match=words):
            parallel_layout(bad)


def test_each_layer_all_reduces_its_attention_and_mlp_outputs_and_the_logits_are_gathered():
    model = sharded(load_model("meta-llama/Llama-2-7b-hf"), 4)
    graph = lower(workload_for(model, 2, 1, 16, "bf16", layers=3, tensor_parallel=4))
    reduces = [t for t in graph.tasks if t.op == "all_reduce"]
    # two per layer, and the vocabulary-parallel embedding's rows; each 2 sequences x d_model
    assert len(reduces) == 2 * 3 + 1 and all(t.shape == (2 * 4096,) for t in reduces)
    (gather,) = [t for t in graph.tasks if t.op == "all_gather"]
    assert gather.shape == (2 * 8000,) and gather.bytes_written == 4 * gather.bytes_read  # 32000 / 4 per card


def test_an_all_reduce_on_hls_gaudi2_takes_its_hand_worked_time_and_respects_the_bisection():
    # 8 cards, 3 x 12.5 GB/s per pair, 2 us a message, direct: reduce-scatter then all-gather, each card sending
    # 1/8 of 2 MiB to each of 7 peers at once over its own links: 2 x (2 us + 262,144 B / 37.5 GB/s) = 17.98 us.
    fabric = Fabric(8, "all-to-all", 12.5, 3, 2.0, "direct", 8, 0.0, 1, 0.0)
    seconds = collective_seconds("all_reduce", 2 << 20, fabric)
    assert seconds == pytest.approx(2 * (2e-6 + (2 << 20) / 8 / 37.5e9), rel=1e-3)
    assert seconds >= lower_bound_s("all_reduce", all_to_all(8, 37.5e9, 2e-6), 2 << 20)
    chip = load_system("hls-gaudi2").card_chip(8)
    task = accelsim.make_task("ar", "all_reduce", [1 << 20])  # 2 MiB of bf16
    net = next(g for g in chip.groups if g.name == "net")
    # the network engine adds the system's set-up and synchronisation per collective (collective_overhead_us)
    overhead = math.ceil(round(load_system("hls-gaudi2").spec.collective_overhead_us * 1.65e3, 6))
    assert accelsim.compute_cycles(task, net, chip) == pytest.approx(seconds * 1.65e9 + overhead, abs=1)


def test_one_card_is_the_single_card_run():
    chip, model = load_chip("gaudi2"), load_model("Salesforce/codegen2-1B")
    assert generate(chip, model, 2, 16, 8, cards=1) == generate(chip, model, 2, 16, 8)


def test_more_cards_hold_a_model_one_card_cannot_and_split_its_weights():
    chip, model = load_chip("gaudi2"), load_model("meta-llama/Llama-2-70b-hf")
    with pytest.raises(AccelsimError, match="would fit on 2 cards"):
        generate(chip, model, 1, 128, 16)
    two, eight = generate(chip, model, 1, 128, 16, cards=2), generate(chip, model, 1, 128, 16, cards=8)
    assert two.memory.weights_gb == pytest.approx(4 * eight.memory.weights_gb, rel=0.02)
    assert eight.tokens_per_s > two.tokens_per_s  # each card reads a quarter of the weights per step


def _gaudi2_system(link_gbps: float) -> accelsim.system.System:
    data = accelsim.config.read_toml(accelsim.resources.resolve("hls-gaudi2", "systems"))
    data["scale_up"]["link_gbps"] = link_gbps
    return system_from_dict(data, "hls.toml")


def test_more_link_bandwidth_never_slows_a_tensor_parallel_generation():
    chip, model = load_chip("gaudi2"), load_model("meta-llama/Llama-2-7b-hf")
    rates = [generate(chip, model, 16, 128, 8, cards=8, system=_gaudi2_system(bw)).tokens_per_s for bw in (1, 5, 25)]
    assert rates == sorted(rates) and rates[0] < rates[-1]


def test_the_compiled_card_runs_its_collectives_on_the_network_engine():
    model = sharded(load_model("Qwen/Qwen2-7B"), 4)
    chip = load_system("hls-gaudi2").card_chip(4)
    graph = compile_graph(lower(workload_for(model, 1, 1, 8, "bf16", layers=1, tensor_parallel=4)), chip).graph
    results = accelsim.run(chip, graph)
    network = {e.name: e.tasks for e in results.engines if e.kind in ("network", "data_network")}
    assert network == {"net0": 4, "net_dp0": 0}  # the embedding's and two all-reduces, the logits' gather


def test_generate_on_several_cards_from_the_command_line(capsys):
    argv = [
        "generate",
        "--chip",
        "gaudi2",
        "--model",
        "meta-llama/Llama-2-7b-hf",
        "--batch",
        "1",
        "--input-tokens",
        "8",
        "--output-tokens",
        "4",
    ]
    assert main([*argv, "--parallel", "tp=2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["cards"] == 2 and "network" in out["decode"]["utilization"]
    assert main([*argv, "--parallel", "tp=16"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "a node of hls-gaudi2 has 8" in err
