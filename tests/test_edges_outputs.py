"""Trustworthy at the edges: output paths checked before any work, safe file names, literal names in plots,
lenient sweep-plot reading, sweeps that lose nothing, and one --set syntax for sweeps."""

import csv
import io
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from matplotlib.text import Text

import accelsim
import accelsim.cli
import accelsim.sweep
from accelsim import make_task, plots
from accelsim.cli import main
from accelsim.graph import TaskGraph
from accelsim.outputs import safe_name
from accelsim.results import Results
from accelsim.sweep import COLUMNS, Journal, parse_axis, plan, run_sweep
from accelsim.sweep_plot import read_rows

from conftest import TINY_WORKLOAD, tiny_chip_dict

ROOT = Path(__file__).parent.parent
EXAMPLE = str(ROOT / "examples" / "attention_head.toml")
GAUDI1 = (ROOT / "chips" / "gaudi1.toml").read_text()


@pytest.fixture
def tiny(tmp_path):
    path = tmp_path / "tiny-gpt.toml"
    path.write_text(TINY_WORKLOAD)
    return str(path)


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code, err, *words):
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("accelsim: error: ") and "Traceback" not in err, err
    for w in words:
        assert w in err, err


def chip_file(tmp_path, name, stem="chip"):
    """gaudi1's profile under another name."""
    path = tmp_path / f"{stem}.toml"
    path.write_text(
        re.sub(
            r'^name = ".*"$', f"name = {name!r}".replace("\\", "\\\\").replace("'", '"'), GAUDI1, count=1, flags=re.M
        )
    )
    assert accelsim.load_chip(path).name == name
    return path


def files_under(folder):
    return {p for p in Path(folder).rglob("*") if p.is_file()}


# 1. Output paths are checked before any work ---------------------------------------------------------------------


@pytest.fixture
def no_simulation(monkeypatch):
    """Fail the test if anything is simulated: the output check must come first."""

    def refuse(*args, **kwargs):
        raise AssertionError("simulated before the output path was checked")

    monkeypatch.setattr(accelsim.cli, "run_graph", refuse)
    monkeypatch.setattr(accelsim.cli, "compare", refuse)
    monkeypatch.setattr(accelsim.sweep, "run_unit", refuse)


@pytest.mark.parametrize(
    "where, words",
    [
        ("folder", "is a folder"),
        ("afile/trace.json", "is not a folder"),
        ("missing/trace.json", "does not exist"),
    ],
)
def test_run_trace_to_a_bad_path_is_one_line_before_simulating(tmp_path, capsys, no_simulation, where, words):
    (tmp_path / "folder").mkdir()
    (tmp_path / "afile").write_text("x")
    code, _, err = run_cli(capsys, "run", "--chip", "gaudi1", "--graph", EXAMPLE, "--trace", tmp_path / where)
    one_line_error(code, err, "--trace", words)
    assert not (tmp_path / "missing").exists()


@pytest.mark.parametrize(
    "where, words",
    [
        ("missing/s.csv", "does not exist"),
        ("afile/s.csv", "is not a folder"),
        ("adir.csv", "is a folder"),
        ("afile/s.parquet", "is not a folder"),
    ],
)
def test_sweep_out_to_a_bad_path_is_one_line_before_the_first_point(
    tmp_path, tiny, capsys, no_simulation, where, words
):
    (tmp_path / "afile").write_text("x")
    (tmp_path / "adir.csv").mkdir()
    code, _, err = run_cli(
        capsys,
        "sweep",
        "--chip",
        "gaudi1",
        "--set",
        "chip.clock_ghz=1.0,2.0",
        "--workload",
        tiny,
        "--out",
        tmp_path / where,
        "--workers",
        "1",
        "--quiet",
    )
    one_line_error(code, err, "--out", words)


def test_run_sweep_checks_its_output_before_running(tmp_path, tiny, no_simulation):
    (tmp_path / "afile").write_text("x")
    units = plan("gaudi1", [parse_axis("chip.clock_ghz=1.0")], [tiny], ["naive"])
    with pytest.raises(accelsim.AccelsimError, match="not a folder"):
        run_sweep(units, tmp_path / "afile" / "s.csv", workers=1, progress=False)


@pytest.mark.parametrize("command", ["plot", "sweep-plot"])
def test_plot_out_that_cannot_be_created_is_one_line_before_work(tmp_path, capsys, no_simulation, command):
    (tmp_path / "afile").write_text("x")
    sweep = tmp_path / "s.csv"
    sweep.write_text(",".join(["chip.clock_ghz", *COLUMNS]) + "\n1.0,gaudi1,w,naive,10,10,0.5,0.5,0,5,1,1,1,\n")
    argv = (
        ["plot", "--chip", "gaudi1", "--graph", EXAMPLE, "--scheduler", "naive"]
        if command == "plot"
        else ["sweep-plot", sweep]
    )
    code, _, err = run_cli(capsys, *argv, "--out", tmp_path / "afile" / "figures")
    one_line_error(code, err, "--out", "not a folder")
    code, _, err = run_cli(capsys, *argv, "--out", tmp_path / "afile")
    one_line_error(code, err, "--out", "not a folder")


def test_plot_out_folder_is_created_when_missing(tmp_path, capsys):
    code, _, _ = run_cli(
        capsys,
        "plot",
        "--chip",
        "gaudi1",
        "--graph",
        EXAMPLE,
        "--scheduler",
        "naive",
        "--out",
        tmp_path / "new" / "figures",
    )
    assert code == 0 and (tmp_path / "new" / "figures" / "timeline_gaudi1_naive.png").exists()


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes through chmod")
def test_a_read_only_folder_is_refused(tmp_path, capsys, no_simulation):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        code, _, err = run_cli(capsys, "run", "--chip", "gaudi1", "--graph", EXAMPLE, "--trace", ro / "t.json")
        one_line_error(code, err, "permission denied")
    finally:
        ro.chmod(0o700)


# 2. Names that become file names are made safe ----------------------------------------------------------------


@pytest.mark.parametrize(
    "name, safe",
    [
        ("gaudi1", "gaudi1"),
        ("a/b", "a_b"),
        ("..", "_"),
        ("../x", "__x"),
        ("x/../../y", "x_____y"),
        (".hidden", "_hidden"),
        ("", "_"),
        ("a$b$c", "a_b_c"),
        ("v1.2-x_y", "v1.2-x_y"),
        ("a\\b", "a_b"),
    ],
)
def test_safe_name(name, safe):
    assert safe_name(name) == safe
    assert "/" not in safe_name(name) and ".." not in safe_name(name)


@pytest.mark.parametrize("name", ["x/../../escaped", "../escaped"])
def test_plot_writes_nothing_outside_out_whatever_the_chip_is_called(tmp_path, capsys, name):
    out = tmp_path / "out"
    (out / "timeline_x").mkdir(parents=True)  # makes "timeline_x/../../escaped..." a path that resolves
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    chip = chip_file(inputs, name)
    code, stdout, err = run_cli(
        capsys, "plot", "--chip", f"{chip},gaudi1", "--graph", EXAMPLE, "--scheduler", "naive", "--out", out
    )
    assert code == 0, err
    written = files_under(tmp_path) - files_under(inputs)
    assert written and all(out in p.parents for p in written), sorted(map(str, written))
    assert all(p.parent == out for p in written)
    assert {Path(line).resolve() for line in stdout.split()} == {p.resolve() for p in written}
    assert len(written) == 2 * 2 * 3 + 2  # per chip, PNG and SVG of: timeline, utilization, idle; a comparison


def test_two_chips_whose_safe_names_collide_keep_both_figures(tmp_path, capsys):
    a, b = chip_file(tmp_path, "x/y", "a"), chip_file(tmp_path, "x_y", "b")
    code, stdout, _ = run_cli(
        capsys, "plot", "--chip", f"{a},{b}", "--graph", EXAMPLE, "--scheduler", "naive", "--out", tmp_path / "out"
    )
    names = {p.name for p in (tmp_path / "out").iterdir()}
    assert code == 0 and {"idle_x_y.png", "idle_x_y-2.png"} <= names


def test_sweep_plot_file_names_from_hostile_keys_stay_in_out(tmp_path, capsys):
    sweep = tmp_path / "s.csv"
    header = ["chip.../../../escaped", *COLUMNS]
    sweep.write_text(",".join(header) + "\n1,c,w,naive,10,10,0.5,0.5,0,5,1,1,1,\n2,c,w,naive,8,8,0.5,0.5,0,5,2,1,1,\n")
    (tmp_path / "out" / "sweep_chip").mkdir(parents=True)
    code, _, err = run_cli(capsys, "sweep-plot", sweep, "--out", tmp_path / "out")
    assert code == 0, err
    assert all(tmp_path / "out" in p.parents for p in files_under(tmp_path) - {sweep})


# 3. Names with $ are drawn literally ---------------------------------------------------------------------------


def hand_results(chip, graph_name, scheduler):
    graph = TaskGraph([make_task("a", "add", [800]), make_task("c", "gemm", [8, 8, 8])], name=graph_name)
    empty = np.zeros(0, dtype=np.int64)
    return Results(graph, chip, scheduler, np.array([1, 0]), np.array([0, 10]), np.array([100, 50]), empty, empty)


def texts_of(fig):
    return [t for t in fig.findobj(Text) if t.get_text()]


@pytest.mark.parametrize("name", ["a$b$c", "$\\frac{", "$$", "price $5 and $6"])
def test_names_with_dollars_are_drawn_literally(name):
    chip = accelsim.chip_from_dict(tiny_chip_dict(name=name), "tiny.toml")
    other = accelsim.chip_from_dict(tiny_chip_dict(name=name + "2"), "tiny.toml")
    rows = [
        hand_results(chip, name, name),
        hand_results(chip, name, "x" + name),
        hand_results(other, name, name),
        hand_results(other, name, "x" + name),
    ]
    for fig in (
        plots.timeline(rows[0]),
        plots.idle_chart(rows[:2]),
        plots.utilization_over_time(rows[0]),
        plots.comparison(rows),
    ):
        fig.savefig(io.BytesIO(), format="png")  # mathtext used to refuse $\frac{ ... $ here
        fig.canvas.draw()
        shown = [t.get_text() for t in texts_of(fig)]
        assert not any(matplotlib.cbook.is_math_text(s) for s in shown), shown
        assert any(name in s.replace(r"\$", "$") for s in shown), shown
        matplotlib.pyplot.close(fig)


def test_plot_command_with_mathtext_names(tmp_path, capsys):
    graph = tmp_path / "g.toml"
    graph.write_text(Path(EXAMPLE).read_text().replace('name = "attention-head"', 'name = "$\\\\frac{"'))
    assert accelsim.load_graph(graph).name == "$\\frac{"
    chip = chip_file(tmp_path, "$\\frac{")
    code, _, err = run_cli(
        capsys,
        "plot",
        "--chip",
        f"{chip},{chip_file(tmp_path, 'a$b$c', 'c2')}",
        "--graph",
        graph,
        "--scheduler",
        "naive",
        "--out",
        tmp_path / "out",
    )
    assert code == 0, err
    assert {"timeline___frac__naive.png", "timeline_a_b_c_naive.svg", "comparison.png"} <= {
        p.name for p in (tmp_path / "out").iterdir()
    }


# 4. sweep-plot reads leniently ------------------------------------------------------------------------------------

GOOD = [
    ["4", "gaudi2", "w", "naive", "100.0", "1000", "0.9", "0.2", "0", "900", "400", "10", "100", ""],
    ["4", "gaudi2", "w", "balanced", "80.0", "800", "0.95", "0.3", "0", "900", "400", "10", "100", ""],
    ["8", "gaudi2", "w", "naive", "90.0", "900", "0.9", "0.1", "0", "800", "420", "12", "100", ""],
    ["8", "gaudi2", "w", "balanced", "70.0", "700", "0.97", "0.2", "0", "800", "420", "12", "100", ""],
]
HEADER = ["chip.engines.tpc.count", *COLUMNS]


def write_sweep(path, rows, header=HEADER):
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def bad(column, value):
    row = list(GOOD[3])
    row[HEADER.index(column)] = value
    return row


@pytest.mark.parametrize(
    "row, words",
    [
        (bad("latency_us", "fast"), "latency_us is not a number"),
        (bad("latency_us", ""), "empty latency_us"),
        (bad("latency_us", "0"), "latency_us must be greater than 0"),
        (bad("latency_us", "nan"), "latency_us must be greater than 0"),
        (bad("util_matrix", "-1"), "util_matrix must be at least 0"),
        (bad("peak_bf16_tflops", "lots"), "peak_bf16_tflops is not a number"),
        (bad("chip.engines.tpc.count", ""), "empty chip.engines.tpc.count"),
        (GOOD[3][:5], "5 cells where the header has 14"),
        ([*GOOD[3], "extra"], "15 cells where the header has 14"),
    ],
)
def test_a_bad_row_is_left_out_with_a_warning_naming_file_and_line(tmp_path, capsys, row, words):
    sweep = write_sweep(tmp_path / "s.csv", [*GOOD[:3], row])
    code, out, err = run_cli(capsys, "sweep-plot", sweep, "--out", tmp_path / "fig")
    assert code == 0, err
    assert err.count("\n") == 1 and f"accelsim: warning: {sweep}: line 5: {words}" in err, err
    assert "sweep_pareto.png" in out
    keys, rows = read_rows(sweep, warn=lambda m: None)
    assert keys == ["chip.engines.tpc.count"] and len(rows) == 3


def test_a_sweep_file_from_before_the_chip_column_is_still_drawn(tmp_path, capsys):
    header = ["engines.tpc.count", *(c for c in COLUMNS if c != "chip")]
    sweep = write_sweep(tmp_path / "s.csv", [[r[0], *r[2:]] for r in GOOD], header)
    code, out, err = run_cli(capsys, "sweep-plot", sweep, "--out", tmp_path)
    assert code == 0 and err == "" and "sweep_engines_tpc_count.png" in out and "sweep_gain.png" in out


def test_a_categorical_axis_is_drawn(tmp_path, capsys):
    header = ["workload.variant", *COLUMNS]
    rows = [["window", *r[1:]] for r in GOOD[:2]] + [["softmax", *r[1:]] for r in GOOD[2:]]
    code, out, err = run_cli(capsys, "sweep-plot", write_sweep(tmp_path / "s.csv", rows, header), "--out", tmp_path)
    assert code == 0 and err == "" and "sweep_workload_variant.png" in out


@pytest.mark.parametrize(
    "content, words",
    [
        (None, "no rows to plot (4 left out"),
        (b"", "not a sweep file"),
        (b"\x00\xff\xfe garbage \x00\n\x01\x02", "not a sweep file"),
        (b"a,b,c\n1,2,3\n", "not a sweep file"),
    ],
)
def test_nothing_usable_is_one_line_exit_2(tmp_path, capsys, content, words):
    sweep = tmp_path / "s.csv"
    if content is None:
        write_sweep(sweep, [[*r[:4], "x", *r[5:]] for r in GOOD])
    else:
        sweep.write_bytes(content)
    code, _, err = run_cli(capsys, "sweep-plot", sweep, "--out", tmp_path / "fig")
    assert (
        code == 2 and words in err and "Traceback" not in err and err.splitlines()[-1].startswith("accelsim: error: ")
    ), err


def test_failed_rows_only_is_one_line_exit_2(tmp_path, capsys):
    rows = [[*r[:4], "", "", "", "", "", "", "", "", "", "RuntimeError: boom"] for r in GOOD]
    code, _, err = run_cli(capsys, "sweep-plot", write_sweep(tmp_path / "s.csv", rows), "--out", tmp_path / "f")
    assert code == 2 and "4 recorded with an error" in err.splitlines()[-1]


def test_a_garbage_parquet_file_is_one_line_exit_2(tmp_path, capsys):
    pytest.importorskip("pyarrow")
    sweep = tmp_path / "s.parquet"
    sweep.write_bytes(b"PAR1 this is not parquet at all")
    code, _, err = run_cli(capsys, "sweep-plot", sweep, "--out", tmp_path / "fig")
    one_line_error(code, err, "not a readable Parquet file", str(sweep))


def test_a_sweep_plot_of_a_folder_or_missing_file_is_one_line(tmp_path, capsys):
    one_line_error(*run_cli(capsys, "sweep-plot", tmp_path, "--out", tmp_path / "f")[::2], "is a folder")
    one_line_error(*run_cli(capsys, "sweep-plot", tmp_path / "no.csv", "--out", tmp_path / "f")[::2], "not found")


# 5. Sweeps lose nothing ---------------------------------------------------------------------------------------


def file_rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_random_cuts_of_the_journal_are_completed_exactly_once(tmp_path, tiny):
    units = plan("gaudi2", [parse_axis("chip.engines.tpc.count=2,4,8")], [tiny], ["naive", "balanced"])
    expected = {(c, s) for c in ("2", "4", "8") for s in ("naive", "balanced")}
    full = tmp_path / "full.csv"
    run_sweep(units, full, workers=1, progress=False)
    data = full.read_bytes()
    line_ends = [i + 1 for i, b in enumerate(data) if b == ord("\n")]
    # a cut after a unit's first row (the old code took the unit for done), inside the header, then random bytes
    cuts = [line_ends[1], line_ends[3], 5, 0, len(data) - 1, *random.Random(7).sample(range(len(data)), 6)]
    for cut in cuts:
        out = tmp_path / f"cut{cut}.csv"
        out.write_bytes(data[:cut])
        run_sweep(units, out, workers=1, progress=False)
        rows = file_rows(out)
        got = [(r["chip.engines.tpc.count"], r["scheduler"]) for r in rows]
        assert sorted(got) == sorted(expected), (cut, got)  # each exactly once, in the file itself
        assert all(r["error"] == "" and float(r["latency_us"]) > 0 for r in rows)
        _, read = read_rows(out, warn=lambda m: pytest.fail(m))
        assert sorted((r["chip.engines.tpc.count"], r["scheduler"]) for r in read) == sorted(expected)
        assert run_sweep(units, out, workers=1, progress=False).ran == 0


def test_another_scheduler_or_chip_adds_its_rows(tmp_path, tiny, capsys):
    out = tmp_path / "s.csv"
    args = ["sweep", "--set", "chip.clock_ghz=1.0,2.0", "--workload", tiny, "--out", out, "--workers", "1", "--quiet"]
    assert run_cli(capsys, *args, "--chip", "gaudi1", "--scheduler", "naive")[0] == 0
    code, stdout, _ = run_cli(capsys, *args, "--chip", "gaudi1", "--scheduler", "naive,heft")
    assert code == 0 and "2 of 2 points run (0 already" in stdout
    code, stdout, _ = run_cli(capsys, *args, "--chip", "gaudi2", "--scheduler", "heft")
    assert code == 0 and "2 of 2 points run" in stdout
    got = sorted((r["chip"], r["chip.clock_ghz"], r["scheduler"]) for r in file_rows(out))
    assert got == sorted(
        [(c, v, s) for c, s in (("gaudi1", "naive"), ("gaudi1", "heft"), ("gaudi2", "heft")) for v in ("1.0", "2.0")]
    )
    assert len({r["latency_us"] for r in file_rows(out) if r["scheduler"] == "heft"}) == 4  # two chips differ


def test_a_file_with_other_columns_is_refused_untouched(tmp_path, tiny, capsys):
    out = tmp_path / "s.csv"
    out.write_text("name,price\nwidget,3")  # someone's file, without a final newline
    before = out.read_bytes()
    code, _, err = run_cli(
        capsys,
        "sweep",
        "--chip",
        "gaudi1",
        "--set",
        "chip.clock_ghz=1.0",
        "--workload",
        tiny,
        "--out",
        out,
        "--workers",
        "1",
        "--quiet",
    )
    one_line_error(code, err, "other columns", "--out")
    assert out.read_bytes() == before
    run_cli(
        capsys,
        "sweep",
        "--chip",
        "gaudi1",
        "--set",
        "chip.clock_ghz=1.0",
        "--workload",
        tiny,
        "--out",
        tmp_path / "t.csv",
        "--workers",
        "1",
        "--quiet",
    )
    before = (tmp_path / "t.csv").read_bytes()
    code, _, err = run_cli(
        capsys,
        "sweep",
        "--chip",
        "gaudi1",
        "--set",
        "chip.engines.tpc.count=4",
        "--workload",
        tiny,
        "--out",
        tmp_path / "t.csv",
        "--workers",
        "1",
        "--quiet",
    )
    one_line_error(code, err, "other columns")
    assert (tmp_path / "t.csv").read_bytes() == before


def test_failed_rows_are_retried_and_superseded(tmp_path, tiny, monkeypatch):
    out = tmp_path / "s.csv"
    units = plan("gaudi1", [parse_axis("chip.clock_ghz=1.0,2.0")], [tiny], ["naive", "balanced"])
    real = accelsim.sweep.run_unit

    def flaky(unit):
        rows = real(unit)
        if unit.values == (2.0,):
            import dataclasses

            rows = [
                dataclasses.replace(
                    r,
                    latency_us=None,
                    latency_cycles=None,
                    util_matrix=None,
                    util_vector=None,
                    util_dma=None,
                    error="RuntimeError: flaky",
                )
                for r in rows
            ]
        return rows

    monkeypatch.setattr(accelsim.sweep, "run_unit", flaky)
    assert run_sweep(units, out, workers=1, progress=False).failed == 1
    monkeypatch.setattr(accelsim.sweep, "run_unit", real)
    stats = run_sweep(units, out, workers=1, progress=False)
    assert (stats.skipped, stats.ran, stats.failed) == (1, 1, 0)
    rows = file_rows(out)
    assert len(rows) == 4 and all(r["error"] == "" for r in rows)  # the failed rows rewritten away


def test_the_last_row_of_a_key_wins_when_the_journal_is_read(tmp_path):
    out = tmp_path / "s.csv"
    header = ["chip.clock_ghz", *COLUMNS]
    failed = ["1.0", "gaudi1", "w", "naive", *[""] * 9, "RuntimeError: boom"]
    good = ["1.0", "gaudi1", "w", "naive", "5", "5", "0.5", "0.5", "0", "4", "1", "1", "1", ""]
    write_sweep(out, [failed, good], header)
    assert Journal(out, ["chip.clock_ghz"]).done() == {("1.0", "gaudi1", "w", "naive")}
    _, rows = read_rows(out, warn=lambda m: None)
    assert len(rows) == 1 and rows[0]["latency_us"] == "5"
    write_sweep(out, [good, failed], header)
    assert Journal(out, ["chip.clock_ghz"]).done() == set()


def test_a_finished_parquet_sweep_is_resumed_not_overwritten(tmp_path, tiny):
    pq = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "s.parquet"
    run_sweep(plan("gaudi1", [parse_axis("chip.clock_ghz=1.0")], [tiny], ["naive"]), out, workers=1, progress=False)
    stats = run_sweep(
        plan("gaudi1", [parse_axis("chip.clock_ghz=1.0,2.0")], [tiny], ["naive"]), out, workers=1, progress=False
    )
    assert (stats.skipped, stats.ran) == (1, 1)
    assert sorted(r["chip.clock_ghz"] for r in pq.read_table(out).to_pylist()) == [1.0, 2.0]


SCRIPT = """
import sys
from pathlib import Path
from accelsim.sweep import parse_axis, plan, run_sweep
units = plan("gaudi2", [parse_axis("chip.engines.tpc.count=" + ",".join(map(str, range(1, 201))))], [sys.argv[1]],
             ["naive", "balanced"])
run_sweep(units, Path(sys.argv[2]), workers=2, progress=False)
"""


def _children(pid):
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(stat.parent.name))
    return out


def _alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_exit_when_the_sweep_is_killed(tmp_path, tiny):
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, tiny, str(tmp_path / "s.csv")],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (tmp_path / "s.csv").exists():  # workers are running points
            time.sleep(0.05)
        workers = _children(proc.pid)
        assert workers, "the sweep started no worker processes"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(map(_alive, workers)):
            time.sleep(0.1)
        assert not [w for w in workers if _alive(w)], "worker processes outlived the killed sweep"
    finally:
        if proc.poll() is None:
            proc.kill()
        for w in workers:
            if _alive(w):
                os.kill(w, signal.SIGKILL)


SLOW = """
import sys, time
import accelsim.sweep
from accelsim.cli import main

def slow(unit):
    time.sleep(120)

accelsim.sweep.run_unit = slow
sys.exit(main(["sweep", "--chip", "gaudi1", "--set", "chip.clock_ghz=1.0,1.5,2.0,2.5", "--workload", sys.argv[1],
               "--out", sys.argv[2], "--workers", "2", "--quiet"]))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_ctrl_c_stops_a_sweep_at_once_with_one_line(tmp_path, tiny):
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW, tiny, str(tmp_path / "s.csv")],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(workers) < 2:
            time.sleep(0.1)
            workers = _children(proc.pid)
        assert workers, "the sweep started no worker processes"
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)  # the old code waited for the running units (120 s each)
        assert proc.returncode == 130 and err == "accelsim: interrupted\n", err
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(map(_alive, workers)):
            time.sleep(0.1)
        assert not [w for w in workers if _alive(w)]
    finally:
        if proc.poll() is None:
            proc.kill()
        for w in workers:
            if _alive(w):
                os.kill(w, signal.SIGKILL)


# 6. One --set syntax for sweeps -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "item, hint",
    [
        ("engines.tpc.count=8,24", "--set chip.engines.tpc.count=8,24"),
        ("clock_ghz=1.0", "--set chip.clock_ghz=1.0"),
        ("seq_len=1024,4096", "--set workload.seq_len=1024,4096"),
        ("run.batch=2", "--set workload.run.batch=2"),
    ],
)
def test_the_old_unprefixed_spelling_is_refused_with_the_new_one(tmp_path, tiny, capsys, item, hint):
    code, _, err = run_cli(
        capsys, "sweep", "--chip", "gaudi1", "--set", item, "--workload", tiny, "--out", tmp_path / "s.csv", "--quiet"
    )
    one_line_error(code, err, hint)
    assert not (tmp_path / "s.csv").exists()


def test_a_sweep_varies_workload_fields_parsed_as_run_set_parses_them(tmp_path, tiny, capsys):
    out = tmp_path / "s.csv"
    code, _, err = run_cli(
        capsys,
        "sweep",
        "--chip",
        "gaudi1",
        "--set",
        "workload.seq_len=32,64",
        "--set",
        "workload.variant=window,softmax",
        "--set",
        "chip.clock_ghz=1.8",
        "--workload",
        tiny,
        "--scheduler",
        "naive",
        "--out",
        out,
        "--workers",
        "1",
        "--quiet",
    )
    assert code == 0, err
    rows = file_rows(out)
    assert list(rows[0])[:3] == ["workload.seq_len", "workload.variant", "chip.clock_ghz"]
    got = {(r["workload.seq_len"], r["workload.variant"]): float(r["latency_us"]) for r in rows}
    assert set(got) == {(s, v) for s in ("32", "64") for v in ("window", "softmax")}
    # each point is the workload `run --set` gives: the same latency as `accelsim run` with those overrides
    for (seq, variant), latency in got.items():
        code, stdout, _ = run_cli(
            capsys,
            "run",
            "--chip",
            "gaudi1",
            "--workload",
            tiny,
            "--set",
            f"seq_len={seq}",
            "--set",
            f"variant={variant}",
            "--scheduler",
            "naive",
            "--json",
        )
        assert code == 0 and json.loads(stdout)["latency_us"] == pytest.approx(latency, abs=1e-3)
    assert got[("64", "softmax")] > got[("32", "softmax")]


@pytest.mark.parametrize(
    "item, words",
    [
        ("workload.seq_len=33", "attention.chunk: sequence length 33 is not divisible by chunk 16"),
        ("workload.seq_lenn=64", "unknown key 'seq_lenn'"),
        ("workload.mode=sleeping", "run.mode: Input should be 'inference' or 'training'"),
        ("chip.engines.tpc.count=0", "greater than 0"),
    ],
)
def test_bad_workload_or_chip_values_are_refused_before_anything_runs(
    tmp_path, tiny, capsys, no_simulation, item, words
):
    code, _, err = run_cli(
        capsys, "sweep", "--chip", "gaudi1", "--set", item, "--workload", tiny, "--out", tmp_path / "s.csv", "--quiet"
    )
    one_line_error(code, err, words)
    assert not (tmp_path / "s.csv").exists()
