"""Design-space sweeps: every combination of chip-profile values x workloads x schedulers, on local processes or
an existing Dask cluster, streamed to a CSV (or Parquet) file that an interrupted sweep resumes from.

A point is one combination of swept values; a unit of work is (point, workload) and yields one row per scheduler.
Rows are appended as units finish; a rerun with the same arguments skips the units already in the file.
"""

from __future__ import annotations

import copy
import csv
import itertools
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .chip import MatrixEngines, chip_from_dict
from .config import read_toml
from .errors import AccelsimError
from .graph import TaskGraph
from .resources import resolve


@dataclass(frozen=True)
class Axis:
    key: str  # dotted path into the chip profile as written in its TOML
    values: tuple[object, ...]


@dataclass(frozen=True)
class Unit:
    """One (point, workload) to simulate under every scheduler. Picklable, for worker processes and Dask."""

    base: dict
    keys: tuple[str, ...]
    values: tuple[object, ...]
    workload: str
    schedulers: tuple[str, ...]
    plugins: tuple[str, ...] = ()


def parse_axis(item: str) -> Axis:
    """``engines.tpc.count=8,16,24`` -> Axis; values are TOML literals (numbers, strings, booleans)."""
    import tomllib

    if "=" not in item:
        raise AccelsimError(f"expected KEY=V1,V2,..., got {item!r}", source="--set")
    key, raw = (s.strip() for s in item.split("=", 1))
    values = []
    for text in (v.strip() for v in raw.split(",")):
        if not text:
            raise AccelsimError(f"empty value in {item!r}", source="--set", key=key)
        try:
            values.append(tomllib.loads(f"v = {text}")["v"])
        except tomllib.TOMLDecodeError:
            values.append(text)
    return Axis(key, tuple(values))


def with_value(base: dict, key: str, value: object, source: str) -> dict:
    """A copy of the profile dict with ``key`` (which must exist) set to ``value``."""
    out = copy.deepcopy(base)
    node = out
    parts = key.split(".")
    for depth, part in enumerate(parts):
        if not isinstance(node, dict) or part not in node:
            here = ".".join(parts[:depth]) or "(top level)"
            keys = ", ".join(sorted(node)) if isinstance(node, dict) else "none (not a table)"
            raise AccelsimError(f"{key!r} is not a key of the profile; keys under {here}: {keys}", source=source,
                                key=key)
        if depth == len(parts) - 1:
            node[part] = value
        else:
            node = node[part]
    return out


def point_profile(base: dict, keys: Sequence[str], values: Sequence[object], source: str) -> dict:
    data = base
    for k, v in zip(keys, values, strict=True):
        data = with_value(data, k, v, source)
    return data


@lru_cache(maxsize=16)
def _lowered(workload: str) -> TaskGraph:
    from .lowering import lower
    from .workload import load_workload

    return lower(load_workload(workload))


@dataclass(frozen=True)
class SweepRecord:
    """One row of the sweep file: a point's swept values, a workload and a scheduler, and what the simulation gave
    (all None, with ``error`` set, when the point failed)."""

    point: tuple[tuple[str, object], ...]  # (swept key, value) in the order of the axes
    workload: str
    scheduler: str
    latency_us: float | None = None
    latency_cycles: int | None = None
    util_matrix: float | None = None
    util_vector: float | None = None
    util_dma: float | None = None
    lower_bound_cycles: int | None = None
    peak_bf16_tflops: float | None = None
    engines: int | None = None
    matrix_macs: int | None = None  # MACs per cycle of all matrix engines together (see ``matrix_macs``)
    error: str = ""

    def csv_row(self) -> dict[str, object]:
        """The row as the CSV journal writes it: swept keys, then COLUMNS; a None is left out (an empty cell)."""
        out: dict[str, object] = dict(self.point)
        for name in COLUMNS:
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


def matrix_macs(spec: MatrixEngines) -> int:
    """MACs per cycle of one matrix engine at bf16 (the dtype of the ``peak_bf16_tflops`` column), or at its
    fastest dtype when it has no bf16. Every matrix engine has ``macs_per_cycle``; only systolic arrays have rows
    and cols (a GPU's tiled tensor cores do not)."""
    rates = spec.macs_per_cycle
    return rates["bf16"] if "bf16" in rates else max(rates.values())


def run_unit(unit: Unit) -> list[SweepRecord]:
    """Simulate one (point, workload) under every scheduler; a failure becomes an ``error`` in each row."""
    from .compare import compare
    from .registry import load_plugin

    for plugin in unit.plugins:
        load_plugin(plugin)
    point = tuple(zip(unit.keys, unit.values, strict=True))
    try:
        chip = chip_from_dict(point_profile(unit.base, unit.keys, unit.values, "sweep"), "sweep point")
        cmp = compare(chip, _lowered(unit.workload), list(unit.schedulers))
        head = chip.headline()
        peak = head.peak_matrix_tflops.get("bf16", 0.0) + head.peak_vector_tflops.get("bf16", 0.0)
        engines = sum(g.count for g in chip.groups)
        array = sum(g.count * matrix_macs(g.spec) for g in chip.groups if isinstance(g.spec, MatrixEngines))
        rows = []
        for r in cmp.results:
            util = r.utilization()
            rows.append(SweepRecord(
                point, unit.workload, r.scheduler, latency_us=round(r.latency_us, 4),
                latency_cycles=r.latency_cycles, util_matrix=round(util.get("matrix", 0.0), 5),
                util_vector=round(util.get("vector", 0.0), 5), util_dma=round(util.get("dma", 0.0), 5),
                lower_bound_cycles=cmp.bound.cycles, peak_bf16_tflops=round(peak, 3), engines=engines,
                matrix_macs=array))
        return rows
    except Exception as exc:  # a failing point is recorded and the sweep goes on
        message = f"{type(exc).__name__}: {exc}".replace("\n", " ")
        return [SweepRecord(point, unit.workload, s, error=message) for s in unit.schedulers]


COLUMNS = ("workload", "scheduler", "latency_us", "latency_cycles", "util_matrix", "util_vector", "util_dma",
           "lower_bound_cycles", "peak_bf16_tflops", "engines", "matrix_macs", "error")


class Journal:
    """The output file as a journal: rows are appended and flushed as units finish; reading it back tells which
    units are done. Parquet output keeps its journal in ``FILE.journal.csv`` and is written when all are done."""

    def __init__(self, path: Path, keys: Sequence[str]) -> None:
        self.path = path
        self.parquet = path.suffix == ".parquet"
        self.csv_path = path.with_name(path.name + ".journal.csv") if self.parquet else path
        self.header = [*keys, *COLUMNS]

    def done(self) -> set[tuple[str, ...]]:
        """(values..., workload) of the units already recorded in full; a torn last line is cut off."""
        if not self.csv_path.exists():
            return set()
        raw = self.csv_path.read_bytes()
        if raw and not raw.endswith(b"\n"):
            with self.csv_path.open("r+b") as fh:
                fh.truncate(raw.rfind(b"\n") + 1)
        with self.csv_path.open(newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                return set()
            if header != self.header:
                raise AccelsimError(f"exists with other columns ({', '.join(header)}); use another --out to "
                                    "start a new sweep", source=str(self.csv_path))
            n = len(self.header) - len(COLUMNS)
            return {(*row[:n], row[n]) for row in reader if len(row) == len(self.header)}

    def append(self, rows: Iterable[SweepRecord]) -> None:
        new = not self.csv_path.exists() or self.csv_path.stat().st_size == 0
        with self.csv_path.open("a", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=self.header, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerows(r.csv_row() for r in rows)
            fh.flush()
            os.fsync(fh.fileno())

    def finish(self) -> None:
        if not self.parquet:
            return
        try:
            import pyarrow.csv as pacsv
            import pyarrow.parquet as pq
        except ImportError:
            raise AccelsimError("Parquet output needs pyarrow (pip install 'accelsim[parquet]'); the rows are in "
                                f"{self.csv_path}", source=str(self.path)) from None
        pq.write_table(pacsv.read_csv(self.csv_path), self.path)
        self.csv_path.unlink()


def plan(chip: str, axes: Sequence[Axis], workloads: Sequence[str], schedulers: Sequence[str],
         plugins: Sequence[str] = ()) -> list[Unit]:
    """Every unit of the sweep, each point's profile validated before anything runs."""
    path = resolve(chip, "chips")
    base = read_toml(path)
    keys = tuple(a.key for a in axes)
    if len(set(keys)) != len(keys):
        raise AccelsimError("a key is swept twice", source="--set")
    from .workload import load_workload

    for w in workloads:
        load_workload(w)  # a bad workload name is an error now, not in every row
    units = []
    for values in itertools.product(*(a.values for a in axes)):
        try:
            chip_from_dict(point_profile(base, keys, values, str(path)), str(path))
        except AccelsimError as exc:
            shown = ", ".join(f"{k}={v!r}" for k, v in zip(keys, values, strict=True))
            raise AccelsimError(f"{exc.detail} (at {shown})", source=str(path), key=exc.key) from None
        for w in workloads:
            units.append(Unit(base, keys, values, w, tuple(schedulers), tuple(plugins)))
    return units


def unit_key(unit: Unit) -> tuple[str, ...]:
    """How a unit's rows read back from the CSV: its values as written, then the workload."""
    return (*(str(v) for v in unit.values), unit.workload)


@dataclass(frozen=True)
class SweepStats:
    """What a ``run_sweep`` call did: units in the sweep, already in the file, run now, and failed of those."""

    units: int
    skipped: int
    ran: int
    failed: int
    seconds: float


def run_sweep(units: Sequence[Unit], out: Path, workers: int | None = None, dask: str | None = None,
              progress: bool = True) -> SweepStats:
    """Run the units not yet in ``out``; returns counts and timings."""
    journal = Journal(out, units[0].keys if units else ())
    done = journal.done()
    todo = [u for u in units if unit_key(u) not in done]
    start = time.perf_counter()
    bar = _progress(len(units), len(units) - len(todo), progress)
    results = _run_dask(todo, dask) if dask else _run_local(todo, workers)
    failed = 0
    for rows in results:
        journal.append(rows)
        failed += any(r.error for r in rows)
        bar.update(1)
    bar.close()
    journal.finish()
    return SweepStats(units=len(units), skipped=len(units) - len(todo), ran=len(todo), failed=failed,
                      seconds=time.perf_counter() - start)


def _run_local(units: Sequence[Unit], workers: int | None) -> Iterator[list[SweepRecord]]:
    workers = workers or os.cpu_count() or 1
    if workers == 1 or len(units) <= 1:
        yield from map(run_unit, units)
        return
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(run_unit, u) for u in units]
        for f in as_completed(futures):
            yield f.result()


def _run_dask(units: Sequence[Unit], address: str) -> Iterator[list[SweepRecord]]:
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise AccelsimError("the Dask backend needs dask.distributed (pip install 'accelsim[dask]')",
                            source="--dask") from None
    try:
        client = Client(address, timeout="10s")
    except OSError as exc:
        raise AccelsimError(f"cannot reach the Dask scheduler ({exc})", source="--dask") from None
    try:
        futures = client.map(run_unit, list(units), pure=False)
        for f in as_completed(futures):
            yield f.result()
    finally:
        client.close()


def _progress(total: int, initial: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="point", disable=not enabled, dynamic_ncols=True,
                desc="sweep")

