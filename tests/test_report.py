"""The terminal's text reports (accelsim.report), each read line by line from a small stand-in of what it reports:
a report only reads attributes, so a namespace holding figures chosen here is enough, and every rounding, plural and
optional line shows. (The commands that print them are tested end to end elsewhere; these pin the text.)"""

from types import SimpleNamespace as NS

import accelsim
from accelsim import TaskGraph, make_task
from accelsim.compare import compare
from accelsim.compiler import CompileReport
from accelsim.fit import FitResult
from accelsim.kernel_records import KernelPrediction
from accelsim.report import (
    WorkloadListing,
    _fmt,
    chips_report,
    communication_line,
    compare_report,
    compile_report,
    explicit_line,
    fit_report,
    generation_report,
    model_report,
    models_report,
    pipeline_compare_report,
    pipeline_report,
    run_report,
    search_report,
    system_report,
    table,
    train_report,
    validation_report,
    workloads_report,
)
from accelsim.system import load_system
from accelsim.training import Refusal, Search
from accelsim.workload import WorkloadSummary

from conftest import tiny_chip_dict


def test_a_table_left_aligns_the_first_column_and_right_aligns_the_rest():
    assert table(["name", "n"], [("a", 1234), ("bbb", 5)]).splitlines() == [
        "name      n",
        "----  -----",
        "a     1,234",
        "bbb       5",
    ]


def test_numbers_are_shown_as_people_read_them():
    shown = [_fmt(v) for v in (0.123456, 999.94, 1000.0, 1234567.8, -1234.5, 1234567, True, "x")]
    assert shown == ["0.1235", "999.9", "1,000", "1,234,568", "-1,234", "1,234,567", "True", "x"]


def test_the_compile_report_counts_tasks_fusion_and_the_bytes_saved():
    report = CompileReport(
        chip="gaudi2",
        tasks_before=1200,
        tasks_after=800,
        tasks_per_op_before={"gemm": 600, "add": 600},
        tasks_per_op_after={"gemm": 600, "dma": 200},
        fused_kernels=300,
        ops_fused_away=600,
        prefetches=200,
        tensors_on_chip=1500,
        hbm_bytes_before=4_000_000,
        hbm_bytes_after=3_000_000,
        flops_per_kind={"vector": 2_500_000_000, "matrix": 12_345_678_901},
        warnings=("one", "two"),
    )
    assert compile_report(report).splitlines() == [
        "chip gaudi2  tasks 1,200 -> 800  fused kernels 300 (600 ops folded in)  weight prefetches 200  "
        "tensors kept on chip 1,500",
        "HBM bytes 4,000,000 -> 3,000,000 (saved 1,000,000, 25.0%, if every tensor planned on chip stays there)",
        "",
        "op    tasks before  tasks after",
        "----  ------------  -----------",
        "add            600            0",
        "dma              0          200",
        "gemm           600          600",
        "",
        "engine kind  GFLOP",
        "-----------  -----",
        "matrix       12.35",
        "vector         2.5",
        "warning: one",
        "warning: two",
    ]


def test_a_graph_that_moves_no_bytes_saves_none_of_them():
    report = CompileReport("tiny", 1, 1, {"add": 1}, {"add": 1}, 0, 0, 0, 0, 0, 0, {}, ())
    assert compile_report(report).splitlines()[1] == (
        "HBM bytes 0 -> 0 (saved 0, 0.0%, if every tensor planned on chip stays there)"
    )


def _pipeline_step(step_ms, bubble):
    def passes(forward, backward, tail):
        return NS(forward=forward, backward=backward, tail=tail)

    return NS(
        placement=NS(chip=NS(cycles_to_us=lambda cycles: cycles / 2000)),  # 2 GHz
        stages=["first", "middle", "last"],
        times={
            "first": passes(1_000_000_000, 2_000_000_000, 0),
            "middle": passes(1_000_000_000, 2_000_000_000, 0),
            "last": passes(1_200_000_000, 2_500_000_000, 3_000_002_000),
        },
        run=NS(stages=3, micro_batches=8, bubble=bubble),
        step_ms=step_ms,
    )


def test_a_pipeline_report_gives_the_bubble_and_each_stages_passes_in_ms():
    # At 2 GHz a billion cycles are 500 ms.
    assert pipeline_report(_pipeline_step(12_345.6789, 0.2)).splitlines() == [
        "pipeline: 3 stages x 8 micro-batches (1F1B); step 12,345.679 ms per card, bubble 20.0%",
        "",
        "stage   holds  forward ms  backward ms  optimizer tail ms",
        "-----  ------  ----------  -----------  -----------------",
        "0       first     500.000    1,000.000              0.000",
        "1      middle     500.000    1,000.000              0.000",
        "2        last     600.000    1,250.000          1,500.001",
    ]


def test_a_pipeline_compared_under_two_schedulers_gives_each_step_and_bubble():
    steps = {"naive": _pipeline_step(1234.5, 0.25), "balanced": _pipeline_step(1000.0, 0.125)}
    assert pipeline_compare_report(steps).splitlines() == [
        "pipeline: 3 stages x 8 micro-batches (1F1B)",
        "",
        "scheduler    step ms  bubble",
        "---------  ---------  ------",
        "naive      1,234.500   25.0%",
        "balanced   1,000.000   12.5%",
    ]


COMMUNICATION = {
    "network": NS(busy_ms=10.0, exposed_ms=2.5, hidden_ms=7.5),
    "data_network": NS(busy_ms=1234.5, exposed_ms=0.0, hidden_ms=1.0),
}


def _train_step(pp, dtype="bf16", micro_batches=4, sequence_parallel=False, seq_len=1024, communication=None):
    options = NS(
        dtype=dtype,
        global_batch=32,
        micro_batch=2,
        seq_len=seq_len,
        zero=1,
        recompute="none",
        sequence_parallel=sequence_parallel,
    )
    memory = {
        "parameters_gb": 1.234,
        "gradients_gb": 2.345,
        "optimizer_gb": 3.456,
        "activations_gb": 4.567,
        "total_gb": 11.602,
    }
    return NS(
        options=options,
        layout=NS(tp=2, pp=pp, dp=4 // pp, cards=8),
        memory=NS(to_dict=lambda: memory),
        products_dtype=dtype,
        model="gpt2-medium",
        system="hls-gaudi2",
        micro_batches=micro_batches,
        step_ms=1234.5678,
        tokens_per_s=26543.7,
        mfu=0.4321,
        peak_tflops=432.0,
        bubble=0.125,
        micro_batch_ms=300.1234,
        last_ms=334.0,
        hbm_gb=96.0,
        communication=communication or {},
    )


def test_a_training_step_on_one_stage_gives_its_micro_batches_memory_and_communication():
    assert train_report(_train_step(1, communication=COMMUNICATION)).splitlines() == [
        "train gpt2-medium on hls-gaudi2: tp=2 pp=1 dp=4 (8 cards); global batch 32 = 4 micro-batches of 2 per "
        "replica; seq 1024; bf16; ZeRO-1; recompute none",
        "step 1,234.568 ms   26,544 tokens/s   MFU 43.2% (6 x parameters x tokens + attention 12 x layers x seq x "
        "heads x d_head per token, over 8 x 432.0 bf16 TFLOPS)",
        "micro-batch 300.123 ms (forward and backward, gradients accumulated); the last 334.000 ms (with the "
        "replicas' reduction and the update); pipeline bubble none (pp = 1)",
        "memory per card: parameters 1.23 GB, gradients 2.35 GB, optimizer 3.46 GB, activations 4.57 GB = 11.60 GB "
        "of 96.0 GB",
        "",
        "communication    busy ms  exposed ms  hidden ms",
        "-------------  ---------  ----------  ---------",
        "tensor group      10.000       2.500      7.500",
        "replicas       1,234.500       0.000      1.000",
    ]


def test_a_pipelined_fp8_step_gives_its_bubble_and_stage_zeros_communication():
    step = _train_step(
        2, dtype="fp8", micro_batches=1, sequence_parallel=True, seq_len=None, communication=COMMUNICATION
    )
    assert train_report(step).splitlines() == [
        "train gpt2-medium on hls-gaudi2: tp=2 pp=2 dp=2 (8 cards); global batch 32 = 1 micro-batch of 2 per "
        "replica; seq of the images; fp8 products, bf16 elsewhere; ZeRO-1; recompute none; sequence parallel",
        "step 1,234.568 ms   26,544 tokens/s   MFU 43.2% (6 x parameters x tokens + attention 12 x layers x seq x "
        "heads x d_head per token, over 8 x 432.0 fp8 TFLOPS)",
        "pipeline bubble 12.5%; stage 0's micro-batch 300.123 ms forward and backward, 334.000 ms with the "
        "optimizer's tail",
        "memory per card: parameters 1.23 GB, gradients 2.35 GB, optimizer 3.46 GB, activations 4.57 GB = 11.60 GB "
        "of 96.0 GB",
        "",
        "communication of stage 0's card (its passes' own overlap; waits on other stages are bubble):",
        "communication    busy ms  exposed ms  hidden ms",
        "-------------  ---------  ----------  ---------",
        "tensor group      10.000       2.500      7.500",
        "replicas       1,234.500       0.000      1.000",
    ]


def test_a_step_without_collectives_ends_with_its_memory():
    assert train_report(_train_step(2)).splitlines()[-1].startswith("memory per card: ")


def _candidate(tp, pp, dp, micro, step_ms, exposed):
    return NS(
        layout=NS(tp=tp, pp=pp, dp=dp),
        options=NS(micro_batch=micro),
        micro_batches=16 // (micro * dp),
        step_ms=step_ms,
        tokens_per_s=1e6 / step_ms,
        mfu=50 / step_ms,
        memory=NS(total=12.345e9 * tp),
        communication={"network": NS(exposed_ms=exposed), "data_network": NS(exposed_ms=0.25)},
        bubble=0.0 if pp == 1 else 0.2,
    )


RANKED = [_candidate(1, 1, 8, 1, 100.0, 1.0), _candidate(2, 1, 4, 2, 150.0, 2.5), _candidate(2, 2, 2, 1, 1234.5, 9.0)]
REFUSED = [
    Refusal(NS(tp=8, pp=1, dp=1), 1, "memory", "needs 120 GB of 96"),
    Refusal(NS(tp=4, pp=2, dp=1), 2, "layers", "3 layers on 2 stages"),
    Refusal(NS(tp=8, pp=1, dp=1), 2, "memory", "needs 140 GB of 96"),
]


def test_a_search_ranks_the_first_layouts_and_counts_each_refusal_with_its_first_example():
    assert search_report(Search(8, RANKED, REFUSED), 2).splitlines() == [
        "6 candidates on 8 cards: 3 ran, 3 refused",
        "",
        "rank          layout  micro  micro-batches  step ms  tokens/s    MFU  GB/card  exposed ms  bubble",
        "----  --------------  -----  -------------  -------  --------  -----  -------  ----------  ------",
        "1     tp=1,pp=1,dp=8      1              2    100.0    10,000  50.0%     12.3         1.2    0.0%",
        "2     tp=2,pp=1,dp=4      2              2    150.0     6,667  33.3%     24.7         2.8    0.0%",
        "",
        "refused:",
        "  2 by memory, e.g. tp=8,pp=1,dp=1 micro 1: needs 120 GB of 96",
        "  1 by layers, e.g. tp=4,pp=2,dp=1 micro 2: 3 layers on 2 stages",
    ]


def test_a_search_where_nothing_runs_says_so_and_one_where_all_run_lists_no_refusals():
    assert search_report(Search(8, [], REFUSED), 5).splitlines()[:3] == [
        "3 candidates on 8 cards: 0 ran, 3 refused",
        "",
        "no layout runs",
    ]
    assert search_report(Search(8, RANKED, []), 5).splitlines()[-1].startswith("3     tp=2,pp=2,dp=2 ")


def test_the_workloads_listing_gives_each_presets_shape_gflop_and_tasks():
    summary = WorkloadSummary(
        name="gpt2-small",
        family="gpt",
        layers=12,
        d_model=768,
        heads=12,
        d_head=64,
        d_ff=3072,
        seq_len=1024,
        batch=1,
        dtype="bf16",
        mode="inference",
        attention="fused",
        granularity="layer",
    )
    listing = WorkloadListing(summary, flops=290_600_000_000, bytes=123, tasks=456, description="GPT-2 small")
    assert workloads_report([listing]).splitlines() == [
        "workload    layers  d_model  heads    seq  batch  attention       mode  GFLOP  tasks",
        "----------  ------  -------  -----  -----  -----  ---------  ---------  -----  -----",
        "gpt2-small      12      768     12  1,024      1      fused  inference    291    456",
    ]
    assert listing.to_dict() == {
        **summary.to_dict(),
        "flops": 290_600_000_000,
        "bytes": 123,
        "tasks": 456,
        "description": "GPT-2 small",
    }


def test_a_model_shows_its_architecture_source_note_and_spec():
    gpt2 = NS(
        id="gpt2",
        summary="gpt, 12 layers",
        source="https://hf.co/gpt2",
        path="models/gpt2.json",
        note="tied embeddings",
        spec={"layers": 12, "d_model": 768},
    )
    assert model_report(gpt2).splitlines() == [
        "gpt2",
        "  gpt, 12 layers",
        "  source: https://hf.co/gpt2",
        "  note: tied embeddings",
        "  layers=12, d_model=768",
    ]
    odd = NS(id="odd", summary="not modelled: x", source="", path="models/odd.json", note="", spec=None)
    assert model_report(odd).splitlines() == ["odd", "  not modelled: x", "  source: models/odd.json"]
    assert models_report([gpt2, odd]).splitlines() == [
        "model     architecture",
        "-----  ---------------",
        "gpt2    gpt, 12 layers",
        "odd    not modelled: x",
    ]


def test_a_fit_prints_toml_lines_to_paste_with_where_to_paste_them():
    result = FitResult(
        chip="chips/gaudi2.toml",
        records=24,
        parameters={"a.b": 0.9, "c": 3},
        median_abs_error=0.0123,
        evaluations=57,
        system="systems/hls.toml",
        system_parameters={"scale_up.link_gbps": 25.0},
        kinds={"gemm bf16": 0.01, "collective": 0.002},
    )
    assert fit_report(result, ["k.jsonl", "g.jsonl"]).splitlines() == [
        "# fitted to 24 records of k.jsonl and g.jsonl: median |error| 1.2% (57 evaluations); paste into "
        "chips/gaudi2.toml",
        "a.b = 0.9",
        "c = 3",
        "# paste into systems/hls.toml",
        "scale_up.link_gbps = 25.0",
        "# median |error| per kind: gemm bf16 1.0%, collective 0.2%",
    ]
    alone = FitResult(chip="chips/gaudi2.toml", records=3, parameters={"a": 1}, median_abs_error=0.5, evaluations=2)
    assert fit_report(alone, ["k.jsonl"]).splitlines() == [
        "# fitted to 3 records of k.jsonl: median |error| 50.0% (2 evaluations); paste into chips/gaudi2.toml",
        "a = 1",
    ]


def test_an_explicit_run_sets_every_cards_step_against_the_shortcuts():
    assert explicit_line({"cards": 8, "step_ms": 1234.5678, "shortcut_step_ms": 1200.0}) == (
        "every card simulated (8 cards, one network): step 1,234.568 ms; one card standing for all: 1,200.000 ms"
    )


def _record(kind, measured_ms, predicted_ms, **keys):
    row = {"kind": kind, **keys, "measured_ms": measured_ms, "predicted_ms": predicted_ms}
    row["rel_error"] = measured_ms / predicted_ms - 1
    return NS(kind=kind, to_dict=lambda: row)


def _stats(records, median, p90):
    return NS(records=records, median_abs_error=median, p90_abs_error=p90)


def _validation(records, summary=None, concurrency=None, skipped=()):
    return NS(records=records, summary=summary or {}, concurrency=concurrency, skipped=list(skipped))


def _skipped(line, kind, reason):
    return NS(line=line, kind=kind, reason=reason)


def test_the_validation_report_names_each_layer_records_shape_and_flags_the_short_ones():
    records = [
        _record("gemm", 0.022, 0.02, M=512, K=768, N=768),
        _record("bmm", 0.1, 0.08, B=96, M=1024, K=64, N=1024),
        _record("attention", 1.0, 1.25, variant="softmax_unfused", B=8, H=12, S=1024, D=64),
        _record("vector", 0.06, 0.015, op="add", rows=8192, cols=768),
        _record("layer", 1.5, 1.5, variant="fused", B=8, S=1024, d_model=768),
    ]
    summary = {"gemm": _stats(1, 0.1, 0.1), "overall": _stats(4, 0.125, 0.5)}
    concurrency = NS(
        gemm_ms=1.414,
        softmax_ms=0.666,
        serial_ms=2.08,
        two_streams_ms=1.5,
        measured_serial_ms=2.644,
        measured_two_streams_ms=2.4249,
    )
    skipped = [
        _skipped(1, "device", "the GPU and its software, not a measurement"),
        _skipped(7, "done", "the end of the run, not a measurement"),
        _skipped(9, "done", "the end of the run, not a measurement"),
    ]
    assert validation_report(_validation(records, summary, concurrency, skipped)).splitlines() == [
        "kind                  what                      size  measured ms  predicted ms    error",
        "---------  ---------------  ------------------------  -----------  ------------  -------  -----------",
        "gemm           512x768x768                                 0.0220        0.0200   +10.0%  (< 0.05 ms)",
        "bmm        96x1024x64x1024                      B=96       0.1000        0.0800   +25.0%",
        "attention  softmax_unfused   B=8, H=12, S=1024, D=64       1.0000        1.2500   -20.0%",
        "vector                 add       rows=8192, cols=768       0.0600        0.0150  +300.0%",
        "layer                fused  B=8, S=1024, d_model=768       1.5000        1.5000    +0.0%",
        "",
        "|error| over records of at least 0.05 ms (kernels and layers) and every generation record",
        "kind     records  median  90th percentile",
        "-------  -------  ------  ---------------",
        "gemm           1   10.0%            10.0%",
        "overall        4   12.5%            50.0%",
        "",
        "concurrency: GEMM 1.41 ms + softmax 0.67 ms; in a row 2.08 ms, on two streams 1.50 ms predicted (measured "
        "2.64 and 2.42 ms)",
        "",
        "skipped 3 records, not predicted:",
        "  1 device record (line 1): the GPU and its software, not a measurement",
        "  2 done records (line 7 and more): the end of the run, not a measurement",
    ]


def test_a_validation_of_short_records_only_has_no_statistics_and_one_skip_is_one_record():
    skipped = [_skipped(1, "device", "the GPU and its software, not a measurement")]
    lines = validation_report(_validation([_record("gemm", 0.02, 0.02, M=8, K=8, N=8)], skipped=skipped))
    assert lines.splitlines()[-5:] == [
        "|error| over records of at least 0.05 ms (kernels and layers) and every generation record",
        "none: every record is shorter",
        "",
        "skipped 1 record, not predicted:",
        "  1 device record (line 1): the GPU and its software, not a measurement",
    ]


def _kernel(kind, params, measured, predicted, rates):
    return KernelPrediction(
        {"kind": "gemm" if "M" in params else "collective", "params": params},
        label=kind,
        measured_ms=measured,
        predicted_ms=predicted,
        measured_rate=rates[0],
        predicted_rate=rates[1],
        rel_error=measured / predicted - 1,
    )


def test_kernel_and_collective_records_give_what_ran_and_both_rates():
    kernels = [
        _kernel(
            "gemm fp8", {"M": 16384, "K": 8192, "N": 1280, "scaling_granularity": "rowwise"}, 0.5, 0.4, (687, 858.75)
        ),
        _kernel("gemm bf16", {"M": 64, "K": 64, "N": 64}, 0.01, 0.01, (395.44, 395.44)),
        _kernel(
            "collective, several nodes",
            {"op": "all_reduce", "ranks": 16, "nodes": 2, "bytes_per_rank": 32 * 2**20},
            0.3,
            0.4,
            (205.9, 154.4),
        ),
        _kernel("collective", {"op": "all_gather", "ranks": 8, "bytes_per_rank_input": 16 * 2**20}, 0.2, 0.2, (5, 5)),
        _kernel(
            "collective", {"op": "all_reduce", "ranks": 8, "nodes": 1, "bytes_per_rank": 2**30}, 8.0, 8.0, (2e3, 2e3)
        ),
    ]
    assert validation_report(_validation(kernels)).splitlines()[:7] == [
        "kind                                                 what     "
        "                 measured ms  predicted ms  measured rate  predicted rate   error",
        "-------------------------  ------------------------------  ------------------  "
        "-----------  ------------  -------------  --------------  ------",
        "gemm fp8                                  16384x8192x1280     "
        "        rowwise       0.5000        0.4000          687.0           858.8  +25.0%",
        "gemm bf16                                        64x64x64     "
        "                      0.0100        0.0100          395.4           395.4   +0.0%",
        "collective, several nodes  all_reduce 16 ranks on 2 nodes     "
        "32 MiB per rank       0.3000        0.4000          205.9           154.4  -25.0%",
        "collective                             all_gather 8 ranks     "
        "16 MiB per rank       0.2000        0.2000            5.0             5.0   +0.0%",
        "collective                             all_reduce 8 ranks  1,024 MiB per rank  "
        "     8.0000        8.0000        2,000.0         2,000.0   +0.0%",
    ]


def test_generation_records_give_tokens_per_second_measured_and_predicted():
    row = {
        "model": "EleutherAI/gpt-j-6b",
        "cards": 1,
        "dtype": "bf16",
        "batch": 1,
        "input_tokens": 8,
        "output_tokens": 100,
        "measured_tokens_per_s": 1143.56,
        "predicted_tokens_per_s": 149.54,
        "rel_error": 0.0413,
    }
    generation = NS(kind="llm_generate", to_dict=lambda: row)
    assert validation_report(_validation([generation], {"llm_generate": _stats(1, 0.0413, 0.0413)})).splitlines()[
        :3
    ] == [
        "model                cards  dtype  batch  in  out  measured tok/s  predicted tok/s  error",
        "-------------------  -----  -----  -----  --  ---  --------------  ---------------  -----",
        "EleutherAI/gpt-j-6b      1   bf16      1   8  100         1,143.6            149.5  +4.1%",
    ]


def _phase(ms, hbm, macs, busy, idle):
    return NS(
        latency_ms=ms,
        hbm_bandwidth_utilization=hbm,
        matrix_mac_utilization=macs,
        utilization={"matrix": busy, "vector": busy / 2},
        idle_ms={"matrix": idle, "vector": idle * 2},
    )


def _generation(cards, tpot_ms, attention="fused", experts=None, fits=True):
    return NS(
        model="gpt2-small",
        chip="gaudi2",
        cards=cards,
        batch=4,
        input_tokens=128,
        output_tokens=1 if tpot_ms is None else 64,
        dtype="bf16",
        attention=attention,
        experts_used=experts,
        ttft_ms=12.3456,
        tpot_ms=tpot_ms,
        latency_ms=1234.56,
        tokens_per_s=207.36,
        prefill=_phase(12.3456, 0.4567, 0.8912, 0.9, 1234.56),
        decode=_phase(1.5, 0.95, 0.05, 0.25, 3.0),
        memory=NS(weights_gb=0.3123, kv_cache_gb=0.0456, hbm_gb=96.0, fits=fits),
    )


TINY = accelsim.chip_from_dict(tiny_chip_dict(), "tiny.toml")
SMALL = TaskGraph(
    [make_task("g", "gemm", [64, 64, 64]), make_task("a", "add", [8000], deps=["g"]), make_task("b", "add", [16000])],
    name="small",
)


def test_a_generation_gives_its_headline_figures_each_phase_and_its_memory():
    assert generation_report(_generation(1, 19.0123)).splitlines() == [
        "gpt2-small on gaudi2: batch 4, 128 input and 64 output tokens, bf16",
        "  time to first token   12.35 ms",
        "  time per output token 19.012 ms",
        "  latency               1,234.6 ms",
        "  throughput            207.4 tokens/s",
        "",
        "phase       ms  HBM bw  matrix MACs  matrix busy  vector busy  matrix idle engine-ms  vector idle engine-ms",
        "-------  -----  ------  -----------  -----------  -----------  ---------------------  ---------------------",
        "prefill  12.35   45.7%        89.1%        90.0%        45.0%                1,234.6                2,469.1",
        "decode    1.50   95.0%         5.0%        25.0%        12.5%                    3.0                    6.0",
        "",
        "memory: weights 0.31 GB + KV cache 0.05 GB of 96.0 GB HBM (fits)",
    ]


def test_a_tensor_parallel_generation_of_one_token_names_its_options_and_memory_per_card():
    assert generation_report(_generation(8, None, attention="unfused", experts=2, fits=False)).splitlines() == [
        "gpt2-small on 8 x gaudi2 (tensor parallel): batch 4, 128 input and 1 output tokens, bf16, unfused "
        "attention, 2 experts read per layer",
        "  time to first token   12.35 ms",
        "  time per output token n/a (one output token: no decode step)",
        "  latency               1,234.6 ms",
        "  throughput            207.4 tokens/s",
        "",
        "phase       ms  HBM bw  matrix MACs  matrix busy  vector busy  matrix idle engine-ms  vector idle engine-ms",
        "-------  -----  ------  -----------  -----------  -----------  ---------------------  ---------------------",
        "prefill  12.35   45.7%        89.1%        90.0%        45.0%                1,234.6                2,469.1",
        "decode    1.50   95.0%         5.0%        25.0%        12.5%                    3.0                    6.0",
        "",
        "memory per card: weights 0.31 GB + KV cache 0.05 GB of 96.0 GB HBM (does not fit)",
    ]


def test_a_run_gives_its_latency_utilization_and_each_engine():
    # The tiny chip: a 64^3 GEMM on the 4x4 MME, then an add of 8,000 values on a tpc; another add alongside.
    assert run_report(accelsim.run(TINY, SMALL)).splitlines() == [
        "chip tiny  graph small  scheduler first-free  tasks 3",
        "latency 19,919 cycles = 19.919 us   utilization matrix 90.0%, vector 18.9%, dma 0.0%",
        "",
        "engine    kind  tasks    busy    idle  longest idle   util",
        "------  ------  -----  ------  ------  ------------  -----",
        "mme0    matrix      1  17,919   2,000         2,000  90.0%",
        "tpc0    vector      1   2,000  17,919        17,919  10.0%",
        "tpc1    vector      1   5,536  14,383        14,383  27.8%",
        "dma0       dma      0       0  19,919        19,919   0.0%",
    ]


def test_chips_give_their_clock_engines_peaks_and_memory():
    assert chips_report([TINY]).splitlines() == [
        "chip  GHz            engines  matrix TFLOPS  vector TFLOPS  HBM TB/s  SRAM MB",
        "----  ---  -----------------  -------------  -------------  --------  -------",
        "tiny    1  1xmme 2xtpc 1xdma      bf16 0.03      bf16 0.03     0.016        1",
    ]


def test_a_system_gives_its_nodes_fabrics_and_collective_overhead_then_its_row():
    assert system_report(load_system("hls-gaudi2")).splitlines() == [
        "hls-gaudi2: Intel Gaudi 2 server: 8 x Gaudi 2, all-to-all on 21 x 100 GbE RoCE per card, 3 x 100 "
        "GbE per card out",
        "1 node x 8 x gaudi2",
        "scale-up: all-to-all, 3 links of 12.5 GB/s per card pair, 2 us per message",
        "scale-out: switch, 3 ports of 12.5 GB/s per card, 5 us per message",
        "each collective: 38.1 us of set-up and synchronisation",
        "",
        "system        chip  cards    scale-up fabric  scale-up GB/s per card  scale-out GB/s per card  node "
        "bisection GB/s  bisection GB/s",
        "----------  ------  -----  -----------------  ----------------------  -----------------------  "
        "-------------------  --------------",
        "hls-gaudi2  gaudi2      8  all-to-all 3x12.5                   262.5                     37.5       "
        "           600             600",
    ]


def test_a_switched_system_names_its_links_to_the_switch_and_a_single_port():
    assert system_report(load_system("dgx-h100")).splitlines() == [
        "dgx-h100: NVIDIA DGX H100: 8 x H100 80GB, NVLink4 18 x 25 GB/s per GPU to NVSwitch, 8 x NDR 400 "
        "Gb/s InfiniBand",
        "1 node x 8 x h100",
        "scale-up: switch, 18 links of 25 GB/s per card to the switch, 1 us per message",
        "scale-out: switch, 1 port of 50 GB/s per card, 5 us per message",
        "",
        "system    chip  cards  scale-up fabric  scale-up GB/s per card  scale-out GB/s per card  node "
        "bisection GB/s  bisection GB/s",
        "--------  ----  -----  ---------------  ----------------------  -----------------------  "
        "-------------------  --------------",
        "dgx-h100  h100      8     switch 18x25                     450                       50             "
        "   1,800           1,800",
    ]


def test_a_comparison_gives_the_bound_and_each_schedulers_row_and_split():
    assert compare_report(compare(TINY, SMALL, ["naive", "balanced"])).splitlines() == [
        "chip tiny  workload small  tasks 3  lower bound 19,919 cycles = 0.020 ms (critical path 19,919, "
        "area 17,918, memory 7,536)",
        "",
        "scheduler  cycles     ms  speedup  util matrix  util vector  idle matrix (engine-ms)  idle vector "
        "(engine-ms)  vs bound",
        "---------  ------  -----  -------  -----------  -----------  -----------------------  "
        "-----------------------  --------",
        "naive      19,919  0.020    1.00x        90.0%        18.9%                      0.0                "
        "      0.0     +0.0%",
        "balanced   19,919  0.020    1.00x        90.0%        18.9%                      0.0                "
        "      0.0     +0.0%",
        "",
        "balanced: 0 of 0 dual-capable tasks on vector cores (fraction 0; closed form 0; chosen candidate f=0)",
    ]


def test_a_cards_communication_fits_one_line_naming_each_network():
    c = NS(
        network_utilization={"network": 0.25, "data_network": 0.125, "other": 0.5},
        step_ms=1234.5678,
        communication_ms=2.5,
        exposed_ms=1.0,
        hidden_ms=1.5,
    )
    assert communication_line("communication", c) == (
        "communication: step 1,234.568 ms per card; collectives 2.500 ms, 1.000 ms exposed and 1.500 ms hidden under "
        "computation; network busy: tensor group 25.0%, replicas 12.5%, other 50.0%"
    )


def test_a_system_of_several_nodes_one_link_and_no_description_says_so():
    spec = NS(
        description="",
        nodes=2,
        cards_per_node=4,
        scale_up=NS(topology="ring", links=1, link_gbps=50.0, latency_us=1.5),
        scale_out=None,
        collective_overhead_us=0.0,
    )
    system = NS(
        name="pair",
        spec=spec,
        chip=NS(name="tiny"),
        total_cards=8,
        scale_up_gbps_per_card=100.0,
        scale_out_gbps_per_card=0.0,
        node_bisection_gbps=200.0,
        bisection_gbps=0.0,
    )
    assert system_report(system).splitlines()[:3] == [
        "pair",
        "2 nodes x 4 x tiny",
        "scale-up: ring, 1 link of 50 GB/s per card pair, 1.5 us per message",
    ]
    two = NS(**{**vars(system), "spec": NS(**{**vars(spec), "scale_up": NS(**{**vars(spec.scale_up), "links": 2})})})
    assert system_report(two).splitlines()[2].startswith("scale-up: ring, 2 links of 50 GB/s")
    assert system_report(system).splitlines()[-1].split() == [
        "pair",
        "tiny",
        "8",
        "ring",
        "1x50",
        "100",
        "0",
        "200",
        "0",
    ]


def test_a_chip_with_two_dtypes_lists_both_peaks():
    d = tiny_chip_dict()
    d["engines"]["mme"]["macs_per_cycle"] = {"bf16": 16, "fp8": 32}
    d["engines"]["tpc"]["lanes"] = {"bf16": 8, "fp32": 4}
    row = chips_report([accelsim.chip_from_dict(d, "tiny.toml")]).splitlines()[2]
    assert "bf16 0.03, fp8 0.06" in row and "bf16 0.03, fp32 0.02" in row


def test_a_long_comparison_gives_its_bound_and_latency_in_milliseconds():
    # One add of 8e9 values on an 8-lane tpc: 1e9 cycles at 1 GHz, a second.
    long = TaskGraph([make_task("a", "add", [8 * 10**9], bytes_read=0, bytes_written=0)], name="long")
    lines = compare_report(compare(TINY, long, ["naive"])).splitlines()
    assert lines[0].startswith("chip tiny  workload long  tasks 1  lower bound 1,000,000,000 cycles = 1000.000 ms ")
    # tpc1 idles the whole second: 1,000 engine-ms.
    assert lines[4].split() == ["naive", "1,000,000,000", "1000.000", "1.00x", "50.0%", "1000.0", "+0.0%"]


def test_plurals_and_thresholds_turn_at_their_edges():
    """Two of a thing is plural, one is not; a record of exactly 0.05 ms counts in the statistics."""
    assert "= 2 micro-batches of 2" in train_report(_train_step(1, micro_batches=2))
    assert "memory per card: " in generation_report(_generation(2, 19.0))
    skipped = [_skipped(1, "device", "x"), _skipped(2, "done", "y")]
    at_edge = validation_report(_validation([_record("gemm", 0.05, 0.05, M=8, K=8, N=8)], skipped=skipped))
    assert at_edge.splitlines()[2].endswith("+0.0%") and "skipped 2 records, not predicted:" in at_edge
