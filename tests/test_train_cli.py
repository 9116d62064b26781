"""``accelsim train`` and ``accelsim plot --train``: what the command line sets reaches the step, the report and
JSON are that step's, the search ranks what it says, and every refusal the command makes is one whole line.

The step itself is tests/test_training.py's; these run a two-layer model on a few cards, about a second each.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from accelsim import plots, report
from accelsim.catalog import model_workload_data
from accelsim.cli import main
from accelsim.parallel import Layout
from accelsim.system import load_system
from accelsim.train_cli import search_dict
from accelsim.training import TrainOptions, search, train_step
from accelsim.workload import workload_data

ROOT = Path(__file__).parent.parent
SMALL = ["layers=2", "d_model=256", "heads=4", "vocab=1024"]
MODEL = ["--system", "hls-gaudi2", "--workload", "gpt2-medium", *(f"--set={s}" for s in SMALL)]


def cli(capsys, *argv: str) -> tuple[str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, err
    return out, err


def step_of(layout: Layout, options: TrainOptions, scheduler: str = "first-free", data=None):
    data, source = data or workload_data("gpt2-medium", SMALL)
    return train_step(load_system("hls-gaudi2"), layout, data, source, options, scheduler)


@pytest.mark.parametrize(
    ("extra", "layout", "options", "scheduler"),
    [
        (  # one micro-batch per replica unless --micro-batch says otherwise; bf16, no ZeRO, no recomputation
            ["--parallel", "tp=2,dp=2", "--global-batch", "8", "--seq-len", "128"],
            Layout(2, 1, 2),
            TrainOptions(8, 4, 128),
            "first-free",
        ),
        (
            ["--parallel", " tp=2 , dp=2 ", "--global-batch", "8", "--micro-batch", "2", "--seq-len", "64"]
            + [
                "--precision",
                "fp8",
                "--zero",
                "1",
                "--recompute",
                "full",
                "--sequence-parallel",
                "--scheduler",
                "heft",
            ],
            Layout(2, 1, 2),
            TrainOptions(8, 2, 64, "fp8", 1, "full", True),
            "heft",
        ),
        (
            ["--parallel", "pp=2", "--global-batch", "4", "--micro-batch", "1", "--seq-len", "64"]
            + ["--zero", "1", "--recompute", "selective"],
            Layout(1, 2, 1),
            TrainOptions(4, 1, 64, zero=1, recompute="selective"),
            "first-free",
        ),
    ],
)
def test_train_reports_the_step_its_options_describe(extra, layout, options, scheduler, capsys):
    step = step_of(layout, options, scheduler)
    assert cli(capsys, "train", *MODEL, *extra) == (report.train_report(step) + "\n", "")
    out, _ = cli(capsys, "train", *MODEL, *extra, "--json")
    assert json.loads(out) == json.loads(json.dumps(step.to_dict()))


def test_train_takes_a_workloads_model_and_attention_fields_but_no_run_settings(capsys):
    sets = ["model.layers=2", "d_model=256", "heads=4", "vocab=1024", "attention.variant=softmax"]
    argv = ["train", "--system", "hls-gaudi2", "--workload", "gpt2-medium", *(f"--set={s}" for s in sets)]
    out, _ = cli(capsys, *argv, "--parallel", "dp=2", "--global-batch", "4", "--seq-len", "64", "--json")
    step = step_of(Layout(1, 1, 2), TrainOptions(4, 2, 64), data=workload_data("gpt2-medium", sets))
    assert json.loads(out) == json.loads(json.dumps(step.to_dict()))


def test_train_takes_a_catalog_model_with_its_overrides(capsys):
    argv = [
        "train",
        "--system",
        "hls-gaudi2",
        "--model",
        "gpt2-xl",
        "--set",
        "layers=1",
        "--set",
        "workload.vocab=1000",
    ]
    argv += ["--parallel", "dp=2", "--global-batch", "2", "--seq-len", "32", "--json"]
    step = step_of(
        Layout(1, 1, 2), TrainOptions(2, 1, 32), data=model_workload_data("gpt2-xl", ["layers=1", "vocab=1000"])
    )
    assert json.loads(cli(capsys, *argv)[0]) == json.loads(json.dumps(step.to_dict()))


def test_a_search_ranks_every_layout_of_the_cards_and_gives_each_refusal(capsys):
    argv = ["train", *MODEL, "--global-batch", "8", "--seq-len", "64", "--search", "--cards", "8", "--micro-batch", "2"]
    argv += ["--top", "2", "--zero", "1", "--scheduler", "heft"]
    data, source = workload_data("gpt2-medium", SMALL)
    options = TrainOptions(8, 2, 64, zero=1)
    found = search(load_system("hls-gaudi2"), data, source, 8, options, 2, "heft")
    assert cli(capsys, *argv) == (report.search_report(found, 2) + "\n", "")
    listed = json.loads(cli(capsys, *argv, "--json")[0])
    assert listed == json.loads(json.dumps(search_dict(found, 2)))
    assert listed["cards"] == 8 and len(listed["ranked"]) == 2 < listed["ran"] == len(found.ranked)
    assert listed["candidates"] == len(found.ranked) + len(found.refused) and listed["refused"] == found.reasons()
    assert listed["refusals"] == [
        {"tp": r.layout.tp, "pp": r.layout.pp, "dp": r.layout.dp, "micro_batch": r.micro_batch, "reason": r.reason}
        for r in found.refused
    ]
    assert listed["refusals"]  # 4 heads over 8 cards, 2 layers over 8 stages: some layouts do not divide


@pytest.fixture
def drawn(monkeypatch):
    """The training figures drawn, in order: (file stem, figure, what it was drawn from)."""
    saved: list[tuple[str, str, object]] = []
    monkeypatch.setattr(plots, "train_breakdown", lambda step: ("breakdown", json.dumps(step.to_dict())))
    monkeypatch.setattr(plots, "pipeline_chart", lambda run, title="": ("pipeline", (run, title)))

    def save(fig, out_dir, stem):
        saved.append((stem, *fig))
        return [Path(out_dir) / f"{stem}.png"]

    monkeypatch.setattr(plots, "save", save)
    return saved


def test_train_plot_and_plot_train_draw_the_same_step_and_its_pipeline(drawn, capsys, tmp_path):
    settings = ["--parallel", "tp=2,pp=2", "--global-batch", "4", "--micro-batch", "1", "--seq-len", "64"]
    settings += ["--zero", "1", "--recompute", "full", "--sequence-parallel", "--precision", "fp8"]
    step = step_of(Layout(2, 2, 1), TrainOptions(4, 1, 64, "fp8", 1, "full", True), "heft")
    text, _ = cli(capsys, "train", *MODEL, *settings, "--scheduler", "heft", "--plot", str(tmp_path))
    stems = ["train_hls-gaudi2_2x2x1", "train_hls-gaudi2_2x2x1_pipeline"]
    assert text == report.train_report(step) + "\n" + "".join(f"{tmp_path / s}.png\n" for s in stems)
    by_train = list(drawn)
    drawn.clear()
    listed = json.loads(
        cli(
            capsys, "plot", *MODEL, *settings, "--scheduler", "heft,naive", "--train", "--out", str(tmp_path), "--json"
        )[0]
    )
    assert listed == [f"{tmp_path / s}.png" for s in stems]
    assert drawn == by_train
    (stem, kind, shown), (pipe_stem, pipe_kind, (run, title)) = by_train
    assert (stem, kind, shown) == (stems[0], "breakdown", json.dumps(step.to_dict()))
    assert (pipe_stem, pipe_kind, title) == (stems[1], "pipeline", step.model)
    assert (run.stages, run.micro_batches) == (2, 4)  # the global batch of 4 in micro-batches of 1


def test_plot_train_takes_trains_defaults_and_plots_first_scheduler(drawn, capsys, tmp_path):
    """plot's own defaults for train's options are "not given"; --train reads them as train does, and runs the
    first of plot's schedulers (naive, of naive and balanced)."""
    settings = ["--parallel", "dp=2", "--global-batch", "4", "--seq-len", "64"]
    cli(capsys, "plot", *MODEL, *settings, "--train", "--out", str(tmp_path))
    step = step_of(Layout(1, 1, 2), TrainOptions(4, 2, 64), "naive")
    assert drawn == [("train_hls-gaudi2_1x1x2", "breakdown", json.dumps(step.to_dict()))]


VIT = ["--system", "hls-gaudi2", "--workload", "gformer-vit", "--global-batch", "8"]
RUN_SETTING = (
    "is a run setting: train sets it from its options (--global-batch, --micro-batch, --seq-len, --precision, "
    "--zero, --recompute, --sequence-parallel)"
)
HEADS = (
    "workloads/gpt2-medium.toml: heads: tensor parallelism over 8 cards: 4 attention heads do not divide into 8 "
    "equal shares"
)
REFUSALS = [
    (
        ["train", *MODEL, "--parallel", "tp=2", "--global-batch", "4", "--set", " batch = 4"],
        f"--set: batch {RUN_SETTING}",
    ),
    (
        ["train", *MODEL, "--parallel", "tp=2", "--global-batch", "4", "--set", "run.seq_len=64"],
        f"--set: run.seq_len {RUN_SETTING}",
    ),
    (
        ["train", *MODEL, "--parallel", "tp=2", "--global-batch", "4", "--set", "workload.dtype=fp8"],
        f"--set: dtype {RUN_SETTING}",
    ),
    (  # a workload file without its model table: refused naming the file, not a KeyError
        ["train", "--system", "hls-gaudi2", "--workload", "BARE", "--global-batch", "2", "--seq-len", "32"]
        + ["--parallel", "dp=2"],
        "BARE: model: required key is missing",
    ),
    (
        ["train", *VIT, "--parallel", "dp=2", "--seq-len", "64"],
        "--seq-len: a vit's sequence comes from its image and patch sizes: leave out --seq-len",
    ),
    (
        ["train", *MODEL, "--parallel", "dp=2", "--global-batch", "4"],
        "--seq-len: a gpt model's training run needs --seq-len",
    ),
    (
        ["train", *MODEL, "--global-batch", "4", "--seq-len", "64", "--search", "--parallel", "tp=2"],
        "--parallel: --search tries every layout: give --cards, not --parallel",
    ),
    (
        ["train", *MODEL, "--global-batch", "4", "--seq-len", "64", "--search"],
        "--cards: --search lays out --cards N cards: give --cards",
    ),
    (
        ["train", *MODEL, "--global-batch", "4", "--seq-len", "64", "--search", "--cards", "2", "--plot", "PLOTS"],
        "--plot: --plot draws one step: run the layout --search ranks first",
    ),
    (
        ["train", *MODEL, "--global-batch", "4", "--seq-len", "64", "--parallel", "tp=2", "--cards", "2"],
        "--cards: --cards is the search's: give --parallel for one layout, or add --search",
    ),
    (
        ["train", *MODEL, "--global-batch", "4", "--seq-len", "64"],
        "--parallel: give the layout (--parallel tp=T,pp=P,dp=D), or --search --cards N",
    ),
    (
        ["train", *MODEL, "--global-batch", "4", "--seq-len", "64", "--parallel", "tp=2,,dp=2"],
        "--parallel: an empty degree in 'tp=2,,dp=2' (two commas, or one at an end)",
    ),
    (
        ["train", *MODEL, "--global-batch", "5", "--seq-len", "64", "--parallel", "dp=2"],
        "--global-batch: global batch 5 does not divide over 2 replicas",
    ),
    (
        ["train", *MODEL, "--global-batch", "4", "--seq-len", "64", "--parallel", "dp=2", "--scheduler", "heft,naive"],
        "--scheduler: this command runs one scheduler; got 2 (heft,naive)",
    ),
    (
        ["train", *MODEL, "--global-batch", "4", "--seq-len", "64", "--parallel", "dp=2", "--plot", "A_FILE"],
        "A_FILE: --plot: exists and is not a folder",
    ),
    (
        ["plot", *MODEL, "--global-batch", "4", "--seq-len", "64", "--zero", "1", "--out", "PLOTS"],
        "--train: --global-batch, --seq-len, --zero: options of a training step, drawn with --train",
    ),
    (
        ["plot", *MODEL, "--sequence-parallel", "--recompute", "full", "--micro-batch", "1", "--out", "PLOTS"],
        "--train: --micro-batch, --recompute, --sequence-parallel: options of a training step, drawn with --train",
    ),
    *(
        ([command, *MODEL, *train, "--parallel", "tp=8", "--global-batch", "8", "--seq-len", "64"], HEADS)
        for command, train in (("train", []), ("plot", ["--train", "--out", "PLOTS"]))
    ),
    (
        ["plot", *MODEL, "--chip", "gaudi2", "--train", "--parallel", "tp=2", "--global-batch", "4", "--out", "PLOTS"],
        "--train: --train draws a step on a system: give --system, and --workload or --model",
    ),
    (
        ["plot", "--system", "hls-gaudi2", "--graph", str(ROOT / "examples" / "attention_head.toml"), "--train"]
        + ["--parallel", "tp=2", "--global-batch", "4", "--out", "PLOTS"],
        "--train: --train draws a step on a system: give --system, and --workload or --model",
    ),
    (
        ["plot", "--chip", "gaudi2", "--workload", "gpt2-small", "--train", "--out", "PLOTS"],
        "--train: --train draws a step on a system: give --system, and --workload or --model",
    ),
    (
        ["plot", *MODEL, "--train", "--global-batch", "4", "--out", "PLOTS"],
        "--train: --train needs the layout (--parallel) and --global-batch",
    ),
    (
        ["plot", *MODEL, "--train", "--parallel", "dp=2", "--out", "PLOTS"],
        "--train: --train needs the layout (--parallel) and --global-batch",
    ),
    (
        ["plot", *MODEL, "--train", "--parallel", "dp=2", "--global-batch", "3", "--seq-len", "64", "--out", "PLOTS"],
        "--global-batch: global batch 3 does not divide over 2 replicas",
    ),
    (
        ["plot", *MODEL, "--train", "--parallel", "dp=2", "--global-batch", "4", "--seq-len", "64"]
        + ["--scheduler", ",", "--out", "PLOTS"],
        "--scheduler: name at least one scheduler, got ','",
    ),
]


@pytest.mark.parametrize(("argv", "line"), REFUSALS, ids=[f"{a[0]}-{n}" for n, (a, _) in enumerate(REFUSALS)])
def test_train_refuses_in_one_line_naming_the_key(argv, line, tmp_path, capsys):
    where = {"PLOTS": str(tmp_path / "plots"), "A_FILE": str(ROOT / "tests" / "data" / "h100.jsonl")}
    where["BARE"] = str(tmp_path / "bare.toml")
    Path(where["BARE"]).write_text('name = "bare"\n')
    argv = [where.get(a, a) for a in argv]
    for name, path in where.items():
        line = line.replace(name, path) if line.startswith(name) else line
    assert main(argv) == 2
    assert capsys.readouterr() == ("", f"accelsim: error: {line}\n")
    assert not (tmp_path / "plots").exists()
