"""Training as published runs are configured (accelsim.training, ``accelsim train``): micro-batches and gradient
accumulation, ZeRO's stages, fp8 training, part of a node, and the search over layouts."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim import run as run_graph
from accelsim.chip import load_chip
from accelsim.cli import main
from accelsim.errors import AccelsimError
from accelsim.footprint import card_memory
from accelsim.lowering import lower
from accelsim.ops import OPS, CollectiveOp
from accelsim.parallel import Layout
from accelsim.system import load_system
from accelsim.system_run import place
from accelsim.training import TrainOptions, search, train_step
from accelsim.vocabulary import DTYPE_BYTES
from accelsim.workload import load_workload, workload_data, workload_from_dict

SMALL = ["layers=2", "d_model=256", "heads=4", "vocab=1024"]


def _data(extra: list[str] | None = None) -> tuple[dict, str]:
    return workload_data("gpt2-medium", [*SMALL, *(extra or [])])


def _step(layout: Layout, system: str = "hls-gaudi2", **changes: Any):
    options = replace(TrainOptions(8, 1, 128), **changes)
    data, source = _data()
    return train_step(load_system(system), layout, data, source, options)


def _run_dict(layout: Layout, **run: object) -> dict:
    data, _ = _data()
    settings_ = {"mode": "training", "batch": 1, "seq_len": 128, **run}
    return {**data, "run": settings_}


def test_a_step_of_m_micro_batches_is_m_minus_one_micro_batches_and_the_last_by_hand():
    """Each micro-batch but the last is a forward and backward (gradients accumulated, nothing reduced); the last
    adds the replicas' reduction and the update. Both graphs simulated here directly, not through train_step."""
    system, layout = load_system("hls-gaudi2"), Layout(2, 1, 4)
    one = place(system, layout, _run_dict(layout, optimizer_step=False), "<t>")
    last = place(system, layout, _run_dict(layout), "<t>")
    a = run_graph(one.chip, lower(one.workload)).latency_cycles
    b = run_graph(last.chip, lower(last.workload)).latency_cycles
    assert not any(OPS[t.op].category == "network" and "grad" in t.op for t in lower(one.workload).tasks)
    assert b > a  # the update and the reduction the backward does not hide
    to_ms = one.chip.cycles_to_us(1) / 1e3
    for m in (1, 3, 6):
        step = _step(layout, global_batch=4 * m)
        assert step.micro_batches == m
        assert step.step_ms == pytest.approx(((m - 1) * a + b) * to_ms, abs=1e-3)
        assert step.micro_batch_ms == pytest.approx((a if m > 1 else b) * to_ms, abs=1e-3)
        assert step.last_ms == pytest.approx(b * to_ms, abs=1e-3)


def test_activation_memory_is_one_micro_batch_and_a_pipelines_in_flight_count():
    whole = _step(Layout(1, 1, 8), global_batch=64, micro_batch=8)
    micro = _step(Layout(1, 1, 8), global_batch=64, micro_batch=1)
    assert micro.memory.activations == pytest.approx(whole.memory.activations / 8)
    assert micro.memory.parameters == whole.memory.parameters
    piped = _step(Layout(1, 2, 4), global_batch=64, micro_batch=1)  # 16 micro-batches, 2 stages: 2 in flight
    data, source = _data()
    stage = {**data, "model": {**data["model"], "layers": 1}}
    stage["run"] = {**TrainOptions(64, 1, 128).run_settings(Layout(1, 2, 4)), "pipeline_stage": "first"}
    first = place(load_system("hls-gaudi2"), Layout(1, 1, 4), stage, source, total_cards=8)
    assert piped.memory.activations == pytest.approx(2 * card_memory(first.workload, Layout(1, 1, 4)).activations)
    assert piped.micro_batches == 16 and 0 < piped.bubble < 1


def _gathered_bytes(graph, marker: str) -> int:
    """Bytes of the parameters all-gathered (the gathered result, in the task's dtype) by tasks named ``marker``."""
    return sum(
        t.shape[0] * 4 * DTYPE_BYTES[t.dtype] for t in graph.tasks if t.op == "param_all_gather" and marker in t.name
    )


def test_zero3_gathers_every_parameter_twice_per_micro_batch():
    layout = Layout(1, 1, 4)
    placed = place(load_system("hls-gaudi2"), layout, _run_dict(layout, zero=3, optimizer_step=False), "<t>")
    graph = lower(placed.workload)
    params = placed.workload.parameters
    assert params % 4 == 0  # every bucket divides over the 4 replicas: no padding
    # forward and backward: 2 x parameters x 2 bytes (bf16) gathered, (dp - 1)/dp of it from the other replicas
    assert _gathered_bytes(graph, "zero3_gather") == 2 * params * 2
    assert _gathered_bytes(graph, "zero3_gather") * 3 // 4 == 2 * params * 2 * (4 - 1) // 4
    # ZeRO 0-2 gather none before use
    for zero in (0, 1, 2):
        other = place(load_system("hls-gaudi2"), layout, _run_dict(layout, zero=zero), "<t>")
        assert _gathered_bytes(lower(other.workload), "zero3_gather") == 0


def _network_bytes(graph, dp: int) -> float:
    """Bytes one card sends over the data network: an all-reduce 2 (n-1)/n of its buffer, a reduce-scatter and an
    all-gather (n-1)/n of the whole."""
    total = 0.0
    for t in graph.tasks:
        op = OPS[t.op]
        if not isinstance(op, CollectiveOp) or "data_network" not in op.default_engines:
            continue
        n = t.shape[0] * DTYPE_BYTES[t.dtype] * (dp if op.collective == "all_gather" else 1)
        total += n * (dp - 1) / dp * (2 if op.collective == "all_reduce" else 1)
    return total


def test_zero1_moves_no_more_than_zero0_and_zero3_more():
    layout = Layout(1, 1, 4)
    moved = {
        zero: _network_bytes(
            lower(place(load_system("hls-gaudi2"), layout, _run_dict(layout, zero=zero), "<t>").workload), 4
        )
        for zero in range(4)
    }
    assert 0 < moved[1] <= moved[0] and moved[2] <= moved[0]
    assert moved[3] > moved[0]  # the parameters gathered twice more


@settings(max_examples=25, deadline=None)
@given(
    d=st.sampled_from([64, 128, 256]),
    layers=st.integers(1, 4),
    dps=st.tuples(st.sampled_from([2, 4, 8]), st.sampled_from([2, 4, 8])).map(sorted),
    zeros=st.tuples(st.integers(0, 3), st.integers(0, 3)).map(sorted),
    recompute=st.sampled_from(["none", "selective", "full"]),
)
def test_memory_per_card_never_grows_with_replicas_or_zero_stage(d, layers, dps, zeros, recompute):
    def memory(dp: int, zero: int) -> float:
        run = {"mode": "training", "batch": 2, "seq_len": 64, "data_parallel": dp, "zero": zero, "recompute": recompute}
        model = {"family": "gpt", "layers": layers, "d_model": d, "heads": 4, "vocab": 500}
        wl = workload_from_dict({"name": "m", "model": model, "run": run})
        return card_memory(wl, Layout(1, 1, dp)).total

    small_dp, large_dp = dps
    low, high = zeros
    assert memory(large_dp, low) <= memory(small_dp, low)
    assert memory(small_dp, high) <= memory(small_dp, low)


def test_fp8_training_runs_its_products_in_fp8_and_the_rest_in_bf16():
    wl = load_workload("gpt2-medium", [*SMALL, "mode=training", "dtype=fp8", "seq_len=128"])
    assert (wl.spec.run.dtype, wl.spec.run.matmul_dtype) == ("bf16", "fp8")
    tasks = {t.name: t for t in lower(wl).tasks}
    assert tasks["embed.gather"].dtype == "bf16"  # the failure: no engine runs copy in fp8
    assert tasks["L0.qkv"].dtype == tasks["L0.qkv.dA"].dtype == tasks["L0.qkv.dW"].dtype == "fp8"
    assert tasks["L0.ln1"].dtype == tasks["L0.res1"].dtype == "bf16"
    assert tasks["head.lm"].dtype == tasks["head.lm.dW"].dtype == "bf16"  # the LM head stays in bf16
    assert run_graph("gaudi2", lower(wl)).latency_cycles > 0


def _wide_step(layout: Layout, d_model: int, dtype: str):
    data, source = workload_data("gpt2-medium", ["layers=1", f"d_model={d_model}", "heads=8", "vocab=8192"])
    return train_step(load_system("hls-gaudi2"), layout, data, source, TrainOptions(16, 2, 1024, dtype=dtype))


@pytest.mark.parametrize("layout", [Layout(1, 1, 8), Layout(2, 1, 4), Layout(4, 1, 2)])
def test_fp8_training_is_never_slower_than_bf16_where_fp8_products_are_faster(layout):
    """On products of a transformer's width (d_model 1,024 and up, 2,048 tokens a micro-batch), gaudi2's doubled fp8
    rate outweighs the pass its compiler makes over each fp8 product's input ([compiler] input_pass_dtypes)."""
    bf16 = _wide_step(layout, 1024, "bf16")
    fp8 = _wide_step(layout, 1024, "fp8")
    assert fp8.step_ms <= bf16.step_ms
    assert fp8.peak_tflops == 2 * bf16.peak_tflops  # gaudi2: fp8 twice bf16's rate


def test_fp8_training_of_thin_products_pays_for_its_input_passes():
    """The other side of the same mechanism (the measured fp8 thin-N loss): at d_model 256 each product is too
    thin for the doubled rate to pay for reading and writing its input once more, so fp8 comes out slower."""
    bf16 = _wide_step(Layout(1, 1, 8), 256, "bf16")
    fp8 = _wide_step(Layout(1, 1, 8), 256, "fp8")
    assert fp8.step_ms > bf16.step_ms


def test_fp8_training_on_equal_rate_products_gains_only_the_bytes():
    """Gaudi 3's MME runs fp8 at bf16's rate: fp8 moves fewer bytes, so it is no slower, but not much faster."""
    bf16 = _step(Layout(1, 1, 8), "hls-gaudi3", global_batch=16, micro_batch=2)
    fp8 = _step(Layout(1, 1, 8), "hls-gaudi3", global_batch=16, micro_batch=2, dtype="fp8")
    assert fp8.peak_tflops == bf16.peak_tflops
    assert 0.8 * bf16.step_ms <= fp8.step_ms <= bf16.step_ms


def test_a_one_card_layout_on_an_eight_card_system_equals_the_single_chip_run():
    step = _step(Layout(1, 1, 1), global_batch=2, micro_batch=2)
    wl = workload_from_dict(_run_dict(Layout(1, 1, 1), batch=2, micro_batch=2), "<t>")
    chip = load_chip("gaudi2")
    alone = run_graph(chip, lower(wl))
    assert step.step_ms == pytest.approx(alone.latency_us / 1e3, abs=1e-4)


@pytest.mark.parametrize("layout", [Layout(1, 1, 2), Layout(2, 1, 2), Layout(1, 1, 4), Layout(4, 1, 1)])
def test_part_of_a_node_runs_its_collectives_over_only_its_cards(layout):
    placed = place(load_system("hls-gaudi2"), layout, _run_dict(layout, batch=2), "<t>")
    nets = {g.kind: g.spec.cards for g in placed.chip.groups if g.kind in ("network", "data_network")}
    assert nets == {"network": layout.tp, "data_network": layout.dp}
    assert placed.nodes == 1
    assert _step(layout, global_batch=8).step_ms > 0


def test_part_of_a_node_has_only_the_links_of_its_cards():
    """On NVSwitch a ring over more cards takes longer (2 (n - 1)/n of the buffer); on Gaudi 2's all-to-all links
    two cards have only the links between them, so their reduction is slower than eight cards' over all theirs."""

    def reduction(system: str, dp: int) -> float:
        return _step(Layout(1, 1, dp), system, global_batch=2 * dp, micro_batch=2).communication["data_network"].busy_ms

    assert reduction("dgx-a100", 8) >= reduction("dgx-a100", 2)
    assert reduction("hls-gaudi2", 2) > reduction("hls-gaudi2", 8)


@pytest.mark.parametrize(
    "layout, changes, words",
    [
        (Layout(1, 1, 4), {"global_batch": 6}, "not a whole number of micro-batches"),
        (Layout(1, 2, 4), {"zero": 2}, "ZeRO stages 2 and 3 do not run with pipeline"),
        (Layout(1, 4, 2), {}, "layers do not divide into 4 pipeline stages"),
        (Layout(1, 1, 8), {"micro_batch": 8, "global_batch": 64, "seq_len": 8192}, "more than its"),
    ],
)
def test_a_step_that_cannot_run_is_one_error(layout, changes, words):
    if "more than its" in words:  # a model too big for one card's memory
        data, source = workload_data("gpt2-medium", ["layers=48", "d_model=6144", "heads=48"])
        options = replace(TrainOptions(8, 1, 128), **changes)
        with pytest.raises(AccelsimError, match=words):
            train_step(load_system("hls-gaudi2"), layout, data, source, options)
        return
    with pytest.raises(AccelsimError, match=words):
        _step(layout, **changes)


def test_the_old_zero1_spelling_is_refused_with_the_new_one():
    with pytest.raises(AccelsimError, match="zero1 is now zero"):
        load_workload("gpt2-small", ["mode=training", "zero1=true"])
    with pytest.raises(AccelsimError, match=r"run.zero1 is now run.zero"):
        workload_from_dict(
            {
                "name": "x",
                "model": {"family": "gpt", "layers": 1, "d_model": 8, "heads": 1, "vocab": 8},
                "run": {"batch": 1, "seq_len": 8, "zero1": True},
            }
        )


def test_search_ranks_what_runs_and_says_why_the_rest_was_refused():
    data, source = _data()
    found = search(load_system("hls-gaudi2"), data, source, 8, TrainOptions(12, 1, 128), micro_batch=None)
    steps = [s.step_ms for s in found.ranked]
    assert steps == sorted(steps) and len(steps) > 3
    assert all(s.layout.cards == 8 and s.options.global_batch == 12 for s in found.ranked)
    # dp = 8 does not divide a global batch of 12; 4 heads do not split over 8 cards
    assert found.reasons()["divisibility"] >= 2
    layouts = {(s.layout.tp, s.layout.pp, s.layout.dp) for s in found.ranked}
    assert (4, 2, 1) in layouts and (8, 1, 1) not in layouts


def test_train_from_the_command_line(capsys, tmp_path):
    argv = ["train", "--system", "hls-gaudi2", "--workload", "gpt2-medium", *(f"--set={s}" for s in SMALL)]
    argv += ["--parallel", "tp=2,dp=2", "--global-batch", "8", "--micro-batch", "2", "--seq-len", "128"]
    assert main([*argv, "--json", "--zero", "1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["micro_batches"] == 2 and out["zero"] == 1 and out["cards"] == 4
    parts = out["breakdown_ms"]
    assert sum(parts.values()) == pytest.approx(out["step_ms"], abs=1e-3)
    assert set(out["memory"]) >= {"parameters_gb", "gradients_gb", "optimizer_gb", "activations_gb"}
    assert main([*argv, "--plot", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "MFU" in text and "tokens/s" in text and "memory per card" in text
    assert (tmp_path / "train_hls-gaudi2_2x1x2.png").exists()
    search_argv = ["train", "--system", "hls-gaudi2", "--workload", "gpt2-medium", *(f"--set={s}" for s in SMALL)]
    search_argv += ["--global-batch", "8", "--seq-len", "128", "--search", "--cards", "4", "--micro-batch", "2"]
    assert main(search_argv) == 0
    assert "candidates on 4 cards" in capsys.readouterr().out


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--parallel", "tp=2", "--set", "batch=4"], "is a run setting"),
        (["--parallel", "tp=2", "--set", "seq_len=64"], "is a run setting"),
        (["--search"], "give --cards"),
        (["--parallel", "tp=2", "--cards", "2"], "--cards is the search's"),
        ([], "give the layout"),
        (["--parallel", "tp=3"], "a tensor group must fit in a node"),
        (["--parallel", "dp=3", "--global-batch", "8"], "does not divide over 3 replicas"),
        (["--parallel", "tp=4,dp=3"], "neither part of one node nor"),
    ],
)
def test_train_refuses_bad_input_in_one_line(capsys, extra, words):
    argv = ["train", "--system", "hls-gaudi2", "--workload", "gpt2-medium", "--seq-len", "128"]
    if "--global-batch" not in extra:
        argv += ["--global-batch", "48"]
    assert main([*argv, *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("accelsim: error:") and words in err and err.count("\n") == 1


def _record(**changes: Any) -> str:
    record = {
        "kind": "train_step",
        "system": "hls-gaudi2",
        "cards": 4,
        "model": {"family": "gpt", "layers": 2, "d_model": 256, "heads": 4, "seq_len": 128, "vocab": 1024},
        "global_batch": 16,
        "tp": 2,
        "pp": 1,
        "dp": 2,
        "ms": 10.0,
    }
    return json.dumps({**record, **changes})


def test_train_step_records_write_a_published_configuration_and_validate_predicts_it(tmp_path, capsys):
    from accelsim.validation import read_records

    example = read_records(Path(__file__).parent / "data" / "train_step_example.jsonl").records[0].spec
    assert (example.global_batch, example.micro_batch, example.zero, example.dtype) == (1024, 1, 1, "fp8")
    assert example.per_replica_batch == 128
    path = tmp_path / "steps.jsonl"
    rows = [
        _record(micro_batch=2, zero=1, sequence_parallel=True),
        _record(batch=8, global_batch=None),  # the older spelling: each replica's batch
        _record(system="dgx-a100", dtype="fp16"),  # another system, another chip: fine without --chip
    ]
    path.write_text("\n".join(rows))
    assert main(["validate", "--measurements", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    predicted = [r["predicted_ms"] for r in out["records"]]
    assert len(predicted) == 3 and not out["skipped"]
    options = TrainOptions(16, 2, 128, zero=1, sequence_parallel=True)
    data = {"name": "g", "model": json.loads(rows[0])["model"] | {"family": "gpt"}}
    data["model"].pop("seq_len")
    step = train_step(load_system("hls-gaudi2"), Layout(2, 1, 2), data, "<t>", options)
    assert predicted[0] == pytest.approx(step.step_ms, abs=1e-4)
    assert predicted[1] == pytest.approx(
        train_step(load_system("hls-gaudi2"), Layout(2, 1, 2), data, "<t>", TrainOptions(16, 8, 128)).step_ms, abs=1e-4
    )


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"batch": 8}, "give one of global_batch"),
        ({"global_batch": 15}, "does not divide over dp 2"),
        ({"micro_batch": 3}, "not a whole number of micro-batches of 3"),
        ({"zero": 4}, "zero"),
    ],
)
def test_a_bad_train_step_record_is_one_line(tmp_path, capsys, changes, words):
    path = tmp_path / "steps.jsonl"
    path.write_text(_record(**changes))
    assert main(["validate", "--measurements", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err


def test_when_every_record_is_skipped_the_error_gives_each_reason(tmp_path, capsys):
    path = tmp_path / "steps.jsonl"
    path.write_text("\n".join([_record(system="dgx-a100"), _record(system="no-such-system")]))
    assert main(["validate", "--chip", "gaudi2", "--measurements", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert (
        "line 1: measured on dgx-a100 (a100 cards), not on gaudi2" in err and "line 2: system 'no-such-system'" in err
    )
    path.write_text('{"kind": "gemm", "M": 64, "K": 64, "N": 64, "dtype": "bf16", "ms": 0.1}')
    assert main(["validate", "--measurements", str(path)]) == 2
    assert "give --chip" in capsys.readouterr().err


@pytest.mark.parametrize(
    "layout, options",
    [
        (Layout(2, 1, 4), TrainOptions(32, 2, 128)),
        (Layout(2, 1, 4), TrainOptions(32, 2, 128, zero=3)),
        (Layout(1, 2, 4), TrainOptions(32, 1, 128, zero=1)),
        (Layout(1, 1, 8), TrainOptions(16, 1, 128, recompute="full")),
    ],
)
def test_a_search_extrapolating_from_sampled_layers_gives_the_step_of_every_layer(layout, options):
    """A search simulates 2 and 4 of 12 alike layers and extrapolates: within 0.5% of simulating all 12 (equal to
    the rounding in these cases, as each layer adds the same cycles once the engines' work is periodic)."""
    data, source = workload_data("gpt2-medium", ["layers=12", "d_model=256", "heads=4", "vocab=1024"])
    system = load_system("hls-gaudi2")
    exact = train_step(system, layout, data, source, options)
    fast = train_step(system, layout, data, source, options, sample_layers=2)
    assert fast.step_ms == pytest.approx(exact.step_ms, rel=5e-3)
    assert fast.memory == exact.memory


def test_a_vit_trains_its_images_sequence(capsys):
    argv = ["train", "--system", "hls-gaudi2", "--workload", "gformer-vit", "--parallel", "dp=4", "--global-batch", "8"]
    assert main([*argv, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["micro_batches"] == 1 and out["seq_len"] is None and out["tokens_per_s"] > 0
    assert main([*argv, "--seq-len", "64"]) == 2
    assert "leave out --seq-len" in capsys.readouterr().err


def test_plot_draws_a_training_step(capsys, tmp_path):
    argv = ["plot", "--system", "hls-gaudi2", "--workload", "gpt2-medium", *(f"--set={s}" for s in SMALL)]
    argv += ["--parallel", "tp=2,pp=2", "--global-batch", "4", "--micro-batch", "1", "--seq-len", "128"]
    assert main([*argv, "--train", "--out", str(tmp_path)]) == 0
    written = capsys.readouterr().out.split()
    assert {Path(p).name for p in written} == {
        f"train_hls-gaudi2_2x2x1{part}.{ext}" for part in ("", "_pipeline") for ext in ("png", "svg")
    }
    assert all(Path(p).stat().st_size > 0 for p in written)
    assert main([*argv, "--out", str(tmp_path)]) == 2  # train's options without --train
    assert "drawn with --train" in capsys.readouterr().err


def test_a_pipeline_reports_stage_zeros_communication_and_its_breakdown_adds_up():
    step = _step(Layout(2, 2, 2), global_batch=16, micro_batch=2, zero=1)
    assert set(step.communication) == {"network", "data_network"}
    assert step.communication["network"].busy_ms > 0 and step.communication["data_network"].busy_ms > 0
    for c in step.communication.values():
        assert c.exposed_ms + c.hidden_ms == pytest.approx(c.busy_ms, abs=1e-3)
    parts = step.breakdown()
    assert sum(parts.values()) == pytest.approx(step.step_ms, abs=1e-3) and min(parts.values()) >= 0


def test_a_run_on_a_system_refuses_micro_batches_it_would_not_simulate(capsys):
    argv = ["run", "--system", "hls-gaudi2", "--workload", "gpt2-small", "--parallel", "tp=8", "--set", "layers=1"]
    assert main([*argv, "--set", "mode=training", "--set", "batch=4", "--set", "micro_batch=2"]) == 2
    assert "micro-batches without a pipeline are accelsim train's" in capsys.readouterr().err


@pytest.mark.parametrize("zero", [2, 3])
@pytest.mark.parametrize("layout", [Layout(2, 1, 4), Layout(1, 1, 4)])  # a whole node, and part of one
def test_zero_2_and_3_on_every_card_equal_the_one_card_shortcut(zero, layout):
    from accelsim.explicit import explicit_step

    system = load_system("hls-gaudi2")
    data = _run_dict(layout, zero=zero, batch=2)
    every = explicit_step(system, layout, data, "<t>")
    shortcut = place(system, layout, data, "<t>")
    assert {r.latency_cycles for r in every.cards} == {
        run_graph(shortcut.chip, lower(shortcut.workload)).latency_cycles
    }
