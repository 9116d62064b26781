"""Figures of a sweep file: latency and utilization against each swept parameter, the balanced-over-naive gain
across the space, and the Pareto front of latency against a cost proxy."""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from .errors import AccelsimError
from .plots import save
from .sweep import COLUMNS


def read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """(swept keys, rows without errors) of a sweep's CSV or Parquet file."""
    if not path.exists():
        raise AccelsimError("file not found", source=str(path))
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path).to_pylist()
        rows = [{k: "" if v is None else str(v) for k, v in r.items()} for r in table]
        header = list(table[0]) if table else []
    else:
        with path.open(newline="") as fh:
            reader = csv.DictReader(fh)
            rows, header = list(reader), list(reader.fieldnames or [])
    if not header or header[-len(COLUMNS):] != list(COLUMNS):
        raise AccelsimError("not a sweep file (its columns are not accelsim sweep's)", source=str(path))
    return header[: len(header) - len(COLUMNS)], [r for r in rows if not r["error"]]


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points no other point beats on both cost and latency (lower is better for both), by cost."""
    front: list[tuple[float, float]] = []
    for cost, lat in sorted(points):
        if not front or lat < front[-1][1]:
            front.append((cost, lat))
    return front


def gains(rows: list[dict[str, str]], keys: list[str]) -> dict[tuple, float]:
    """Per (point, workload): naive latency / balanced latency."""
    by: dict[tuple, dict[str, float]] = {}
    for r in rows:
        by.setdefault((*(r[k] for k in keys), r["workload"]), {})[r["scheduler"]] = float(r["latency_us"])
    return {p: v["naive"] / v["balanced"] for p, v in by.items() if "naive" in v and "balanced" in v}


def sweep_plots(path: Path, out: Path) -> list[Path]:
    keys, rows = read_rows(path)
    if not rows:
        raise AccelsimError("no successful rows to plot", source=str(path))
    written: list[Path] = []
    workloads = sorted({r["workload"] for r in rows})
    schedulers = list(dict.fromkeys(r["scheduler"] for r in rows))
    for key in keys:
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
        for w in workloads:
            for s in schedulers:
                sel = [r for r in rows if r["workload"] == w and r["scheduler"] == s]
                xs = sorted({float(r[key]) for r in sel})
                lat = [np.mean([float(r["latency_us"]) for r in sel if float(r[key]) == x]) / 1e3 for x in xs]
                ax1.plot(xs, lat, "o-", label=f"{w}, {s}")
                for kind, style in (("util_matrix", "-"), ("util_vector", "--")):
                    u = [np.mean([float(r[kind]) for r in sel if float(r[key]) == x]) * 100 for x in xs]
                    ax2.plot(xs, u, "o" + style, label=f"{kind[5:]}: {w}, {s}")
        ax1.set_xlabel(key)
        ax1.set_ylabel("latency (ms, mean over the other parameters)")
        ax1.set_title(f"Latency against {key}")
        ax1.legend(fontsize="small")
        ax2.set_xlabel(key)
        ax2.set_ylabel("engines busy (%)")
        ax2.set_ylim(0, 105)
        ax2.set_title(f"Utilization against {key} (solid: matrix, dashed: vector)")
        ax2.legend(fontsize="x-small")
        fig.tight_layout()
        written += save(fig, out, f"sweep_{key.replace('.', '_')}")
    gain = gains(rows, keys)
    if gain:
        labels = [", ".join(f"{k}={v}" for k, v in zip(keys, p[:-1], strict=True)) + f" [{p[-1]}]" for p in gain]
        fig, ax = plt.subplots(figsize=(max(6, 0.5 * len(gain)), 3.5 + 0.075 * max(map(len, labels))))
        ax.bar(range(len(gain)), list(gain.values()))
        ax.axhline(1.0, color="grey", linewidth=0.8)
        ax.set_xticks(range(len(gain)), labels, rotation=90, fontsize="small")
        ax.set_ylabel("speedup of balanced over naive (x)")
        ax.set_title("Balanced over naive across the design space")
        fig.tight_layout()
        written += save(fig, out, "sweep_gain")
    fig, ax = plt.subplots(figsize=(7, 5))
    for w in workloads:
        for s in schedulers:
            pts = [(float(r["peak_bf16_tflops"]), float(r["latency_us"]) / 1e3) for r in rows
                   if r["workload"] == w and r["scheduler"] == s]
            ax.scatter([c for c, _ in pts], [lat for _, lat in pts], s=18, alpha=0.6, label=f"{w}, {s}")
            front = pareto_front(pts)
            ax.step([c for c, _ in front], [lat for _, lat in front], where="post", linewidth=1.5)
    ax.set_xlabel("cost proxy: peak BF16 TFLOPS (matrix + vector)")
    ax.set_ylabel("latency (ms)")
    ax.set_title("Pareto front of latency against peak compute")
    ax.legend(fontsize="small")
    fig.tight_layout()
    written += save(fig, out, "sweep_pareto")
    return written
