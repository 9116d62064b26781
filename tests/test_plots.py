"""Figures are checked by their data, against numbers worked out by hand.

The plots only read a ``Results``, so the tests build Results by hand: the tiny chip of conftest (1 GHz, so one
cycle is 0.001 us; engines mme0, tpc0, tpc1, dma0 in that order) and four tasks placed and timed by hand. Nothing
expected below comes from the code under test.

    "first" schedule (latency 150)            "second" schedule (latency 200)
    a add   tpc0  [  0, 100)                  a add   tpc0  [  0, 100)
    b add   tpc0  [100, 150)                  b add   tpc1  [  0,  50)
    c gemm  mme0  [ 20,  60)                  c gemm  mme0  [  0,  40)
    d mul   tpc1  [ 50, 150)                  d mul   tpc0  [100, 200)
"""

import numpy as np
import pytest

import accelsim
from accelsim import make_task, plots
from accelsim.cli import main
from accelsim.graph import TaskGraph
from accelsim.results import Results

from conftest import tiny_chip_dict

MME0, TPC0, TPC1, DMA0 = 0, 1, 2, 3
#: (engine, start, end) of tasks a, b, c, d
FIRST = [(TPC0, 0, 100), (TPC0, 100, 150), (MME0, 20, 60), (TPC1, 50, 150)]
SECOND = [(TPC0, 0, 100), (TPC1, 0, 50), (MME0, 0, 40), (TPC0, 100, 200)]


def hand_graph():
    return TaskGraph(
        [
            make_task("a", "add", [800]),
            make_task("b", "add", [400]),
            make_task("c", "gemm", [8, 8, 8]),
            make_task("d", "mul", [800]),
        ],
        name="hand-graph",
    )


def hand_results(chip, scheduler, placement):
    engine, start, end = (np.array(col, dtype=np.int64) for col in zip(*placement, strict=True))
    empty = np.zeros(0, dtype=np.int64)
    return Results(hand_graph(), chip, scheduler, engine, start, end, empty, empty)


@pytest.fixture
def two_results(tiny_chip):
    return [hand_results(tiny_chip, "first", FIRST), hand_results(tiny_chip, "second", SECOND)]


def test_timeline_draws_every_task_on_its_engines_row(two_results):
    data = plots.timeline_data(two_results[0])
    assert data.rows == ["mme0", "tpc0", "tpc1", "dma0"]
    assert data.engines_per_row == [[0], [1], [2], [3]]
    assert data.bars == {(1, "add"): [(0, 100), (100, 150)], (0, "gemm"): [(20, 60)], (2, "mul"): [(50, 150)]}
    assert data.latency_cycles == 150


def test_timeline_aggregates_big_groups_into_rows(two_results):
    # At most one row per group: the two TPCs share row 1, "tpc0-1", and both their tasks are drawn there.
    data = plots.timeline_data(two_results[0], max_rows_per_group=1)
    assert data.rows == ["mme0", "tpc0-1", "dma0"]
    assert data.engines_per_row == [[0], [1, 2], [3]]
    assert data.bars == {(1, "add"): [(0, 100), (100, 150)], (0, "gemm"): [(20, 60)], (1, "mul"): [(50, 150)]}


def test_timeline_rows_of_a_big_chip():
    # gaudi3: 8 MMEs (a row each), 64 TPCs (8 rows of 8), 8 DMA engines (a row each).
    chip = accelsim.load_chip("gaudi3")
    r = Results(
        TaskGraph([make_task("a", "add", [8])]),
        chip,
        "x",
        np.array([8]),
        np.array([0]),
        np.array([1]),
        np.zeros(0, dtype=np.int64),
        np.zeros(0, dtype=np.int64),
    )
    data = plots.timeline_data(r)
    assert data.rows[:10] == ["mme0", "mme1", "mme2", "mme3", "mme4", "mme5", "mme6", "mme7", "tpc0-7", "tpc8-15"]
    assert data.rows[15] == "tpc56-63" and data.engines_per_row[15] == list(range(64, 72))
    assert len(data.rows) == 8 + 8 + 8
    assert data.bars == {(8, "add"): [(0, 1)]}  # instance 8 is tpc0, in row 8


def test_timeline_figure_has_a_row_label_per_row_and_a_legend_of_ops(two_results):
    fig = plots.timeline(two_results[0])
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["mme0", "tpc0", "tpc1", "dma0"]
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {"add", "gemm", "mul"}
    assert "hand-graph" in ax.get_title() and "tiny" in ax.get_title() and "first" in ax.get_title()
    assert ax.get_xlabel() == "time (us)"
    assert ax.get_xlim() == pytest.approx((0, 0.150))  # 150 cycles at 1 GHz


def test_idle_data_and_chart_against_hand_counted_idle_cycles(two_results):
    # first, latency 150: mme0 busy 40 -> idle 110; tpc0 busy 100 + 50 -> idle 0; tpc1 busy 100 -> idle 50;
    #   dma0 idle 150. Per kind: matrix 110, vector 0 + 50 = 50, dma 150.
    # second, latency 200: mme0 busy 40 -> idle 160; tpc0 busy 100 + 100 -> idle 0; tpc1 busy 50 -> idle 150;
    #   dma0 idle 200. Per kind: matrix 160, vector 150, dma 200.
    # At 1 GHz a cycle is 0.001 us.
    assert plots.idle_data(two_results) == {
        "first": pytest.approx({"matrix": 0.110, "vector": 0.050, "dma": 0.150}),
        "second": pytest.approx({"matrix": 0.160, "vector": 0.150, "dma": 0.200}),
    }
    fig = plots.idle_chart(two_results)
    per_kind, per_engine = fig.axes[0], fig.axes[1]
    assert [p.get_height() for p in per_kind.patches] == pytest.approx([0.110, 0.050, 0.150, 0.160, 0.150, 0.200])
    assert [t.get_text() for t in per_kind.get_xticklabels()] == ["matrix", "vector", "dma"]
    # per engine mme0, tpc0, tpc1, dma0: first, then second
    assert [p.get_height() for p in per_engine.patches] == pytest.approx(
        [0.110, 0.0, 0.050, 0.150, 0.160, 0.0, 0.150, 0.200]
    )
    assert [t.get_text() for t in per_kind.get_legend().get_texts()] == ["first", "second"]


def test_utilization_over_time_against_hand_counted_bins(two_results):
    # first, 3 bins of 50 cycles: [0, 50), [50, 100), [100, 150).
    # vector (2 TPCs): tpc0 busy throughout, tpc1 from 50 -> 1/2, 2/2, 2/2 of the kind busy.
    # matrix (1 MME): busy [20, 60) -> 30/50, 10/50, 0/50. dma: never busy.
    data = plots.utilization_data(two_results[0], bins=3)
    assert set(data) == {"matrix", "vector", "dma"}
    for kind, expected in (("vector", [0.5, 1.0, 1.0]), ("matrix", [0.6, 0.2, 0.0]), ("dma", [0.0, 0.0, 0.0])):
        edges, frac = data[kind]
        assert edges.tolist() == [0, 50, 100, 150]
        assert frac.tolist() == pytest.approx(expected), kind


def test_comparison_figure_across_chips(two_results):
    # The same two schedules on a copy of the tiny chip at 2 GHz (a cycle is 0.0005 us).
    fast = accelsim.chip_from_dict(tiny_chip_dict(name="tiny2x", clock_ghz=2.0), "tiny2x.toml")
    rows = [*two_results, hand_results(fast, "first", FIRST), hand_results(fast, "second", SECOND)]
    data = plots.comparison_data(rows)
    # latency: first 150 cycles, second 200; utilization, first: mme 40/150, TPCs (150/150 + 100/150) / 2;
    # second: mme 40/200, TPCs (200/200 + 50/200) / 2; dma 0.
    assert data["tiny"]["first"].latency_us == pytest.approx(0.150)
    assert data["tiny2x"]["second"].latency_us == pytest.approx(0.100)
    assert data["tiny2x"]["first"].utilization == pytest.approx({"matrix": 4 / 15, "vector": 5 / 6, "dma": 0.0})
    assert data["tiny"]["second"].utilization == pytest.approx({"matrix": 0.2, "vector": 0.625, "dma": 0.0})
    fig = plots.comparison(rows)
    latency, matrix, vector = fig.axes[:3]
    # bars: per scheduler, per chip (tiny, tiny2x); latency in ms
    assert [p.get_height() for p in latency.patches] == pytest.approx([150e-6, 75e-6, 200e-6, 100e-6])
    assert [p.get_height() for p in matrix.patches] == pytest.approx([400 / 15, 400 / 15, 20.0, 20.0])
    assert [p.get_height() for p in vector.patches] == pytest.approx([250 / 3, 250 / 3, 62.5, 62.5])
    assert [t.get_text() for t in latency.get_xticklabels()] == ["tiny", "tiny2x"]


def test_plot_command_writes_png_and_svg(tmp_path, capsys):
    code = main(
        [
            "plot",
            "--chip",
            "gaudi1,gaudi2",
            "--workload",
            "gpt2-small",
            "--set",
            "layers=1",
            "--scheduler",
            "naive,balanced",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    names = {p.name for p in tmp_path.iterdir()}
    for stem in (
        "timeline_gaudi1_naive",
        "timeline_gaudi2_balanced",
        "utilization_gaudi1_balanced",
        "idle_gaudi2",
        "comparison",
    ):
        assert {f"{stem}.png", f"{stem}.svg"} <= names
    assert (tmp_path / "comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
