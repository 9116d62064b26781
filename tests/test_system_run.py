"""A workload on a system of many cards: one card stands for all; the layout's rules; what more bandwidth and
more replicas may and may not do."""

import json

import pytest

import accelsim
from accelsim.cli import main
from accelsim.config import read_toml
from accelsim.errors import AccelsimError
from accelsim.lowering import lower
from accelsim.options import parallel_layout
from accelsim.parallel import Layout
from accelsim.system import load_system, system_from_dict
from accelsim.system_run import communication, pipeline_step, place
from accelsim.workload import load_workload, workload_data

TRAIN = ["mode=training", "layers=2", "seq_len=256", "batch=2"]


def _step(system, layout, overrides=TRAIN, workload="gpt2-medium", nodes=None):
    data, source = workload_data(workload, overrides)
    placement = place(system, layout, data, source, nodes=nodes)
    return accelsim.run(placement.chip, lower(placement.workload))


def _system(name="dgx-a100", cards_per_node=None, **scale):
    data = read_toml(accelsim.resources.resolve(name, "systems"))
    for key, factor in scale.items():
        section, field = key.split("__")
        data[section][field] *= factor
    if cards_per_node is not None:  # a smaller node of the same cards and fabric
        data["cards_per_node"] = cards_per_node
    return system_from_dict(data, f"{name}.toml")


def test_one_card_of_a_one_card_layout_is_the_single_chip_run():
    system = _system(cards_per_node=1)
    alone = accelsim.run("a100", lower(load_workload("gpt2-medium", TRAIN)))
    assert _step(system, Layout(1, 1, 1)).latency_cycles == alone.latency_cycles


def test_tensor_parallelism_adds_all_reduces_and_shortens_the_step():
    system = load_system("hls-gaudi2")  # 8 cards: 8 replicas of the model, or one split over all eight
    one, eight = _step(system, Layout(1, 1, 8)), _step(system, Layout(8, 1, 1))
    reduces = [t for t in eight.graph.tasks if t.op == "all_reduce"]
    assert reduces and not any(t.op == "all_reduce" for t in one.graph.tasks)
    assert eight.latency_cycles < one.latency_cycles


@pytest.mark.parametrize("layout, nodes", [(Layout(2, 1, 4), 1), (Layout(8, 1, 2), 2)])
def test_more_link_bandwidth_never_slows_a_step(layout, nodes):
    scaled = [_system(scale_up__link_gbps=f, scale_out__port_gbps=f) for f in (0.25, 1, 4)]
    steps = [_step(system, layout, nodes=nodes).latency_cycles for system in scaled]
    assert steps == sorted(steps, reverse=True) and steps[0] > steps[-1]


def test_weak_scaling_never_speeds_up_a_step():
    """More replicas, each with the same batch: the gradients' all-reduce can only take longer."""
    system = load_system("dgx-a100")
    steps = [_step(system, Layout(8, 1, dp), nodes=dp).latency_cycles for dp in (1, 2, 4, 16)]
    assert steps == sorted(steps) and steps[0] < steps[-1]


def test_exposed_and_hidden_communication_add_up():
    results = _step(load_system("hls-gaudi2"), Layout(2, 1, 4))
    c = communication(results)
    assert c.exposed_ms + c.hidden_ms == pytest.approx(c.communication_ms, abs=1e-3)
    assert 0 < c.hidden_ms and c.exposed_ms <= c.step_ms
    assert set(c.network_utilization) == {"network", "data_network"}


def test_zero1_and_recomputation_change_the_step_as_they_should():
    system = load_system("hls-gaudi2")
    plain = _step(system, Layout(2, 1, 4))
    zero = _step(system, Layout(2, 1, 4), [*TRAIN, "zero=1"])
    full = _step(system, Layout(2, 1, 4), [*TRAIN, "recompute=full"])
    assert any(t.op == "grad_reduce_scatter" for t in zero.graph.tasks)
    assert not any(t.op == "grad_reduce_scatter" for t in plain.graph.tasks)
    # recomputing each layer's forward pass costs about a forward pass more FLOPs
    assert full.graph.total_flops > plain.graph.total_flops and full.latency_cycles > plain.latency_cycles


@pytest.mark.parametrize(
    "layout, overrides, words",
    [
        (Layout(3, 1, 1), TRAIN, "a tensor group must fit in a node and divide it"),
        (Layout(4, 1, 3), TRAIN, "12 cards is neither part of one node nor the cards of whole nodes"),
        (Layout(4, 2, 1), TRAIN, "pp > 1 runs as a pipeline"),
        (Layout(2, 1, 4), ["layers=2"], "dp > 1 runs replicas that never communicate"),
        (Layout(8, 1, 1), ["mode=training", "heads=12", "d_model=768"], "12 attention heads do not divide into 8"),
        (
            Layout(1, 1, 8),
            ["mode=training", "layers=48", "d_model=6144", "heads=48", "seq_len=2048", "batch=16"],
            "each card needs",
        ),
    ],
)
def test_layouts_that_cannot_run_are_one_line(layout, overrides, words):
    with pytest.raises(AccelsimError, match=words):
        _step(load_system("dgx-a100"), layout, overrides)


def test_run_on_a_system_from_the_command_line(capsys):
    argv = ["run", "--system", "hls-gaudi2", "--workload", "gpt2-medium", "--parallel", "tp=4,dp=4", "--nodes", "2"]
    assert main([*argv, *(f"--set={s}" for s in TRAIN), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["communication"]["step_ms"] > out["communication"]["exposed_ms"] >= 0
    assert main(["run", "--system", "hls-gaudi2", "--chip", "gaudi2", "--workload", "gpt2-small"]) == 2
    assert "not both" in capsys.readouterr().err
    assert main(["run", "--chip", "gaudi2", "--workload", "gpt2-small", "--parallel", "tp=2"]) == 2
    assert "give --system" in capsys.readouterr().err


def _train_record(**changes):
    record = {
        "kind": "train_step",
        "system": "dgx-a100",
        "cards": 16,
        "model": {"family": "gpt", "layers": 2, "d_model": 2560, "heads": 32, "seq_len": 512, "vocab": 50304},
        "batch": 4,
        "tp": 8,
        "pp": 1,
        "dp": 2,
        "recompute": "full",
        "dtype": "fp16",
        "ms": 100.0,
    }
    return json.dumps({**record, **changes})


def test_train_step_records_are_predicted_on_their_system_or_skipped_with_the_reason(tmp_path, capsys):
    path = tmp_path / "steps.jsonl"
    catalog = _train_record(model="gpt2-xl", seq_len=256, tp=1, dp=16, cards=16)
    piped = _train_record(
        pp=2, dp=1, model={"family": "gpt", "layers": 2, "d_model": 2560, "heads": 32, "seq_len": 512, "vocab": 50304}
    )
    path.write_text("\n".join([_train_record(), piped, catalog, _train_record(system="hls-1")]))
    assert main(["validate", "--chip", "a100", "--measurements", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    predicted = {(r["model"] if isinstance(r["model"], str) else "gpt", r["pp"]): r for r in out["records"]}
    assert set(predicted) == {("gpt", 1), ("gpt", 2), ("gpt2-xl", 1)}
    gpt = predicted[("gpt", 1)]
    assert gpt["predicted_ms"] > 0 and gpt["rel_error"] == pytest.approx(gpt["predicted_ms"] / 100.0 - 1, abs=1e-3)
    reasons = {s["line"]: s["reason"] for s in out["skipped"]}
    assert list(reasons) == [4] and "not on a100" in reasons[4]
    assert out["summary"]["train_step"]["records"] == 3


def test_a_train_step_record_whose_layout_is_not_its_cards_is_one_line(tmp_path, capsys):
    path = tmp_path / "steps.jsonl"
    path.write_text(_train_record(cards=8))
    assert main(["validate", "--chip", "a100", "--measurements", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "line 1: cards: tp x pp x dp = 16, not the record's 8" in err


def test_1f1b_on_equal_stages_takes_the_textbook_time_and_bubble():
    from accelsim.pipeline import StageTimes, one_f_one_b, simulate_pipeline

    # p stages, m micro-batches, f + b per micro-batch: (m + p - 1)(f + b), bubble (p - 1) / (m + p - 1)
    run = simulate_pipeline([StageTimes(10, 20, 5)] * 4, 8, 0)
    assert run.cycles == (8 + 4 - 1) * 30 + 5
    orders = one_f_one_b(4, 8)
    assert [o[: 4 - s] for s, o in enumerate(orders)][0] == [("F", 0), ("F", 1), ("F", 2), ("F", 3)]
    assert all(sorted(o) == sorted([(k, m) for k in "FB" for m in range(8)]) for o in orders)
    assert orders[3][:4] == [("F", 0), ("B", 0), ("F", 1), ("B", 1)]  # the last stage alternates at once
    # sending between stages lengthens the fill and the drain
    assert simulate_pipeline([StageTimes(10, 20, 0)] * 4, 8, 3).cycles > (8 + 4 - 1) * 30


def test_a_pipeline_on_a_system_has_its_bubble_and_more_micro_batches_shrink_it():
    system = load_system("dgx-a100")
    data, source = workload_data("gpt2-medium", ["mode=training", "layers=8", "seq_len=256", "batch=16"])
    few = pipeline_step(system, Layout(2, 4, 1), {**data, "run": {**data["run"], "micro_batch": 4}}, source, "naive")
    many = pipeline_step(system, Layout(2, 4, 1), {**data, "run": {**data["run"], "micro_batch": 1}}, source, "naive")
    assert few.stages == ("first", "middle", "middle", "last") and few.run.micro_batches == 4
    assert many.run.bubble < few.run.bubble
    assert few.times["last"].forward > few.times["middle"].forward  # the LM head sits on the last stage


@pytest.mark.parametrize(
    "overrides, words",
    [
        (["mode=training", "layers=6"], "6 layers do not divide into 4 pipeline stages"),
        (["mode=training", "layers=8", "batch=3", "micro_batch=2"], "not a multiple of micro_batch 2"),
        (["layers=8"], "modelled for training"),
    ],
)
def test_pipelines_that_cannot_run_are_one_line(overrides, words):
    data, source = workload_data("gpt2-medium", overrides)
    with pytest.raises(AccelsimError, match=words):
        pipeline_step(load_system("dgx-a100"), Layout(2, 4, 1), data, source, "naive")


def test_run_and_plot_a_pipeline_from_the_command_line(capsys, tmp_path):
    argv = [
        "--system",
        "dgx-a100",
        "--workload",
        "gpt2-medium",
        "--parallel",
        "tp=2,pp=2,dp=2",
        "--set",
        "mode=training",
        "--set",
        "layers=4",
        "--set",
        "seq_len=256",
        "--set",
        "batch=4",
    ]
    assert main(["run", *argv, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["stages"] == ["first", "last"] and out["micro_batches"] == 4 and 0 < out["bubble"] < 1
    assert main(["plot", *argv, "--out", str(tmp_path)]) == 0
    assert (tmp_path / "pipeline_dgx-a100.png").exists()
    capsys.readouterr()
    assert main(["compare", *argv, "--scheduler", "naive,balanced", "--json"]) == 0
    compared = json.loads(capsys.readouterr().out)
    assert set(compared) == {"naive", "balanced"} and all(v["step_ms"] > 0 for v in compared.values())


@pytest.mark.parametrize(
    "name, layout",
    [
        ("hls-gaudi2", Layout(2, 1, 4)),
        ("hls-gaudi2", Layout(8, 1, 1)),
        ("dgx-a100", Layout(4, 1, 2)),
        ("dgx-a100", Layout(8, 1, 2)),
    ],  # the last across two nodes
)
def test_the_symmetric_shortcut_gives_what_simulating_every_card_gives(name, layout):
    from accelsim.explicit import explicit_step

    system = load_system(name)
    nodes = layout.cards // system.spec.cards_per_node
    data, source = workload_data("gpt2-medium", TRAIN)
    every = explicit_step(system, layout, data, source, nodes=nodes)
    assert len(every.cards) == layout.tp * layout.dp
    assert {r.latency_cycles for r in every.cards} == {_step(system, layout, nodes=nodes).latency_cycles}


def test_simulating_every_card_sees_collectives_of_two_groups_share_a_switch():
    """What the shortcut leaves out: a tensor group's and a data group's collectives crossing the same switch ports
    at the same time (each is costed on an idle fabric in the shortcut)."""
    from accelsim.explicit import explicit_step

    system = _system(scale_up__link_gbps=0.02)  # a slow NVSwitch, so that collectives overlap
    data, source = workload_data("gpt2-medium", TRAIN)
    every = explicit_step(system, Layout(4, 1, 2), data, source)
    assert every.latency_cycles > _step(system, Layout(4, 1, 2)).latency_cycles


def test_run_explicit_from_the_command_line(capsys):
    argv = [
        "run",
        "--system",
        "hls-gaudi2",
        "--workload",
        "gpt2-medium",
        "--parallel",
        "tp=2,dp=4",
        *(f"--set={s}" for s in TRAIN),
        "--explicit",
        "--json",
    ]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["cards"] == 8 and out["step_ms"] == out["shortcut_step_ms"] and len(set(out["per_card_step_ms"])) == 1
    assert main(["run", "--chip", "gaudi2", "--workload", "gpt2-medium", "--explicit"]) == 2
    assert "give --system" in capsys.readouterr().err


def test_sequence_parallelism_trades_each_all_reduce_for_a_reduce_scatter_and_an_all_gather():
    system = _system("hls-gaudi2", cards_per_node=4)  # a four-card Gaudi 2 node
    plain = _step(system, Layout(4, 1, 1))
    seq = _step(system, Layout(4, 1, 1), [*TRAIN, "sequence_parallel=true"])

    def sent(results, *ops):
        return sum(t.bytes_read for t in results.graph.tasks if t.op in ops)

    # Each all-reduce of the rows (2 per layer and pass, the embedding's, the head's input gradient: 10 of 2 MiB
    # here) is a reduce-scatter of the same buffer; the all-gathers (2 per layer and pass, the final norm's: 9)
    # each read a card's quarter of it. Only the loss's statistics stay all-reduced.
    rows = 2 * 256 * 1024 * 2  # batch x seq_len x d_model, bf16
    assert sent(seq, "reduce_scatter") == 10 * rows == sent(plain, "all_reduce") - 2 * 256 * 2 * 2
    assert sent(seq, "all_gather") == 9 * rows // 4
    assert sent(seq, "all_reduce") == 2 * 256 * 2 * 2
    norms = [t for t in seq.graph.tasks if t.op == "layernorm"]
    assert norms and all(t.shape == (2 * 256 * 1024 // 4,) for t in norms if t.name.endswith("ln1"))
    from accelsim.explicit import explicit_step

    data, source = workload_data("gpt2-medium", [*TRAIN, "sequence_parallel=true"])
    assert explicit_step(system, Layout(4, 1, 1), data, source).latency_cycles == seq.latency_cycles


def test_plot_a_systems_card_with_its_network_engines_as_timeline_rows(capsys, tmp_path):
    from accelsim.plots import timeline_data

    argv = [
        "plot",
        "--system",
        "hls-gaudi2",
        "--workload",
        "gpt2-medium",
        "--parallel",
        "tp=2,dp=4",
        *(f"--set={s}" for s in TRAIN),
        "--scheduler",
        "naive",
        "--out",
        str(tmp_path),
    ]
    assert main(argv) == 0
    assert any(p.name.startswith("timeline_gaudi2") for p in tmp_path.iterdir())
    rows = timeline_data(_step(load_system("hls-gaudi2"), Layout(2, 1, 4))).rows
    assert "net0" in rows and "net_dp0" in rows


def test_1f1b_by_hand_with_sends_and_tails():
    from accelsim.pipeline import StageTimes, one_f_one_b, simulate_pipeline

    # 2 stages, 2 micro-batches, F = 10, B = 20, a send 3. Stage 0: F0 [0,10], F1 [10,20], waits for B0 from
    # stage 1 (done 43, sent 46): B0 [46,66], B1 waits for stage 1's B1 (done 73, sent 76): [76,96]. Stage 1: F0
    # when sent (13) [13,23], B0 [23,43], F1 [43,53], B1 [53,73]. Tails 4 and 30: 96 + 4 and 73 + 30 -> 103.
    run = simulate_pipeline([StageTimes(10, 20, 4), StageTimes(10, 20, 30)], 2, 3)
    spans = {(p.stage, p.kind, p.micro_batch): (p.start, p.end) for p in run.passes}
    assert spans[(0, "B", 0)] == (46, 66) and spans[(0, "B", 1)] == (76, 96) and spans[(1, "F", 1)] == (43, 53)
    assert run.cycles == 103
    for stages, micro in ((0, 4), (2, 0)):
        with pytest.raises(AccelsimError, match="needs stages and micro-batches"):
            one_f_one_b(stages, micro)


def test_layouts_parse_with_spaces_and_name_the_bad_part():
    assert parallel_layout(" tp = 2 , dp=4 ") == Layout(2, 1, 4) and parallel_layout("pp=1") == Layout(1, 1, 1)
    with pytest.raises(AccelsimError, match=r"^--parallel: name at least one degree, got ' '$"):
        parallel_layout(" ")
    with pytest.raises(AccelsimError, match=r"--parallel: tp must be a whole number, got 'two'"):
        parallel_layout("tp=two")
    with pytest.raises(AccelsimError, match=r"--parallel: dp must be from 1 to 2,147,483,647, got 0"):
        parallel_layout("dp=0")
    with pytest.raises(AccelsimError, match=r"--parallel: unknown key 'ep'; allowed: tp, pp, dp"):
        parallel_layout("tp=2,ep=4")


def test_experts_and_the_vocabulary_are_sharded_too():
    from accelsim.catalog import load_model
    from accelsim.parallel import shard_model

    mixtral = shard_model(load_model("mistralai/Mixtral-8x7B-v0.1").require(), 2, "m")
    assert (mixtral["experts"], mixtral["d_ff_expert"], mixtral["vocab"]) == (8, 7168, 16000)
    qwen = shard_model(load_model("Qwen/Qwen1.5-MoE-A2.7B").require(), 4, "q")
    assert (qwen["d_ff_expert"], qwen["d_ff_shared"], qwen["heads"]) == (352, 1408, 4)
    gpt = shard_model({"d_model": 1600, "heads": 25, "d_ff": 6400, "vocab": 50257}, 5, "g")
    assert gpt["vocab"] == 10052 and gpt["d_head"] == 64  # 50257 / 5, rounded up: the table padded
    with pytest.raises(AccelsimError, match="g: d_ff: tensor parallelism over 3 cards: the MLP width 6400 does not"):
        shard_model({"d_model": 1599, "heads": 39, "d_ff": 6400, "vocab": 8}, 3, "g")
    assert shard_model(gpt, 1, "g") == gpt


def test_the_edges_of_layouts_and_shards():
    from accelsim.catalog import load_model
    from accelsim.limits import MAX_CARDS, MAX_WORKLOAD_SIZE
    from accelsim.parallel import shard_model
    from accelsim.pipeline import StageTimes, one_f_one_b, simulate_pipeline

    assert one_f_one_b(1, 3) == [[("F", 0), ("B", 0), ("F", 1), ("B", 1), ("F", 2), ("B", 2)]]
    assert simulate_pipeline([StageTimes(10, 20, 5)], 1, 7).cycles == 35  # one stage: nothing to send
    assert parallel_layout("tp=1,pp=1,dp=2") == Layout(1, 1, 2)
    assert parallel_layout(f"dp={MAX_CARDS}").dp == MAX_CARDS  # the largest network simulated
    with pytest.raises(AccelsimError, match=f"--parallel: tp x pp x dp is {MAX_WORKLOAD_SIZE:,} cards; at most"):
        parallel_layout(f"dp={MAX_WORKLOAD_SIZE}")
    with pytest.raises(AccelsimError, match="tp must be a whole number, got '2=3'"):
        parallel_layout("tp=2=3")
    gemma = shard_model(load_model("google/gemma-7b").require(), 2, "g")  # heads of 256, wider than 3072 / 16
    assert (gemma["heads"], gemma["d_head"]) == (8, 256)
    with pytest.raises(AccelsimError, match="4 key/value heads neither divide into 14 shares nor divide 14"):
        shard_model(load_model("Qwen/Qwen2-7B").require(), 14, "q")
