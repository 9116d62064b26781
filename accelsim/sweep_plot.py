"""Figures of a sweep file: latency and utilization against each swept parameter, the balanced-over-naive gain
across the space, and the Pareto front of latency against a cost proxy.

A file is read leniently: a row that cannot be drawn (a cell that is not a number where one is needed, an empty
cell, a zero latency, too few or too many cells) is left out with a warning line on stderr naming the file and
the line; only a file with nothing drawable left is an error.
"""

from __future__ import annotations

import csv
import io
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from .config import read_input
from .errors import AccelsimError
from .limits import MAX_RESULTS_BYTES
from .outputs import check_output_dir, safe_name
from .plots import plain, save
from .sweep import COLUMNS, KEY_COLUMNS, read_parquet

#: The columns of sweep files written before the ``chip`` column was added; still read.
LEGACY_COLUMNS = tuple(c for c in COLUMNS if c != "chip")
#: Columns that must hold a number in a row that is drawn, and the least value each may take.
NUMERIC = {"latency_us": 0.0, "util_matrix": 0.0, "util_vector": 0.0, "peak_bf16_tflops": 0.0}

Warn = Callable[[str], None]


def warn_stderr(message: str) -> None:
    print(f"accelsim: warning: {message}", file=sys.stderr)


@dataclass(frozen=True)
class SweepRows:
    """A sweep file as plotted: the swept keys, and the drawable rows (cells as strings, one per key)."""

    keys: list[str]
    rows: list[dict[str, str]]
    left_out: int  # rows left out with a warning
    failed: int  # rows recorded with an error


def _raw_rows(path: Path) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """(header, [(where, cells)]) of a CSV or Parquet file; ``where`` is ``line N`` or ``row N``."""
    raw = read_input(path, "a sweep's results file", MAX_RESULTS_BYTES)  # no FIFO, no device, nothing endless
    if path.suffix == ".parquet":
        table = read_parquet(path, raw)
        header = [str(c) for c in table.column_names]
        return header, [
            (f"row {i + 1}", ["" if v is None else str(v) for v in r.values()]) for i, r in enumerate(table.to_pylist())
        ]
    try:
        reader = csv.reader(io.StringIO(raw.decode("utf-8", errors="replace"), newline=""))
        header = next(reader, [])
        rows = []
        for cells in reader:
            if cells:
                rows.append((f"line {reader.line_num}", cells))
    except csv.Error as exc:
        raise AccelsimError(f"not a readable CSV file ({exc})", source=str(path)) from None
    return header, rows


def file_rows(path: Path) -> list[dict[str, str]]:
    """Every row of a sweep's CSV or Parquet file as written, failed ones too (``accelsim sweep --json``)."""
    header, raw = _raw_rows(path)
    return [dict(zip(header, cells, strict=False)) for _, cells in raw]


def read_sweep(path: Path, warn: Warn = warn_stderr) -> SweepRows:
    """The drawable rows of a sweep's CSV or Parquet file; a key's last row counts (a retried failure's)."""
    if not path.exists():
        raise AccelsimError("file not found", source=str(path))
    if path.is_dir():
        raise AccelsimError("is a folder, expected a sweep's .csv or .parquet file", source=str(path))
    header, raw = _raw_rows(path)
    for columns in (COLUMNS, LEGACY_COLUMNS):
        if len(header) >= len(columns) and tuple(header[-len(columns) :]) == columns:
            break
    else:
        raise AccelsimError(
            f"not a sweep file (its columns are not accelsim sweep's: ..., {', '.join(COLUMNS)})", source=str(path)
        )
    keys = header[: len(header) - len(columns)]
    named_by = [*keys, *(c for c in KEY_COLUMNS if c in columns)]
    latest: dict[tuple[str, ...], tuple[str, dict[str, str]]] = {}
    left_out = failed = 0
    for where, cells in raw:
        if len(cells) != len(header):
            warn(f"{path}: {where}: {len(cells)} cells where the header has {len(header)}; row left out")
            left_out += 1
            continue
        row = dict(zip(header, cells, strict=True))
        key = tuple(row[c] for c in named_by)
        latest.pop(key, None)
        latest[key] = (where, row)
    rows = []
    for where, row in latest.values():
        if row["error"]:
            failed += 1
            continue
        problem = _problem(row, keys)
        if problem:
            warn(f"{path}: {where}: {problem}; row left out")
            left_out += 1
            continue
        row.setdefault("chip", "")
        rows.append(row)
    if failed:
        warn(f"{path}: {failed} row{'s' if failed > 1 else ''} recorded with an error left out")
    return SweepRows(keys, rows, left_out, failed)


def _problem(row: dict[str, str], keys: list[str]) -> str:
    """Why a row cannot be drawn, or ''."""
    for column in (*keys, "workload", "scheduler"):
        if not row[column].strip():
            return f"empty {column}"
    for column, least in NUMERIC.items():
        text = row[column].strip()
        if not text:
            return f"empty {column}"
        try:
            value = float(text)
        except ValueError:
            return f"{column} is not a number: {text[:40]!r}"
        if not math.isfinite(value) or value < least or (column == "latency_us" and value == 0):
            return (
                f"{column} must be {'greater than' if column == 'latency_us' else 'at least'} {least:g}, "
                f"got {text[:40]}"
            )
    return ""


def read_rows(path: Path, warn: Warn = warn_stderr) -> tuple[list[str], list[dict[str, str]]]:
    """(swept keys, drawable rows) of a sweep's CSV or Parquet file."""
    table = read_sweep(path, warn)
    return table.keys, table.rows


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points no other point beats on both cost and latency (lower is better for both), by cost."""
    front: list[tuple[float, float]] = []
    for cost, lat in sorted(points):
        if not front or lat < front[-1][1]:
            front.append((cost, lat))
    return front


def gains(rows: list[dict[str, str]], keys: list[str]) -> dict[tuple, float]:
    """Per (point, chip, workload): naive latency / balanced latency."""
    by: dict[tuple, dict[str, float]] = {}
    for r in rows:
        point = (*(r[k] for k in keys), r.get("chip", ""), r["workload"])
        by.setdefault(point, {})[r["scheduler"]] = float(r["latency_us"])
    return {p: v["naive"] / v["balanced"] for p, v in by.items() if "naive" in v and "balanced" in v}


def _axis_positions(values: list[str]) -> tuple[dict[str, float], list[str] | None]:
    """x position of each value: the number itself when every value is one, else 0, 1, ... by first appearance
    (with the values as tick labels)."""
    try:
        numbers = {v: float(v) for v in values}
        if all(math.isfinite(x) for x in numbers.values()):
            return numbers, None
    except ValueError:
        pass
    order = list(dict.fromkeys(values))
    return {v: float(i) for i, v in enumerate(order)}, order


def _unique_stem(stem: str, used: set[str]) -> str:
    stem = safe_name(stem)
    out, n = stem, 2
    while out in used:
        out, n = f"{stem}-{n}", n + 1
    used.add(out)
    return out


def sweep_plots(path: Path, out: Path, warn: Warn = warn_stderr) -> list[Path]:
    check_output_dir(out, "--out")
    table = read_sweep(path, warn)
    keys, rows = table.keys, table.rows
    if not rows:
        why = (
            (f"{table.left_out} left out (see the warnings)" if table.left_out else "")
            + (", " if table.left_out and table.failed else "")
            + (f"{table.failed} recorded with an error" if table.failed else "")
        )
        raise AccelsimError(f"no rows to plot{f' ({why})' if why else ''}", source=str(path))
    written: list[Path] = []
    used: set[str] = set()
    chips = list(dict.fromkeys(r["chip"] for r in rows))
    workloads = sorted({r["workload"] for r in rows})
    schedulers = list(dict.fromkeys(r["scheduler"] for r in rows))
    series = [(c, w, s) for c in chips for w in workloads for s in schedulers]

    def label(c: str, w: str, s: str) -> str:
        return plain(f"{c}, {w}, {s}" if len(chips) > 1 else f"{w}, {s}")

    for key in keys:
        position, ticks = _axis_positions([r[key] for r in rows])
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
        for c, w, s in series:
            sel = [r for r in rows if (r["chip"], r["workload"], r["scheduler"]) == (c, w, s)]
            if not sel:
                continue
            xs = sorted({position[r[key]] for r in sel})
            lat = [np.mean([float(r["latency_us"]) for r in sel if position[r[key]] == x]) / 1e3 for x in xs]
            ax1.plot(xs, lat, "o-", label=label(c, w, s))
            for kind, style in (("util_matrix", "-"), ("util_vector", "--")):
                u = [np.mean([float(r[kind]) for r in sel if position[r[key]] == x]) * 100 for x in xs]
                ax2.plot(xs, u, "o" + style, label=f"{kind[5:]}: {label(c, w, s)}")
        for ax in (ax1, ax2):
            ax.set_xlabel(plain(key))
            if ticks is not None:
                ax.set_xticks(range(len(ticks)), [plain(t) for t in ticks])
        ax1.set_ylabel("latency (ms, mean over the other parameters)")
        ax1.set_title(f"Latency against {plain(key)}")
        ax1.legend(fontsize="small")
        ax2.set_ylabel("engines busy (%)")
        ax2.set_ylim(0, 105)
        ax2.set_title(f"Utilization against {plain(key)} (solid: matrix, dashed: vector)")
        ax2.legend(fontsize="x-small")
        fig.tight_layout()
        written += save(fig, out, _unique_stem(f"sweep_{key.replace('.', '_')}", used))
    gain = gains(rows, keys)
    if gain:
        labels = [
            plain(
                ", ".join(f"{k}={v}" for k, v in zip(keys, p[:-2], strict=True))
                + (f" {p[-2]}" if len(chips) > 1 else "")
                + f" [{p[-1]}]"
            )
            for p in gain
        ]
        fig, ax = plt.subplots(figsize=(max(6, 0.5 * len(gain)), 3.5 + 0.075 * max(map(len, labels))))
        ax.bar(range(len(gain)), list(gain.values()))
        ax.axhline(1.0, color="grey", linewidth=0.8)
        ax.set_xticks(range(len(gain)), labels, rotation=90, fontsize="small")
        ax.set_ylabel("speedup of balanced over naive (x)")
        ax.set_title("Balanced over naive across the design space")
        fig.tight_layout()
        written += save(fig, out, _unique_stem("sweep_gain", used))
    fig, ax = plt.subplots(figsize=(7, 5))
    for c, w, s in series:
        pts = [
            (float(r["peak_bf16_tflops"]), float(r["latency_us"]) / 1e3)
            for r in rows
            if (r["chip"], r["workload"], r["scheduler"]) == (c, w, s)
        ]
        if not pts:
            continue
        ax.scatter([p for p, _ in pts], [lat for _, lat in pts], s=18, alpha=0.6, label=label(c, w, s))
        front = pareto_front(pts)
        ax.step([p for p, _ in front], [lat for _, lat in front], where="post", linewidth=1.5)
    ax.set_xlabel("cost proxy: peak BF16 TFLOPS (matrix + vector)")
    ax.set_ylabel("latency (ms)")
    ax.set_title("Pareto front of latency against peak compute")
    ax.legend(fontsize="small")
    fig.tight_layout()
    written += save(fig, out, _unique_stem("sweep_pareto", used))
    return written
