"""plot draws, for what it ran, every figure a reader asks for, and names them so that none overwrites another.

The figures themselves are tests/test_plots.py's. Here each figure function is replaced by one that says what it
was given, and ``save`` by one that records the name it was asked for, so each case reads as the list of figures
a user gets, and runs in about a second.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from accelsim import plots
from accelsim.catalog import load_model
from accelsim.chip import load_chip
from accelsim.cli import main
from accelsim.compare import compare
from accelsim.generation import Generation, Serving, generate, phase_runs
from accelsim.lowering import lower
from accelsim.results import Results
from accelsim.workload import load_workload

ONE_LAYER = ["--workload", "gpt2-small", "--set", "layers=1", "--set", "seq_len=64"]


def said(value: object) -> object:
    """What a figure was drawn from, in a form a test can compare: a run by chip, scheduler and cycles."""
    if isinstance(value, Results):
        return (value.chip.name, value.scheduler, value.latency_cycles)
    if isinstance(value, Generation):
        return json.dumps(value.to_dict())
    if isinstance(value, list):
        return [said(v) for v in value]
    return value


@pytest.fixture
def drawn(monkeypatch):
    """The figures plot saved, in order, each as (its file's stem, the figure function, what it was drawn from)."""
    saved: list[tuple[str, str, object]] = []

    def figure(kind: str):
        return lambda *args, **kwargs: (kind, [said(a) for a in args], {k: said(v) for k, v in kwargs.items()})

    for kind in ("timeline", "utilization_over_time", "idle_chart", "comparison", "pipeline_chart", "phase_idle_chart"):
        monkeypatch.setattr(plots, kind, figure(kind))

    def save(fig, out_dir, stem):
        kind, args, kwargs = fig
        saved.append((stem, kind, args[0] if len(args) == 1 and not kwargs else (args, kwargs)))
        return [Path(out_dir) / f"{stem}.png"]

    monkeypatch.setattr(plots, "save", save)
    return saved


def plot(capsys, *argv: str) -> list[str]:
    """The files plot listed, checking that --json lists the same ones."""
    assert main(["plot", *argv, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert main(["plot", *argv]) == 0
    out, err = capsys.readouterr()
    assert (out, err) == ("".join(f"{f}\n" for f in listed), "")
    return listed


def runs(chip: str, schedulers: list[str]) -> list[tuple]:
    graph = lower(load_workload("gpt2-small", ["layers=1", "seq_len=64"]))
    return [said(r) for r in compare(load_chip(chip), graph, schedulers).results]


def test_a_run_on_two_chips_draws_each_schedulers_timelines_each_chips_idle_time_and_one_comparison(
    drawn, capsys, tmp_path
):
    files = plot(capsys, "--chip", "gaudi2,h100", *ONE_LAYER, "--scheduler", "naive,heft", "--out", str(tmp_path))
    gaudi2, h100 = runs("gaudi2", ["naive", "heft"]), runs("h100", ["naive", "heft"])
    expected = []
    for chip, (naive, heft) in (("gaudi2", gaudi2), ("h100", h100)):
        expected += [
            (f"timeline_{chip}_naive", "timeline", naive),
            (f"utilization_{chip}_naive", "utilization_over_time", naive),
            (f"timeline_{chip}_heft", "timeline", heft),
            (f"utilization_{chip}_heft", "utilization_over_time", heft),
            (f"idle_{chip}", "idle_chart", [naive, heft]),
        ]
    expected.append(("comparison", "comparison", gaudi2 + h100))
    assert drawn[: len(expected)] == expected  # the --json run's; the text run draws the same again
    assert drawn[len(expected) :] == expected
    assert files == [str(tmp_path / f"{stem}.png") for stem, _, _ in expected]


def test_one_chip_has_no_comparison_and_the_default_schedulers_are_naive_and_balanced(drawn, capsys, tmp_path):
    plot(capsys, "--chip", "gaudi2", *ONE_LAYER, "--out", str(tmp_path))
    naive, balanced = runs("gaudi2", ["naive", "balanced"])
    assert drawn[:5] == [
        ("timeline_gaudi2_naive", "timeline", naive),
        ("utilization_gaudi2_naive", "utilization_over_time", naive),
        ("timeline_gaudi2_balanced", "timeline", balanced),
        ("utilization_gaudi2_balanced", "utilization_over_time", balanced),
        ("idle_gaudi2", "idle_chart", [naive, balanced]),
    ]
    assert len(drawn) == 10


def test_chips_whose_names_clash_as_file_names_get_their_own_files(drawn, capsys, tmp_path):
    profile = Path(load_chip("gaudi2").source).read_text()
    names = ("my chip", "my/chip", "my$chip")
    for n, name in enumerate(names):
        (tmp_path / f"{n}.toml").write_text(profile.replace('name = "gaudi2"', f'name = "{name}"', 1))
    chips = ",".join(str(tmp_path / f"{n}.toml") for n in range(3)) + ",gaudi2"
    files = plot(capsys, "--chip", chips, *ONE_LAYER, "--scheduler", "naive", "--out", str(tmp_path / "out"))
    assert [Path(f).stem for f in files] == [
        "timeline_my_chip_naive",
        "utilization_my_chip_naive",
        "idle_my_chip",
        "timeline_my_chip_naive-2",
        "utilization_my_chip_naive-2",
        "idle_my_chip-2",
        "timeline_my_chip_naive-3",
        "utilization_my_chip_naive-3",
        "idle_my_chip-3",
        "timeline_gaudi2_naive",
        "utilization_gaudi2_naive",
        "idle_gaudi2",
        "comparison",
    ]
    assert [d[2][0] for d in drawn[:12:3]] == [*names, "gaudi2"]


def test_a_run_on_a_system_draws_its_cards_timelines_and_no_comparison(drawn, capsys, tmp_path):
    from accelsim import cli

    argv = ["--system", "hls-gaudi2", *ONE_LAYER, "--parallel", "tp=2", "--scheduler", "heft,naive"]
    plot(capsys, *argv, "--out", str(tmp_path))
    card, graph, _ = cli._target(cli._parser().parse_args(["plot", *argv, "--out", str(tmp_path)]))
    heft, naive = (said(r) for r in compare(card, graph, ["heft", "naive"]).results)
    name = card.name
    assert drawn[:5] == [
        (f"timeline_{name}_heft", "timeline", heft),
        (f"utilization_{name}_heft", "utilization_over_time", heft),
        (f"timeline_{name}_naive", "timeline", naive),
        (f"utilization_{name}_naive", "utilization_over_time", naive),
        (f"idle_{name}", "idle_chart", [heft, naive]),
    ]
    assert len(drawn) == 10


def test_a_pipeline_draws_one_chart_of_its_stages_under_the_first_scheduler(drawn, capsys, tmp_path):
    from accelsim.parallel import Layout
    from accelsim.system import load_system
    from accelsim.system_run import pipeline_step
    from accelsim.workload import workload_data

    argv = ["--system", "hls-gaudi2", *ONE_LAYER, "--set", "layers=2", "--set", "mode=training"]
    argv += ["--parallel", "tp=2,pp=2", "--scheduler", "heft,naive"]
    files = plot(capsys, *argv, "--out", str(tmp_path))
    data, source = workload_data("gpt2-small", ["layers=2", "seq_len=64", "mode=training"])
    step = pipeline_step(load_system("hls-gaudi2"), Layout(tp=2, pp=2), data, source, "heft", None)
    assert files == [str(tmp_path / "pipeline_hls-gaudi2.png")]
    ((stem, kind, (args, kwargs)),) = drawn[:1]
    assert (stem, kind, kwargs) == ("pipeline_hls-gaudi2", "pipeline_chart", {})
    assert args == [step.run, step.placement.workload.name]


GENERATION = ["--model", "Salesforce/codegen2-1B", "--batch", "2", "--input-tokens", "8", "--output-tokens", "3"]


@pytest.mark.parametrize(
    ("chips", "extra", "precision", "serving"),
    [
        (["gaudi2", "h100"], [], "bf16", Serving()),
        (["gaudi2"], ["--precision", "fp8", "--attention", "eager"], "fp8", Serving(attention="eager")),
    ],
)
def test_a_generation_draws_each_chips_prefill_and_last_decode_step_and_idle_time_per_phase(
    chips, extra, precision, serving, drawn, capsys, tmp_path
):
    argv = ["--chip", ",".join(chips), *GENERATION, "--scheduler", "heft,naive", *extra, "--out", str(tmp_path)]
    files = plot(capsys, *argv)
    model = load_model("Salesforce/codegen2-1B")
    expected = []
    for name in chips:
        chip = load_chip(name)
        g = generate(chip, model, 2, 8, 3, precision, "heft", serving=serving)
        prefill, decode = phase_runs(chip, model, 2, 8, 3, precision, "heft", serving=serving)
        stem = f"{name}_Salesforce_codegen2-1B"
        expected += [
            (f"timeline_prefill_{stem}", "timeline", said(prefill)),
            (f"timeline_decode_{stem}", "timeline", said(decode)),
            (f"idle_phases_{stem}", "phase_idle_chart", said(g)),
        ]
    assert drawn == expected + expected
    assert files == [str(tmp_path / f"{stem}.png") for stem, _, _ in expected]
