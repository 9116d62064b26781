"""Every refusal the command itself makes (not a file's, not an option's type), as the one line a user reads.

Each is cheap (refused before anything is simulated), so the whole line is checked: the key that names what to
change, and the sentence that says what is allowed instead.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from accelsim import cli
from accelsim.cli import main

ROOT = Path(__file__).parent.parent
EXAMPLE = str(ROOT / "examples" / "attention_head.toml")
GENERATE = ["generate", "--chip", "gaudi2", "--model", "gpt2-xl", "--batch", "1", "--input-tokens", "8"]
TRAINING_PIPELINE = ["--system", "hls-gaudi2", "--workload", "gpt2-small", "--set", "mode=training"]
SIXTEEN_CARDS = "--parallel: tp x pp x dp = 16 cards run on 2 node(s) of hls-gaudi2 (8 cards each), not 3"

REFUSALS = [
    (
        ["run", "--chip", "gaudi2", "--graph", EXAMPLE, "--set", "batch=2"],
        "--set: --set overrides workload fields; it cannot be used with --graph",
    ),
    (
        ["run", "--chip", "gaudi2", "--workload", "gpt2-small", "--set", " chip.clock_ghz=2"],
        "chip.clock_ghz: run --set overrides workload fields; a chip's keys are set in its profile, or swept with "
        "accelsim sweep --set chip.KEY=V1,V2",
    ),
    (
        ["compare", "--chip", "gaudi2", "--workload", "gpt2-small", "--parallel", "tp=2"],
        "--parallel: --parallel lays a workload out on a system: give --system",
    ),
    (
        ["run", "--chip", "gaudi2", "--workload", "gpt2-small", "--nodes", "2"],
        "--nodes: --nodes lays a workload out on a system: give --system",
    ),
    (["run", "--workload", "gpt2-small"], "--chip: give --chip (one chip) or --system (many cards)"),
    (
        ["run", "--chip", "gaudi2", "--system", "hls-gaudi2", "--workload", "gpt2-small"],
        "--chip: give --chip or --system, not both (a system names its chip)",
    ),
    (
        ["run", "--system", "hls-gaudi2", "--graph", EXAMPLE],
        "--graph: a system runs a workload (--workload or --model), not a task graph",
    ),
    (
        ["run", *TRAINING_PIPELINE, "--chip", "gaudi2", "--parallel", "tp=4,pp=2"],
        "--system: a system runs a workload (--workload or --model), not --chip or --graph",
    ),
    (
        ["run", *TRAINING_PIPELINE, "--parallel", "tp=4,pp=2", "--trace", "TRACE"],
        "--trace: a pipeline's timeline is drawn by accelsim plot, not traced",
    ),
    (
        ["run", "--chip", "gaudi2", "--workload", "gpt2-small", "--explicit"],
        "--explicit: --explicit simulates every card of a system: give --system",
    ),
    (
        ["run", "--system", "hls-gaudi2", "--workload", "gpt2-small", "--explicit", "--trace", "TRACE"],
        "--trace: --explicit writes no trace (one card's: run without it)",
    ),
    (
        ["plot", "--chip", "gaudi2", "--model", "gpt2-xl", "--output-tokens", "4", "--out", "PLOTS"],
        "--output-tokens: a generation also needs --batch and --input-tokens",
    ),
    (
        ["plot", "--chip", "gaudi2", "--model", "gpt2-xl", "--output-tokens", "4", "--batch", "1", "--out", "PLOTS"],
        "--output-tokens: a generation also needs --input-tokens",
    ),
    (
        ["plot", "--chip", "gaudi2", "--workload", "gpt2-small", "--output-tokens", "4", "--out", "PLOTS"],
        "--output-tokens: a generation's option: plot draws a generation with --model and --output-tokens",
    ),
    (
        ["plot", "--chip", "gaudi2", "--model", "gpt2-xl", "--batch", "2", "--attention", "eager", "--out", "PLOTS"],
        "--batch: a generation's option: plot draws a generation with --model and --output-tokens (so is --attention)",
    ),
    (
        ["plot", "--chip", "gaudi2", "--workload", "gpt2-small", "--precision", "fp8", "--experts-used", "2"]
        + ["--input-tokens", "8", "--out", "PLOTS"],
        "--input-tokens: a generation's option: plot draws a generation with --model and --output-tokens (so are "
        "--experts-used, --precision)",
    ),
    (
        ["plot", "--system", "hls-gaudi2", "--model", "gpt2-xl", "--output-tokens", "2", "--train", "--out", "PLOTS"],
        "--train: --output-tokens draws a generation and --train a training step; give one",
    ),
    (
        ["plot", "--chip", "gaudi2,,h100", "--workload", "gpt2-small", "--out", "PLOTS"],
        "--chip: an empty chip in 'gaudi2,,h100' (two commas, or one at an end)",
    ),
    (
        ["plot", "--chip", "gaudi2", "--model", "gpt2-xl", "--output-tokens", "2", "--batch", "1"]
        + ["--input-tokens", "8", "--scheduler", ",", "--out", "PLOTS"],
        "--scheduler: name at least one scheduler, got ','",
    ),
    (
        [*GENERATE, "--output-tokens", "4", "--precision", "fp16"],
        "--precision: a generation runs bf16 or fp8, got 'fp16'",
    ),
    (
        [*GENERATE, "--output-tokens", "4", "--parallel", "tp=2,pp=2"],
        "--parallel: generate splits a model over a tensor group only: give tp=N (the chip's one-node system's cards)",
    ),
    (
        [*GENERATE, "--output-tokens", "4", "--parallel", "dp=2"],
        "--parallel: generate splits a model over a tensor group only: give tp=N (the chip's one-node system's cards)",
    ),
    (
        ["run", "--chip", "gaudi2", "--workload", "gpt2-small", "--scheduler", "naive,heft"],
        "--scheduler: this command runs one scheduler; got 2 (naive,heft)",
    ),
    (
        [*GENERATE, "--output-tokens", "4", "--scheduler", "naive,heft"],
        "--scheduler: this command runs one scheduler; got 2 (naive,heft)",
    ),
    (
        ["run", "--system", "hls-gaudi2", "--workload", "gpt2-small", "--explicit", "--scheduler", "heft,naive"],
        "--scheduler: this command runs one scheduler; got 2 (heft,naive)",
    ),
    (
        ["compare", "--chip", "gaudi2", "--workload", "gpt2-small", "--scheduler", "naive,,heft"],
        "--scheduler: an empty scheduler in 'naive,,heft' (two commas, or one at an end)",
    ),
    (
        ["run", "--chip", "gaudi2", "--workload", "gpt2-small", "--trace", "MISSING/trace.json"],
        "MISSING/trace.json: --trace: its folder 'MISSING' does not exist; create it first",
    ),
    (
        ["run", "--chip", "gaudi2", "--workload", "gpt2-small", "--plugin", "MISSING.py"],
        "MISSING.py: plugin file not found",
    ),
    (
        ["run", "--system", "hls-gaudi2", "--workload", "gpt2-small"],  # tensor parallel over the node's 8 cards
        "workloads/gpt2-small.toml: heads: tensor parallelism over 8 cards: 12 attention heads do not divide into 8 "
        "equal shares",
    ),
    (
        ["run", "--system", "hls-gaudi2", "--workload", "gpt2-small", "--parallel", "tp=2,pp=2"],
        'workloads/gpt2-small.toml: pipeline parallelism is modelled for training (run.mode = "training")',
    ),
    (
        ["run", "--system", "hls-gaudi2", "--model", "gpt2-xl", "--set", "layers=1", "--set", "mode=training"]
        + ["--parallel", "tp=8,pp=2"],
        "models/gpt2-xl.json: layers: 1 layers do not divide into 2 pipeline stages",
    ),
    *(  # a card's run, a pipeline's, and compare's: each places the layout on the nodes --nodes names
        ([command, *TRAINING_PIPELINE, "--set", "heads=16", "--parallel", layout, "--nodes", "3"], SIXTEEN_CARDS)
        for command, layout in (("run", "tp=8,dp=2"), ("run", "tp=8,pp=2"), ("compare", "tp=8,pp=2"))
    ),
    (
        ["plot", "--chip", "gaudi2", "--workload", "gpt2-small", "--out", "H100"],
        "H100: --out: exists and is not a folder",
    ),
    (["sweep-plot", "H100", "--out", "H100"], "H100: --out: exists and is not a folder"),
    (
        ["sweep", "--chip", "gaudi2", "--workload", "gpt2-small,,vit-b16", "--out", "SWEEP.csv"]
        + ["--set", "chip.clock_ghz=1,2"],
        "--workload: an empty workload in 'gpt2-small,,vit-b16' (two commas, or one at an end)",
    ),
    (
        ["sweep", "--chip", "gaudi2", "--workload", "gpt2-small", "--out", "SWEEP.csv", "--scheduler", "heft,heft"]
        + ["--set", "chip.clock_ghz=1,2"],
        "--scheduler: 'heft' given more than once in 'heft,heft'",
    ),
    (["chips", "gaudi2", "extra"], "gaudi2: expected `chips show NAME` or `chips NAME`"),
    (["systems", "list", "hls-gaudi2"], "list: expected `systems show NAME` or `systems NAME`"),
    (["chips", "show"], "NAME: `accelsim chips show` needs a chip name or path"),
    (["systems", "show"], "NAME: `accelsim systems show` needs a system name or path"),
    (["models", "show"], "ID: `accelsim models show` needs a catalog id or a path to a config.json"),
    (
        ["sweep", "--chip", "gaudi2", "--workload", "gpt2-small", "--out", "SWEEP.txt", "--set", "chip.clock_ghz=1,2"],
        "SWEEP.txt: --out: the results file must end in .csv or .parquet",
    ),
    (
        ["sweep", "--chip", "gaudi2", "--workload", "gpt2-small", "--out", "SWEEP.csv"],
        "--set: name at least one --set chip.KEY=V1,V2,... or workload.KEY=V1,V2,... to sweep",
    ),
    (
        ["sweep", "--chip", "gaudi2", "--workload", "gpt2-small", "--out", "SWEEP.csv"]
        + ["--set", "chip.clock_ghz=1,2", "--set", "chip.clock_ghz=3"],
        "--set: chip.clock_ghz: swept by two --set options; give its values in one",
    ),
    (
        ["fit", "--chip", "h100", "--measurements", "H100", "H100"],
        "H100: a GPU profile is fitted to one file of kernel records; several files are for a Gaudi-class "
        "profile's llm_generate and gemm records",
    ),
]


@pytest.mark.parametrize(("argv", "line"), REFUSALS, ids=[" ".join(a[:1] + a[-2:]) for a, _ in REFUSALS])
def test_the_command_refuses_in_one_line_naming_the_key(argv, line, tmp_path, capsys):
    """Output paths are a scratch folder's (nothing is written: each is refused before it runs)."""
    where = {"TRACE": tmp_path / "trace.json", "PLOTS": tmp_path / "plots", "SWEEP": tmp_path / "sweep"}
    where["MISSING"] = tmp_path / "missing"
    where["H100"] = ROOT / "tests" / "data" / "h100.jsonl"

    def placed(text: str) -> str:
        for name, path in where.items():
            text = text.replace(name, str(path))
        return text

    code = main([placed(a) for a in argv])
    out, err = capsys.readouterr()
    assert (code, out, err) == (2, "", f"accelsim: error: {placed(line)}\n")
    assert not (tmp_path / "trace.json").exists() and not list(tmp_path.glob("sweep*"))


@pytest.mark.parametrize(
    ("raised", "code", "err"),
    [
        (KeyboardInterrupt, 130, "accelsim: interrupted\n"),  # Ctrl-C: what finished is already written
        (BrokenPipeError, 0, ""),  # piped into `head`, which stopped reading
    ],
)
def test_an_interrupt_or_a_closed_pipe_ends_the_command_without_a_traceback(raised, code, err, monkeypatch, capsys):
    def command(args):
        raise raised

    monkeypatch.setitem(cli.COMMANDS, "schedulers", command)
    assert main(["schedulers"]) == code
    assert capsys.readouterr() == ("", err)


def test_a_command_that_ran_but_partly_failed_returns_its_own_status(monkeypatch, capsys):
    """A sweep whose points failed returns 1 (every point ran; the failed rows say why); others return 0."""
    monkeypatch.setitem(cli.COMMANDS, "schedulers", lambda args: 1)
    assert main(["schedulers"]) == 1
    monkeypatch.setitem(cli.COMMANDS, "schedulers", lambda args: None)
    assert main(["schedulers"]) == 0
