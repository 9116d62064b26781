"""Figures are checked by their data: the rows and bars drawn match the simulated results."""

import numpy as np
import pytest

import accelsim
from accelsim import plots
from accelsim.cli import main
from accelsim.lowering import lower
from accelsim.workload import load_workload


@pytest.fixture(scope="module")
def two_results():
    graph = lower(load_workload("gformer-vit", ["layers=1"]))
    chip = accelsim.load_chip("gaudi3")
    return [accelsim.run(chip, graph, s) for s in ("naive", "balanced")]


def test_timeline_draws_every_task_once_on_its_engines_row(two_results):
    r = two_results[1]
    data = plots.timeline_data(r)
    drawn = sorted(span for spans in data.bars.values() for span in spans)
    assert drawn == sorted(zip(r.start.tolist(), r.end.tolist()))
    names = r.chip.instance_names
    for (row, op), spans in data.bars.items():
        assert all(names[e].startswith(data.rows[row].rstrip("0123456789-")) for e in data.engines_per_row[row])
    # 64 TPCs are aggregated into 8 rows of 8; the 8 MMEs keep a row each.
    assert "tpc0-7" in data.rows and "tpc56-63" in data.rows and "mme7" in data.rows
    assert len(data.rows) == 8 + 8 + 8


def test_timeline_figure_has_a_row_label_per_row_and_a_legend_of_ops(two_results):
    r = two_results[0]
    fig = plots.timeline(r)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == plots.timeline_data(r).rows
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {t.op for t in r.graph.tasks}
    assert "gformer-vit" in ax.get_title() and "gaudi3" in ax.get_title() and "naive" in ax.get_title()
    assert ax.get_xlabel() == "time (us)"


def test_idle_chart_bars_are_the_idle_cycles_in_microseconds(two_results):
    fig = plots.idle_chart(two_results)
    ax = fig.axes[0]
    heights = [p.get_height() for p in ax.patches]
    kinds = list(two_results[0].chip.kinds)
    expected = [two_results[k].chip.cycles_to_us(two_results[k].idle_cycles()[kind]) for k in range(2)
                for kind in kinds]
    assert heights == pytest.approx(expected)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["naive", "balanced"]


def test_utilization_over_time_integrates_to_the_busy_time(two_results):
    r = two_results[1]
    data = plots.utilization_data(r, bins=50)
    for kind, (edges, frac) in data.items():
        engines = sum(g.count for g in r.chip.groups if g.kind == kind)
        busy = sum(s.busy_cycles for s in r.engines if s.kind == kind)
        assert np.sum(frac * np.diff(edges)) * engines == pytest.approx(busy, rel=1e-9)
        assert (frac >= -1e-12).all() and (frac <= 1 + 1e-12).all()


def test_comparison_figure_across_chips(two_results):
    graph = two_results[0].graph
    rows = list(two_results) + [accelsim.run("gaudi1", graph, s) for s in ("naive", "balanced")]
    data = plots.comparison_data(rows)
    assert set(data) == {"gaudi3", "gaudi1"} and set(data["gaudi1"]) == {"naive", "balanced"}
    fig = plots.comparison(rows)
    latency_bars = [p.get_height() for p in fig.axes[0].patches]
    assert sorted(latency_bars) == sorted(r.latency_us / 1e3 for r in rows)


def test_plot_command_writes_png_and_svg(tmp_path, capsys):
    code = main(["plot", "--chip", "gaudi1,gaudi2", "--workload", "gpt2-small", "--set", "layers=1",
                 "--schedulers", "naive,balanced", "--out", str(tmp_path)])
    assert code == 0
    names = {p.name for p in tmp_path.iterdir()}
    for stem in ("timeline_gaudi1_naive", "timeline_gaudi2_balanced", "utilization_gaudi1_balanced", "idle_gaudi2",
                 "comparison"):
        assert {f"{stem}.png", f"{stem}.svg"} <= names
    assert (tmp_path / "comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
