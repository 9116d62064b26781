"""Design-space sweeps: every combination, streamed to a file, resumable, failures recorded, Dask backend."""

import csv
import dataclasses
import json

import pytest

from accelsim import AccelsimError
from accelsim.cli import main
from accelsim.sweep import COLUMNS, Journal, SweepRecord, parse_axis, plan, run_sweep, unit_key
from accelsim.sweep_plot import pareto_front, sweep_plots

from conftest import TINY_WORKLOAD


@pytest.fixture
def tiny(tmp_path):
    path = tmp_path / "tiny-gpt.toml"
    path.write_text(TINY_WORKLOAD)
    return str(path)


def read(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_every_combination_gets_a_row_per_workload_and_scheduler(tmp_path, tiny):
    out = tmp_path / "s.csv"
    units = plan(
        "gaudi2",
        [parse_axis("chip.engines.tpc.count=4,8,16"), parse_axis("chip.memory.hbm_bandwidth_gbps=800,2450")],
        [tiny],
        ["naive", "balanced"],
    )
    stats = run_sweep(units, out, workers=1, progress=False)
    rows = read(out)
    assert stats.ran == 6 and len(rows) == 6 * 2
    assert {(r["chip.engines.tpc.count"], r["chip.memory.hbm_bandwidth_gbps"]) for r in rows} == {
        (a, b) for a in ("4", "8", "16") for b in ("800", "2450")
    }
    assert all(r["error"] == "" and float(r["latency_us"]) > 0 for r in rows)
    # more vector cores never make the naive schedule slower here
    naive = {
        int(r["chip.engines.tpc.count"]): float(r["latency_us"])
        for r in rows
        if r["scheduler"] == "naive" and r["chip.memory.hbm_bandwidth_gbps"] == "2450"
    }
    assert naive[16] <= naive[4]


def test_an_interrupted_sweep_resumes_without_redoing_or_losing_points(tmp_path, tiny):
    out = tmp_path / "s.csv"
    units = plan("gaudi2", [parse_axis("chip.engines.tpc.count=2,4,8,16")], [tiny], ["naive"])
    run_sweep(units[:2], out, workers=1, progress=False)  # "interrupted" after two points
    with out.open("a") as fh:
        fh.write("8,gaudi2,tiny-gp")  # and a torn half-written row
    stats = run_sweep(units, out, workers=2, progress=False)
    rows = read(out)
    assert stats.skipped == 2 and stats.ran == 2
    assert sorted(r["chip.engines.tpc.count"] for r in rows) == ["16", "2", "4", "8"]
    assert run_sweep(units, out, workers=1, progress=False).ran == 0  # complete: nothing to redo
    assert Journal(out, units[0].keys).done() == {(*unit_key(u), "naive") for u in units}


def test_a_failing_point_records_its_error_and_the_sweep_goes_on(tmp_path, tiny):
    out = tmp_path / "s.csv"
    # bf16 only on the vector cores at one point: the gemms still run, but an fp8-only MME cannot run bf16 gemms.
    units = plan(
        "gaudi2", [parse_axis("chip.engines.mme.macs_per_cycle={ fp8 = 131072 },{ bf16 = 65536 }")], [tiny], ["naive"]
    )
    run_sweep(units, out, workers=1, progress=False)
    rows = read(out)
    assert len(rows) == 2
    bad = [r for r in rows if r["error"]]
    assert len(bad) == 1 and "no engine" in bad[0]["error"] and bad[0]["latency_us"] == ""


def test_a_sweep_with_a_failed_point_exits_1_after_writing_every_row(tmp_path, tiny, capsys):
    out = tmp_path / "s.csv"
    code = main(
        [
            "sweep",
            "--chip",
            "gaudi2",
            "--set",
            "chip.engines.mme.macs_per_cycle={ fp8 = 131072 },{ bf16 = 65536 }",
            "--workload",
            tiny,
            "--scheduler",
            "naive",
            "--out",
            str(out),
            "--workers",
            "1",
            "--quiet",
        ]
    )
    captured = capsys.readouterr()
    assert code == 1
    assert "2 of 2 points run" in captured.out and "1 failed" in captured.out
    assert "1 of 2 points failed" in captured.err
    assert len(read(out)) == 2


def test_a_sweep_without_failures_exits_0(tmp_path, tiny, capsys):
    code = main(
        [
            "sweep",
            "--chip",
            "gaudi1",
            "--set",
            "chip.clock_ghz=1.0",
            "--workload",
            tiny,
            "--scheduler",
            "naive",
            "--out",
            str(tmp_path / "s.csv"),
            "--workers",
            "1",
            "--quiet",
        ]
    )
    assert code == 0 and "0 failed" in capsys.readouterr().out


def test_a_gpu_profile_sweeps(tmp_path, tiny):
    # h200's tensor cores are tiled (no rows or cols): every point used to fail on rows * cols.
    out = tmp_path / "s.csv"
    stats = run_sweep(
        plan("h200", [parse_axis("chip.clock_ghz=1.5,1.83")], [tiny], ["naive", "balanced"]),
        out,
        workers=1,
        progress=False,
    )
    rows = read(out)
    assert stats.failed == 0 and len(rows) == 2 * 2
    assert all(r["error"] == "" and float(r["latency_us"]) > 0 for r in rows)
    # chips/h200.toml: one tensor engine of macs_per_cycle bf16 = 270,336 (132 SMs x 2,048); tensor + cuda = 2.
    assert {r["matrix_macs"] for r in rows} == {"270336"} and {r["engines"] for r in rows} == {"2"}


def test_matrix_macs_of_a_systolic_profile(tmp_path, tiny):
    # chips/gaudi2.toml: MMEs of 256 x 256 = 65,536 bf16 MACs per cycle; 1 or 2 of them.
    # engines: 1 or 2 MMEs + 24 TPCs + 8 DMA engines = 33 or 34.
    out = tmp_path / "s.csv"
    run_sweep(
        plan("gaudi2", [parse_axis("chip.engines.mme.count=1,2")], [tiny], ["naive"]), out, workers=1, progress=False
    )
    got = {r["chip.engines.mme.count"]: (r["matrix_macs"], r["engines"]) for r in read(out)}
    assert got == {"1": ("65536", "33"), "2": ("131072", "34")}


def test_a_record_has_a_field_per_column():
    assert [f.name for f in dataclasses.fields(SweepRecord)][1:] == list(COLUMNS)


@pytest.mark.parametrize(
    "item, words",
    [
        ("chip.engines.tpc.count=8,-4", "greater than 0"),
        ("chip.engines.tpc.cout=8", "chip.engines.tpc.cout: not a key of the profile"),
        ("chip.engines.tpc.count", "expected chip.KEY=V1,V2"),
    ],
)
def test_invalid_values_are_reported_before_anything_runs(tmp_path, tiny, item, words, capsys):
    out = tmp_path / "s.csv"
    code = main(["sweep", "--chip", "gaudi2", "--set", item, "--workload", tiny, "--out", str(out), "--quiet"])
    assert code == 2 and words in capsys.readouterr().err
    assert not out.exists()


def test_sweep_on_a_dask_cluster_gives_the_same_rows(tmp_path, tiny, capsys):
    distributed = pytest.importorskip("distributed")
    local, remote = tmp_path / "local.csv", tmp_path / "dask.csv"
    args = [
        "sweep",
        "--chip",
        "gaudi1",
        "--set",
        "chip.engines.tpc.count=4,8",
        "--workload",
        tiny,
        "--scheduler",
        "naive,balanced",
        "--quiet",
    ]
    assert main([*args, "--out", str(local), "--workers", "1"]) == 0
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as c:
        assert main([*args, "--out", str(remote), "--dask", c.scheduler_address]) == 0
    key = lambda r: (r["chip.engines.tpc.count"], r["scheduler"])  # noqa: E731
    assert sorted(read(local), key=key) == sorted(read(remote), key=key)


def test_parquet_output(tmp_path, tiny):
    pq = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "s.parquet"
    run_sweep(plan("gaudi1", [parse_axis("chip.clock_ghz=1.0,2.0")], [tiny], ["naive"]), out, workers=1, progress=False)
    table = pq.read_table(out).to_pylist()
    assert len(table) == 2 and not (tmp_path / "s.parquet.journal.csv").exists()


def test_sweep_plot_draws_parameters_gain_and_pareto(tmp_path, tiny, capsys):
    out = tmp_path / "s.csv"
    run_sweep(
        plan(
            "gaudi2",
            [parse_axis("chip.engines.tpc.count=4,16"), parse_axis("chip.clock_ghz=1.0,1.65")],
            [tiny],
            ["naive", "balanced"],
        ),
        out,
        workers=1,
        progress=False,
    )
    written = {p.name for p in sweep_plots(out, tmp_path / "fig")}
    assert {
        "sweep_chip_engines_tpc_count.png",
        "sweep_chip_clock_ghz.svg",
        "sweep_gain.png",
        "sweep_pareto.png",
    } <= written


def test_pareto_front_keeps_only_undominated_points():
    assert pareto_front([(1, 10), (2, 5), (3, 7), (4, 1), (2, 6)]) == [(1, 10), (2, 5), (4, 1)]


def test_a_sweep_file_of_another_sweep_is_refused(tmp_path, tiny):
    out = tmp_path / "s.csv"
    run_sweep(plan("gaudi1", [parse_axis("chip.clock_ghz=1.0")], [tiny], ["naive"]), out, workers=1, progress=False)
    with pytest.raises(AccelsimError, match="other columns"):
        run_sweep(
            plan("gaudi1", [parse_axis("chip.engines.tpc.count=4")], [tiny], ["naive"]), out, workers=1, progress=False
        )


def test_sweep_json_gives_the_counts_and_every_row_of_its_file_failed_ones_too(tmp_path, tiny, capsys):
    out = tmp_path / "s.csv"
    swept = "chip.engines.mme.macs_per_cycle={ fp8 = 131072 },{ bf16 = 65536 }"
    argv = ["sweep", "--chip", "gaudi2", "--set", swept, "--workload", tiny, "--scheduler", "naive"]
    code = main([*argv, "--out", str(out), "--workers", "1", "--quiet", "--json"])
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert code == 1 and "1 of 2 points failed" in captured.err
    assert (data["units"], data["ran"], data["skipped"], data["failed"]) == (2, 2, 0, 1)
    assert data["rows"] == read(out)
    assert sum(bool(r["error"]) for r in data["rows"]) == 1


def test_sweep_plot_json_lists_the_files_it_wrote(tmp_path, tiny, capsys):
    out = tmp_path / "s.csv"
    argv = ["sweep", "--chip", "gaudi1", "--set", "chip.clock_ghz=1.0,2.0", "--workload", tiny, "--scheduler", "naive"]
    assert main([*argv, "--out", str(out), "--workers", "1", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["sweep-plot", str(out), "--out", str(tmp_path / "figs"), "--json"]) == 0
    files = json.loads(capsys.readouterr().out)
    assert files and sorted(files) == sorted(str(p) for p in (tmp_path / "figs").iterdir())
