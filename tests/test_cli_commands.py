"""Each command prints what it ran: its report, or with --json the same figures as JSON (indented where a person
reads a listing), and nothing else.

The reports' own lines are tests/test_report.py's; these check that a command hands each report what it ran, on
inputs small enough (one layer, two tokens, a few records) that each runs in about a second.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from pathlib import Path

import pytest

from accelsim import report
from accelsim.analytic import analytic_counts
from accelsim.catalog import load_model
from accelsim.chip import load_chip
from accelsim.cli import main
from accelsim.compiler import compile_graph, compiler_warnings
from accelsim.generation import Serving, generate
from accelsim.lowering import lower
from accelsim.registry import SCHEDULERS, scheduler_names
from accelsim.resources import shipped_names
from accelsim.system import load_system
from accelsim.workload import load_workload, workload_data

ROOT = Path(__file__).parent.parent
ONE_LAYER = ["--workload", "gpt2-small", "--set", "layers=1", "--set", "seq_len=64"]


def cli(capsys, *argv: str) -> tuple[str, str]:
    """stdout and stderr of a command that succeeded."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, err
    return out, err


def test_chips_list_and_show_their_headline_figures(capsys):
    chips = [load_chip(n) for n in shipped_names("chips")]
    assert cli(capsys, "chips") == (report.chips_report(chips) + "\n", "")
    assert cli(capsys, "chips", "--json") == (json.dumps([asdict(c.headline()) for c in chips], indent=2) + "\n", "")
    gaudi2 = load_chip("gaudi2")
    assert cli(capsys, "chips", "show", "gaudi2") == (report.chips_report([gaudi2]) + "\n", "")
    assert cli(capsys, "chips", "gaudi2", "--json") == (json.dumps(asdict(gaudi2.headline()), indent=2) + "\n", "")


def test_systems_list_and_show_their_cards_and_links(capsys):
    systems = [load_system(n) for n in shipped_names("systems")]
    assert cli(capsys, "systems") == (report.systems_report(systems) + "\n", "")
    listed = json.dumps([asdict(s.summary()) for s in systems], indent=2) + "\n"
    assert cli(capsys, "systems", "--json") == (listed, "")
    hls = load_system("hls-gaudi2")
    assert cli(capsys, "systems", "show", "hls-gaudi2") == (report.system_report(hls) + "\n", "")
    assert cli(capsys, "systems", "hls-gaudi2", "--json") == (json.dumps(asdict(hls.summary()), indent=2) + "\n", "")


def test_models_list_and_show_the_catalog(capsys):
    gpt2 = load_model("gpt2-xl")
    assert cli(capsys, "models", "show", "gpt2-xl") == (report.model_report(gpt2) + "\n", "")
    assert cli(capsys, "models", "gpt2-xl", "--json") == (json.dumps(gpt2.to_dict(), indent=2) + "\n", "")
    listed, _ = cli(capsys, "models", "--json")
    assert listed.startswith("[\n  {") and "gpt2-xl" in [m["id"] for m in json.loads(listed)]
    text, _ = cli(capsys, "models")
    assert text.count("\n") > len(json.loads(listed))  # a header and a row per model


def test_schedulers_lists_the_registered_names_and_with_json_their_descriptions(capsys):
    assert cli(capsys, "schedulers") == ("\n".join(scheduler_names()) + "\n", "")
    described = [{"name": n, "description": SCHEDULERS[n].description} for n in scheduler_names()]
    assert cli(capsys, "schedulers", "--json") == (json.dumps(described, indent=2) + "\n", "")


def test_compile_shows_what_the_chips_compiler_made_of_the_workload(capsys):
    compiled = compile_graph(lower(load_workload("gpt2-small", ["layers=1", "seq_len=64"])), load_chip("gaudi2"))
    assert cli(capsys, "compile", "--chip", "gaudi2", *ONE_LAYER) == (report.compile_report(compiled.report) + "\n", "")
    out, _ = cli(capsys, "compile", "--chip", "gaudi2", *ONE_LAYER, "--json")
    assert json.loads(out) == json.loads(json.dumps(compiled.report.to_dict()))


def test_workloads_lists_every_shipped_preset_with_its_counts(capsys):
    text, _ = cli(capsys, "workloads")
    listed, _ = cli(capsys, "workloads", "--json")
    rows = json.loads(listed)
    assert listed.startswith("[\n  {") and len(rows) == len(shipped_names("workloads"))
    small = load_workload("gpt2-small")
    (row,) = [r for r in rows if r["name"] == "gpt2-small"]
    assert row["tasks"] == len(lower(small)) and row["description"] == small.spec.description
    assert [row["flops"], row["bytes"]] == list(analytic_counts(small))
    assert all(r["name"] in text for r in rows)


def test_a_run_whose_cut_is_the_users_warns_on_stderr_once_per_warning(capsys):
    argv = ["run", "--chip", "gaudi2", *ONE_LAYER, "--set", "granularity=tile"]
    graph = compile_graph(
        lower(load_workload("gpt2-small", ["layers=1", "seq_len=64", "granularity=tile"])), load_chip("gaudi2")
    )
    warnings = compiler_warnings(graph.graph)
    assert warnings
    _, err = cli(capsys, *argv)
    assert err == "".join(f"accelsim: warning: {w}\n" for w in warnings)


GENERATE = [
    "--chip",
    "gaudi2",
    "--model",
    "Qwen/Qwen2.5-7B",
    "--batch",
    "2",
    "--input-tokens",
    "8",
    "--output-tokens",
    "2",
]


@pytest.mark.parametrize("attention", ["fused", "eager"])
def test_generate_reports_the_generation_its_serving_options_describe(attention, capsys):
    g = generate(
        load_chip("gaudi2"), load_model("Qwen/Qwen2.5-7B"), 2, 8, 2, "bf16", "first-free", serving=Serving(attention)
    )
    assert cli(capsys, "generate", *GENERATE, "--attention", attention) == (report.generation_report(g) + "\n", "")
    out, _ = cli(capsys, "generate", *GENERATE, "--attention", attention, "--json")
    assert json.loads(out) == json.loads(json.dumps(g.to_dict()))


def test_generate_takes_the_experts_a_moe_layer_reads(capsys):
    def tokens_per_s(*extra: str) -> float:
        argv = ["generate", "--chip", "gaudi2", "--model", "Qwen/Qwen1.5-MoE-A2.7B", "--batch", "1"]
        out, _ = cli(capsys, *argv, "--input-tokens", "8", "--output-tokens", "2", "--json", *extra)
        return float(json.loads(out)["tokens_per_s"])

    assert tokens_per_s("--experts-used", "60") < tokens_per_s()  # all 60 experts read, not the 4 routed


def test_plot_of_a_generation_writes_both_phases_timelines_and_their_idle_time(capsys, tmp_path):
    small = ["--chip", "gaudi2", "--model", "Salesforce/codegen2-1B", "--batch", "1", "--input-tokens", "8"]
    out, _ = cli(capsys, "plot", *small, "--output-tokens", "2", "--out", str(tmp_path), "--json")
    stem = "gaudi2_Salesforce_codegen2-1B"
    names = [
        f"{kind}_{stem}.{ext}"
        for kind in ("timeline_prefill", "timeline_decode", "idle_phases")
        for ext in ("png", "svg")
    ]
    assert json.loads(out) == [str(tmp_path / n) for n in names]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)


def test_run_explicit_simulates_every_card_against_the_one_card_shortcut(capsys):
    argv = ["run", "--system", "hls-gaudi2", *ONE_LAYER, "--set", "mode=training", "--parallel", "tp=2,dp=2"]
    argv += ["--explicit", "--scheduler", "heft"]  # not the default: its step differs here
    summary = json.loads(cli(capsys, *argv, "--json")[0])
    assert summary["cards"] == 4 and len(summary["per_card_step_ms"]) == 4
    assert summary["step_ms"] == max(summary["per_card_step_ms"]) > 0
    shortcut = json.loads(cli(capsys, *[a for a in argv if a != "--explicit"], "--json")[0])
    ms = shortcut["latency_cycles"] * load_chip("gaudi2").cycles_to_us(1) / 1e3
    assert summary["shortcut_step_ms"] == round(ms, 4)
    assert cli(capsys, *argv) == (report.explicit_line(summary) + "\n", "")


def test_compare_on_a_system_adds_each_schedulers_communication(capsys):
    argv = ["compare", "--system", "hls-gaudi2", *ONE_LAYER, "--parallel", "tp=2", "--scheduler", "naive,heft"]
    data = json.loads(cli(capsys, *argv, "--json")[0])
    assert [r["scheduler"] for r in data["results"]] == ["naive", "heft"]
    assert sorted(data["communication"]) == ["heft", "naive"]
    from accelsim import cli as command
    from accelsim.compare import compare
    from accelsim.system_run import communication

    card, graph, _ = command._target(command._parser().parse_args(argv))
    result = compare(card, graph, ["naive", "heft"])
    lines = [report.communication_line(r.scheduler, communication(r)) for r in result.results]
    assert cli(capsys, *argv) == ("\n".join([report.compare_report(result), *lines]) + "\n", "")


def test_compare_of_a_pipeline_gives_each_schedulers_step_and_bubble(capsys):
    argv = ["compare", "--system", "hls-gaudi2", *ONE_LAYER, "--set", "layers=2", "--set", "mode=training"]
    argv += ["--parallel", "tp=2,pp=2", "--scheduler", "naive,heft"]
    steps = json.loads(cli(capsys, *argv, "--json")[0])
    assert sorted(steps) == ["heft", "naive"]
    assert all(set(s) == {"step_ms", "bubble"} and s["step_ms"] > 0 and 0 <= s["bubble"] < 1 for s in steps.values())
    text, _ = cli(capsys, *argv)
    assert all(name in text for name in steps)


def test_a_sweep_runs_its_points_once_and_says_so(capsys, tmp_path):
    out = tmp_path / "sweep.csv"
    argv = ["sweep", "--chip", "gaudi2", "--workload", "gpt2-small", "--set", "workload.layers=1"]
    argv += ["--set", "chip.clock_ghz=1,2", "--out", str(out), "--quiet"]
    text, _ = cli(capsys, *argv)
    assert re.fullmatch(rf"2 of 2 points run \(0 already in {re.escape(str(out))}\), 0 failed, \d+\.\d s\n", text)
    again = json.loads(cli(capsys, *argv, "--json")[0])
    assert (again["ran"], again["skipped"], again["failed"], again["units"]) == (0, 2, 0, 2)
    assert len(again["rows"]) == 4  # a row per point and scheduler (naive and balanced unless --scheduler)
    plots = tmp_path / "plots"
    files = json.loads(cli(capsys, "sweep-plot", str(out), "--out", str(plots), "--json")[0])
    assert files and all(Path(f).parent == plots and Path(f).exists() for f in files)
    assert cli(capsys, "sweep-plot", str(out), "--out", str(plots)) == ("\n".join(files) + "\n", "")


def test_a_sweep_whose_points_fail_exits_1_naming_the_rows(capsys, tmp_path):
    out = tmp_path / "sweep.csv"
    argv = ["sweep", "--chip", "gaudi2", "--workload", "gpt2-small", "--set", "workload.layers=1,400000"]
    argv += ["--out", str(out), "--quiet"]  # 400,000 layers: more tasks than fit, refused as that point runs
    code = main(argv)
    text, err = capsys.readouterr()
    assert code == 1 and text.startswith("2 of 2 points run") and ", 1 failed," in text
    assert err == f"accelsim: error: 1 of 2 points failed; their rows in {out} give the error\n"


@pytest.fixture
def h100_records(tmp_path):
    """Twenty of the shared H100 latencies: enough for a GPU fit (8 parameters), cheap to validate."""
    path = tmp_path / "h100.jsonl"
    path.write_text("".join((ROOT / "tests" / "data" / "h100.jsonl").read_text().splitlines(keepends=True)[:20]))
    return str(path)


def test_validate_reports_each_records_error_and_warns_on_stderr(capsys, h100_records):
    from accelsim.validation import read_records, validate

    result = validate(load_chip("gaudi2"), read_records(h100_records))
    assert result.warnings  # gaudi2 against an H100's records
    warned = "".join(f"accelsim: warning: {w}\n" for w in result.warnings)
    argv = ["validate", "--chip", "gaudi2", "--measurements", h100_records]
    assert cli(capsys, *argv) == (report.validation_report(result) + "\n", warned)
    out, err = cli(capsys, *argv, "--json")
    assert (json.loads(out), err) == (json.loads(json.dumps(result.to_dict())), warned)


def test_validate_without_a_chip_predicts_a_training_step_on_the_system_its_record_names(capsys):
    from accelsim.validation import read_records, validate

    path = str(ROOT / "tests" / "data" / "train_step_example.jsonl")
    result = validate(None, read_records(path))
    assert cli(capsys, "validate", "--measurements", path) == (report.validation_report(result) + "\n", "")


def test_fit_reports_the_fitted_parameters_of_the_file_it_read(capsys, h100_records):
    from accelsim.fit import fit
    from accelsim.validation import read_records

    result = fit("h100", read_records(h100_records))
    argv = ["fit", "--chip", "h100", "--measurements", h100_records]
    assert cli(capsys, *argv) == (report.fit_report(result, [h100_records]) + "\n", "")
    out, _ = cli(capsys, *argv, "--json")
    assert json.loads(out) == json.loads(json.dumps(result.to_dict()))


PIPELINE = [
    "--system",
    "hls-gaudi2",
    *ONE_LAYER,
    "--set",
    "layers=2",
    "--set",
    "mode=training",
    "--parallel",
    "tp=2,pp=2",
]


def test_run_of_a_pipeline_reports_its_step_bubble_and_stages(capsys):
    from accelsim.parallel import Layout
    from accelsim.system_run import pipeline_step
    from accelsim.workload import workload_data

    data, source = workload_data("gpt2-small", ["layers=2", "seq_len=64", "mode=training"])
    step = pipeline_step(load_system("hls-gaudi2"), Layout(tp=2, pp=2), data, source, "first-free", None)
    assert cli(capsys, "run", *PIPELINE) == (report.pipeline_report(step) + "\n", "")
    out = json.loads(cli(capsys, "run", *PIPELINE, "--json")[0])
    assert out == {
        "step_ms": step.step_ms,
        "bubble": round(step.run.bubble, 4),
        "stages": list(step.stages),
        "micro_batches": step.run.micro_batches,
        "stage_cycles": {k: asdict(t) for k, t in step.times.items()},
    }
    steps = json.loads(cli(capsys, "compare", *PIPELINE, "--scheduler", "first-free", "--json")[0])
    assert steps == {"first-free": {"step_ms": step.step_ms, "bubble": round(step.run.bubble, 4)}}


def test_run_on_a_system_adds_the_cards_communication_to_its_report(capsys):
    from accelsim import cli as command
    from accelsim import run
    from accelsim.system_run import communication

    argv = ["run", "--system", "hls-gaudi2", *ONE_LAYER, "--parallel", "tp=2"]
    chip, graph, on_system = command._target(command._parser().parse_args(argv))
    results = run(chip, graph, "first-free")
    comms = communication(results)
    assert on_system and comms.to_dict()
    text, _ = cli(capsys, *argv)
    assert text == report.run_report(results) + "\n\n" + report.communication_line("communication", comms) + "\n"
    out = json.loads(cli(capsys, *argv, "--json")[0])
    assert out["communication"] == json.loads(json.dumps(comms.to_dict()))
    assert out["latency_cycles"] == results.latency_cycles
    explicit = json.loads(cli(capsys, *argv, "--explicit", "--json")[0])  # the shortcut is this run
    assert explicit["shortcut_step_ms"] == round(results.latency_cycles * chip.cycles_to_us(1) / 1e3, 4)
    assert explicit["step_ms"] == round(explicit["step_ms"], 4) > 0


def test_compare_on_a_chip_prints_the_comparison_and_with_json_its_figures(capsys):
    from accelsim.compare import compare

    graph = lower(load_workload("gpt2-small", ["layers=1", "seq_len=64"]))
    result = compare(load_chip("gaudi2"), graph, ["naive", "heft"])
    argv = ["compare", "--chip", "gaudi2", *ONE_LAYER, "--scheduler", "naive,heft"]
    assert cli(capsys, *argv) == (report.compare_report(result) + "\n", "")
    assert json.loads(cli(capsys, *argv, "--json")[0]) == json.loads(json.dumps(result.to_dict()))


def test_a_sweep_hands_its_points_and_how_to_run_them_to_the_sweeper(monkeypatch, capsys, tmp_path):
    from accelsim import sweep

    calls = []

    def run_sweep(units, out, workers=None, dask=None, progress=True):
        calls.append((units, out, workers, dask, progress))
        return sweep.SweepStats(units=len(units), skipped=0, ran=len(units), failed=0, seconds=0.25)

    monkeypatch.setattr(sweep, "run_sweep", run_sweep)
    out = tmp_path / "sweep.csv"
    argv = ["sweep", "--chip", "gaudi2", "--workload", "gpt2-small,vit-b16", "--set", "workload.layers=1,2"]
    plugin = str(ROOT / "examples" / "critical_first.py")
    argv += ["--set", "chip.clock_ghz=1,2", "--scheduler", "heft,critical-first", "--out", str(out), "--plugin", plugin]
    axes = [sweep.parse_axis("workload.layers=1,2"), sweep.parse_axis("chip.clock_ghz=1,2")]
    units = sweep.plan("gaudi2", axes, ["gpt2-small", "vit-b16"], ["heft", "critical-first"], [plugin])
    assert all(u.plugins == (plugin,) and u.schedulers == ("heft", "critical-first") for u in units)
    assert len(units) == 8
    assert cli(capsys, *argv, "--workers", "3") == (
        "8 of 8 points run (0 already in " + str(out) + "), 0 failed, 0.2 s\n",
        "",
    )
    cli(capsys, *argv, "--dask", "tcp://10.0.0.1:8786", "--quiet")
    assert calls == [(units, out, 3, None, True), (units, out, None, "tcp://10.0.0.1:8786", False)]


def test_a_sweeps_json_gives_its_counts_and_the_files_rows(capsys, tmp_path):
    from accelsim.sweep_plot import file_rows

    out = tmp_path / "sweep.parquet"
    argv = ["sweep", "--chip", "gaudi2", "--workload", "gpt2-small", "--set", "workload.layers=1"]
    argv += ["--set", "chip.clock_ghz=1,2", "--scheduler", "heft", "--out", str(out), "--quiet", "--json"]
    data = json.loads(cli(capsys, *argv, "--workers", "1")[0])
    assert set(data) == {"units", "skipped", "ran", "failed", "seconds", "rows"}
    assert (data["units"], data["skipped"], data["ran"], data["failed"]) == (2, 0, 2, 0)
    assert data["rows"] == json.loads(json.dumps(file_rows(out))) and len(data["rows"]) == 2
    assert {r["scheduler"] for r in data["rows"]} == {"heft"}


def test_fit_of_a_gaudi_profile_reads_its_generation_and_kernel_files_together(capsys, tmp_path):
    from accelsim.fit_generation import fit_generation
    from accelsim.validation import read_records

    generation, kernels = tmp_path / "generation.jsonl", tmp_path / "kernels.jsonl"
    generation.write_text((ROOT / "tests" / "data" / "gaudi2_generate.jsonl").read_text().splitlines()[0] + "\n")
    gemms = [x for x in (ROOT / "tests" / "data" / "gaudi_kernels.jsonl").read_text().splitlines() if '"gemm"' in x]
    kernels.write_text("\n".join(gemms[:3]) + "\n")
    paths = [str(generation), str(kernels)]
    result = fit_generation("gaudi2", [read_records(p) for p in paths])
    out, _ = cli(capsys, "fit", "--chip", "gaudi2", "--measurements", *paths, "--json")
    assert json.loads(out) == json.loads(json.dumps(result.to_dict()))
    assert cli(capsys, "fit", "--chip", "gaudi2", "--measurements", *paths) == (
        report.fit_report(result, paths) + "\n",
        "",
    )


def test_a_system_run_without_parallel_lays_the_workload_over_one_nodes_tensor_group(capsys):
    from accelsim import cli as command

    system = load_system("hls-gaudi2")
    default = ["run", "--system", "hls-gaudi2", *ONE_LAYER, "--set", "heads=16"]
    given = [*default, "--parallel", f"tp={system.spec.cards_per_node}"]
    assert cli(capsys, *default, "--json") == cli(capsys, *given, "--json")
    args = command._parser().parse_args(default)
    _, layout, data, source = command._on_system(args)
    assert (layout.tp, layout.pp, layout.dp) == (system.spec.cards_per_node, 1, 1)
    assert (data["model"]["layers"], data["model"]["heads"], data["run"]["seq_len"]) == (1, 16, 64)
    assert source == workload_data("gpt2-small")[1]  # the shipped file, wherever the package is installed


def test_a_catalog_model_runs_as_a_workload_with_its_overrides(capsys):
    from accelsim import run
    from accelsim.catalog import model_workload

    results = run(load_chip("gaudi2"), lower(model_workload("gpt2-xl", ["layers=1", "seq_len=32"])), "first-free")
    argv = ["run", "--chip", "gaudi2", "--model", "gpt2-xl", "--set", "layers=1", "--set", "workload.seq_len=32"]
    assert cli(capsys, *argv) == (report.run_report(results) + "\n", "")


def test_a_plugin_file_adds_its_scheduler_to_the_command(capsys):
    from accelsim import run
    from accelsim.registry import load_plugin

    plugin = str(ROOT / "examples" / "critical_first.py")
    argv = ["run", "--chip", "gaudi2", *ONE_LAYER, "--scheduler", "critical-first", "--plugin", plugin]
    text, _ = cli(capsys, *argv)
    load_plugin(plugin)
    results = run(load_chip("gaudi2"), lower(load_workload("gpt2-small", ["layers=1", "seq_len=64"])), "critical-first")
    assert text == report.run_report(results) + "\n"
