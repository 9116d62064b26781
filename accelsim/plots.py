"""Figures with matplotlib: engine timelines, idle time, utilization over time, and chip comparisons.

Each figure is drawn from a plain data function (``*_data``) that tests check against the results, so what is
drawn is what was simulated. Every function returns the matplotlib Figure; ``save`` writes PNG and SVG.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from .generation import Generation
from .outputs import check_output_dir, safe_name, write_failed
from .pipeline import PipelineRun
from .results import Results
from .trace import busy_engines_by_kind
from .training import TrainStep

#: Engine groups with more instances than this are drawn as aggregated rows of several engines each.
MAX_ROWS_PER_GROUP = 8


@dataclass(frozen=True)
class TimelineData:
    """Rows top to bottom, and per row and op the [start, end) cycle intervals drawn."""

    rows: list[str]
    engines_per_row: list[list[int]]
    bars: dict[tuple[int, str], list[tuple[int, int]]] = field(default_factory=dict)
    latency_cycles: int = 0


def timeline_data(results: Results, max_rows_per_group: int = MAX_ROWS_PER_GROUP) -> TimelineData:
    chip = results.chip
    rows: list[str] = []
    members: list[list[int]] = []
    for g in chip.groups:
        per_row = -(-g.count // max_rows_per_group)
        for k in range(0, g.count, per_row):
            ids = list(range(g.first_instance + k, g.first_instance + min(g.count, k + per_row)))
            members.append(ids)
            rows.append(f"{g.name}{k}" if per_row == 1 else f"{g.name}{k}-{k + len(ids) - 1}")
    row_of = {e: r for r, ids in enumerate(members) for e in ids}
    data = TimelineData(rows, members, latency_cycles=results.latency_cycles)
    ops = [t.op for t in results.graph.tasks]
    for i, (e, s, f) in enumerate(
        zip(results.engine.tolist(), results.start.tolist(), results.end.tolist(), strict=True)
    ):
        data.bars.setdefault((row_of[e], ops[i]), []).append((s, f))
    return data


def plain(text: object) -> str:
    """``text`` as matplotlib is to draw it, literally: every ``$`` escaped, so a user's name (a chip called
    ``a$b$c`` or ``$\\frac{``) never switches on mathtext, which would mangle or refuse it."""
    return str(text).replace("$", r"\$")


def _title(results: Results, what: str) -> str:
    return f"{what}: {plain(results.graph.name)} on {plain(results.chip.name)}, {plain(results.scheduler)} scheduler"


def _op_colours(ops: Sequence[str]) -> dict[str, tuple]:
    cmap = plt.get_cmap("tab20")
    return {op: cmap(k % 20) for k, op in enumerate(sorted(set(ops)))}


def timeline(results: Results, max_rows_per_group: int = MAX_ROWS_PER_GROUP) -> Figure:
    """One row per engine (aggregated rows for big groups), tasks coloured by op, idle time left blank."""
    data = timeline_data(results, max_rows_per_group)
    us_per_cycle = results.chip.cycles_to_us(1)
    colours = _op_colours([op for _, op in data.bars])
    fig, ax = plt.subplots(figsize=(12, 1.0 + 0.32 * len(data.rows)))
    for (row, op), spans in sorted(data.bars.items()):
        ax.broken_barh(
            [(s * us_per_cycle, max(f - s, 1) * us_per_cycle) for s, f in spans],
            (row - 0.4, 0.8),
            facecolors=colours[op],
            linewidth=0,
            label=plain(op),
        )
    ax.set_yticks(range(len(data.rows)), [plain(r) for r in data.rows])
    ax.set_ylim(len(data.rows) - 0.5, -0.5)
    ax.set_xlim(0, max(data.latency_cycles, 1) * us_per_cycle)
    ax.set_xlabel("time (us)")
    ax.set_ylabel("engine")

    def to_cycles(us: ArrayLike) -> np.ndarray:
        return np.asarray(us) / us_per_cycle

    def to_us(cycles: ArrayLike) -> np.ndarray:
        return np.asarray(cycles) * us_per_cycle

    secondary = ax.secondary_xaxis("top", functions=(to_cycles, to_us))
    secondary.set_xlabel("cycles")
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    ax.legend(unique.values(), unique.keys(), title="op", loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
    ax.set_title(_title(results, "Engine timeline") + f" ({results.latency_us:,.1f} us)")
    fig.tight_layout()
    return fig


def idle_data(results: Sequence[Results]) -> dict[str, dict[str, float]]:
    """Per scheduler, idle time per engine kind in engine-microseconds."""
    return {r.scheduler: {k: r.chip.cycles_to_us(v) for k, v in r.idle_cycles().items()} for r in results}


def idle_chart(results: Sequence[Results]) -> Figure:
    """Idle time per engine kind, the schedulers side by side; a second panel per engine instance."""
    data = idle_data(results)
    kinds = list(results[0].chip.kinds)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(13, 4.5), gridspec_kw={"width_ratios": [1, 2]})
    width = 0.8 / len(results)
    x = np.arange(len(kinds))
    for k, r in enumerate(results):
        ax.bar(x + k * width, [data[r.scheduler].get(kind, 0.0) for kind in kinds], width, label=plain(r.scheduler))
        per_engine = [r.chip.cycles_to_us(s.idle_cycles) for s in r.engines]
        ax2.bar(np.arange(len(per_engine)) + k * width, per_engine, width, label=plain(r.scheduler))
    ax.set_xticks(x + width * (len(results) - 1) / 2, kinds)
    ax.set_ylabel("idle time (engine-us, summed over the kind)")
    ax.set_title("Idle time per engine kind")
    ax.legend(title="scheduler")
    names = results[0].chip.instance_names
    step = max(1, len(names) // 24)
    ax2.set_xticks(range(0, len(names), step), [plain(n) for n in names[::step]], rotation=90, fontsize="small")
    ax2.set_ylabel("idle time (us)")
    ax2.set_title("Idle time per engine")
    ax2.legend(title="scheduler")
    fig.suptitle(f"Engine idle time: {plain(results[0].graph.name)} on {plain(results[0].chip.name)}")
    fig.tight_layout()
    return fig


def phase_idle_data(generation: Generation) -> dict[str, dict[str, float]]:
    """Per phase of a generation, each engine kind's idle time (engine-ms summed over the kind) and utilization."""
    return {
        phase: {
            **{f"idle_ms.{k}": v for k, v in p.idle_ms.items()},
            **{f"util.{k}": v for k, v in p.utilization.items()},
        }
        for phase, p in (("prefill", generation.prefill), ("decode", generation.decode))
    }


def phase_idle_chart(generation: Generation) -> Figure:
    """Idle time and utilization per engine kind, prefill and decode side by side: where decode leaves the matrix
    engines waiting on HBM."""
    phases = {"prefill": generation.prefill, "decode": generation.decode}
    kinds = list(generation.prefill.utilization)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    x = np.arange(len(kinds))
    width = 0.4
    for k, (name, phase) in enumerate(phases.items()):
        label = f"{name} ({phase.latency_ms:,.1f} ms)"
        ax.bar(x + k * width, [phase.idle_ms[kind] for kind in kinds], width, label=label)
        ax2.bar(x + k * width, [100 * phase.utilization[kind] for kind in kinds], width, label=label)
    for a in (ax, ax2):
        a.set_xticks(x + width / 2, kinds)
        a.legend(title="phase")
    ax.set_ylabel("idle time (engine-ms, summed over the kind)")
    ax.set_title("Idle time per engine kind")
    ax2.set_ylabel("utilization (%)")
    ax2.set_title("Utilization per engine kind")
    fig.suptitle(
        f"{plain(generation.model)} on {plain(generation.chip)}: batch {generation.batch}, "
        f"{generation.input_tokens} in, {generation.output_tokens} out, {generation.dtype}"
    )
    fig.tight_layout()
    return fig


def pipeline_chart(run: PipelineRun, title: str = "") -> Figure:
    """A pipeline step's timeline: one row per stage, each micro-batch's forward (light) and backward (dark) pass,
    the bubble white."""
    fig, ax = plt.subplots(figsize=(12, 0.6 * run.stages + 1.8))
    colours = {"F": "#8fbfe0", "B": "#2b6a99"}
    for p in run.passes:
        ax.barh(p.stage, p.end - p.start, left=p.start, color=colours[p.kind], edgecolor="white", linewidth=0.5)
        if run.micro_batches <= 32:
            ax.text((p.start + p.end) / 2, p.stage, str(p.micro_batch), ha="center", va="center", fontsize="x-small")
    ax.set_yticks(range(run.stages), [f"stage {s}" for s in range(run.stages)])
    ax.invert_yaxis()
    ax.set_xlabel("cycles")
    ax.set_title(
        (title + ": " if title else "")
        + f"1F1B, {run.stages} stages x {run.micro_batches} micro-batches, bubble {run.bubble:.0%}"
    )
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colours.values()]
    ax.legend(handles, ["forward", "backward"], loc="upper right", fontsize="small")
    fig.tight_layout()
    return fig


def train_breakdown(step: TrainStep) -> Figure:
    """A training step as one bar: computation, each group's exposed communication, the pipeline's bubble."""
    parts = step.breakdown()
    fig, ax = plt.subplots(figsize=(10, 2.6))
    left = 0.0
    colours = ["#2b6a99", "#e07b39", "#c23b22", "#bbbbbb"]
    for (name, ms), colour in zip(parts.items(), colours, strict=False):
        ax.barh(0, ms, left=left, color=colour, label=f"{name} {ms:,.1f} ms")
        left += ms
    ax.set_yticks([])
    ax.set_xlabel("ms")
    lay = step.layout
    ax.set_title(
        f"{plain(step.model)} on {plain(step.system)}, tp={lay.tp} pp={lay.pp} dp={lay.dp}: step "
        f"{step.step_ms:,.1f} ms, MFU {step.mfu:.0%}"
    )
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.45), ncol=4, fontsize="small")
    fig.tight_layout()
    return fig


def utilization_data(results: Results, bins: int = 200) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per engine kind: bin edges (cycles) and the mean fraction of that kind's engines busy in each bin."""
    span = max(results.latency_cycles, 1)
    edges = np.linspace(0, span, bins + 1)
    counts = {g.kind: 0 for g in results.chip.groups}
    for g in results.chip.groups:
        counts[g.kind] += g.count
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    steps = busy_engines_by_kind(results)
    for kind, total in counts.items():
        cycles, busy = steps.get(kind, ([0], [0]))
        t = np.asarray(cycles + [span], dtype=float)
        level = np.asarray(busy, dtype=float)
        # Integrate the step function over each bin: cumulative busy engine-cycles at every edge.
        cum = np.concatenate([[0.0], np.cumsum(level * np.diff(t))])
        at_edges = np.interp(edges, t, cum)
        out[kind] = (edges, np.diff(at_edges) / np.diff(edges) / total)
    return out


def utilization_over_time(results: Results, bins: int = 200) -> Figure:
    data = utilization_data(results, bins)
    us_per_cycle = results.chip.cycles_to_us(1)
    fig, ax = plt.subplots(figsize=(12, 4))
    for kind, (edges, frac) in data.items():
        ax.stairs(frac * 100, edges * us_per_cycle, label=plain(kind), linewidth=1.5)
    ax.set_ylim(0, 105)
    ax.set_xlabel("time (us)")
    ax.set_ylabel("engines busy (% of the kind)")
    ax.legend(title="engine kind")
    ax.set_title(_title(results, "Utilization over time"))
    fig.tight_layout()
    return fig


@dataclass(frozen=True)
class ComparisonPoint:
    """One bar group of the chip comparison: a scheduler's latency and per-kind utilization on one chip."""

    latency_us: float
    utilization: dict[str, float]  # mean busy fraction per engine kind


def comparison_data(rows: Sequence[Results]) -> dict[str, dict[str, ComparisonPoint]]:
    """chip -> scheduler -> latency (us) and utilization per kind."""
    out: dict[str, dict[str, ComparisonPoint]] = {}
    for r in rows:
        out.setdefault(r.chip.name, {})[r.scheduler] = ComparisonPoint(r.latency_us, r.utilization())
    return out


def comparison(rows: Sequence[Results]) -> Figure:
    """Latency and utilization of each scheduler for one workload across chips."""
    data = comparison_data(rows)
    chips = list(data)
    schedulers = list(dict.fromkeys(r.scheduler for r in rows))
    kinds = [k for k in ("matrix", "vector") if any(k in v.utilization for c in data.values() for v in c.values())]
    fig, axes = plt.subplots(1, 1 + len(kinds), figsize=(5 + 4 * len(kinds), 4.5))
    width = 0.8 / len(schedulers)
    x = np.arange(len(chips))
    for k, s in enumerate(schedulers):
        lat = [data[c][s].latency_us / 1e3 if s in data[c] else 0 for c in chips]
        axes[0].bar(x + k * width, lat, width, label=plain(s))
        for j, kind in enumerate(kinds):
            util = [data[c][s].utilization.get(kind, 0) * 100 if s in data[c] else 0 for c in chips]
            axes[1 + j].bar(x + k * width, util, width, label=plain(s))
    axes[0].set_ylabel("latency (ms)")
    axes[0].set_title("Latency")
    for j, kind in enumerate(kinds):
        axes[1 + j].set_ylabel(f"{kind} engines busy (%)")
        axes[1 + j].set_ylim(0, 105)
        axes[1 + j].set_title(f"{kind} utilization")
    for ax in axes:
        ax.set_xticks(x + width * (len(schedulers) - 1) / 2, [plain(c) for c in chips])
        ax.legend(title="scheduler", fontsize="small")
    fig.suptitle(f"{plain(rows[0].graph.name)}: schedulers across chips")
    fig.tight_layout()
    return fig


def save(fig: Figure, out_dir: str | Path, stem: str) -> list[Path]:
    """Write ``stem.png`` and ``stem.svg`` into ``out_dir`` (created if need be) and close the figure.

    ``stem`` is passed through ``safe_name``: a chip or scheduler name in it can never make a path that leaves
    ``out_dir``. A folder that cannot be created or written is an AccelsimError."""
    out = check_output_dir(out_dir, "--out")
    stem = safe_name(stem)
    paths = [out / f"{stem}.png", out / f"{stem}.svg"]
    try:
        out.mkdir(parents=True, exist_ok=True)
        for p in paths:
            fig.savefig(p, dpi=110)
    except OSError as exc:
        raise write_failed(out, exc, "--out") from None
    finally:
        plt.close(fig)
    return paths
