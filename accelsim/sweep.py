"""Design-space sweeps: every combination of chip-profile values x workloads x schedulers, on local processes or
an existing Dask cluster, streamed to a CSV (or Parquet) file that an interrupted sweep resumes from.

A point is one combination of swept values (``chip.KEY`` of the profile, ``workload.KEY`` of the workload); a
unit of work is (point, workload) and yields one row per scheduler. Rows are appended as units finish; a rerun
with the same arguments runs only the rows missing from the file or recorded with an error.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import dataclasses
import io
import itertools
import os
import sys
import threading
import time
import tomllib
from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .chip import MatrixEngines, chip_from_dict
from .config import check_nesting, read_toml
from .errors import AccelsimError
from .graph import TaskGraph
from .outputs import check_output_file, write_failed
from .resources import resolve

CHIP_PREFIX = "chip."
WORKLOAD_PREFIX = "workload."


@dataclass(frozen=True)
class Axis:
    """One swept key and its values. ``chip.KEY`` is a dotted path into the chip profile as written in its TOML;
    ``workload.KEY`` is a workload field as ``run --set`` names it (``seq_len``, ``run.batch``, ``variant``)."""

    key: str  # with its prefix; the name of its column in the sweep file
    values: tuple[object, ...]
    texts: tuple[str, ...] = ()  # the values as written; a workload's are parsed by ``run --set``'s rules

    @property
    def on_chip(self) -> bool:
        return self.key.startswith(CHIP_PREFIX)

    @property
    def path(self) -> str:
        """The key without its prefix."""
        return self.key.split(".", 1)[1]


@dataclass(frozen=True)
class Unit:
    """One (point, workload) to simulate under every scheduler. Picklable, for worker processes and Dask."""

    base: dict
    keys: tuple[str, ...]  # prefixed keys, as in Axis
    values: tuple[object, ...]
    workload: str
    schedulers: tuple[str, ...]
    plugins: tuple[str, ...] = ()
    chip: str = ""  # the base profile's name: a column of the sweep file and part of every row's key
    texts: tuple[str, ...] = ()  # the values as written (Axis.texts); empty: str() of each value

    def chip_point(self) -> tuple[list[str], list[object]]:
        """The chip keys (without ``chip.``) and their values at this point."""
        pairs = [
            (k.removeprefix(CHIP_PREFIX), v)
            for k, v in zip(self.keys, self.values, strict=True)
            if k.startswith(CHIP_PREFIX)
        ]
        return [k for k, _ in pairs], [v for _, v in pairs]

    def workload_overrides(self) -> tuple[str, ...]:
        """``KEY=VALUE`` items for ``load_workload``, exactly as ``run --set`` would get them."""
        texts = self.texts or tuple(str(v) for v in self.values)
        return tuple(
            f"{k.removeprefix(WORKLOAD_PREFIX)}={t}"
            for k, t in zip(self.keys, texts, strict=True)
            if k.startswith(WORKLOAD_PREFIX)
        )


def _looks_like_workload_key(key: str) -> bool:
    from .workload import _SECTIONS, name_in

    head = key.split(".", 1)[0]
    return head in _SECTIONS or any(name_in(cls, head) for cls in _SECTIONS.values())


def parse_axis(item: str) -> Axis:
    """``chip.engines.tpc.count=8,16,24`` or ``workload.seq_len=1024,4096`` -> Axis. Values are TOML literals
    (numbers, strings, booleans, inline tables), a bare word being taken as a string, as ``run --set`` does."""
    if "=" not in item:
        raise AccelsimError(f"expected chip.KEY=V1,V2,... or workload.KEY=V1,V2,..., got {item!r}", source="--set")
    key, raw = (s.strip() for s in item.split("=", 1))
    if key in (CHIP_PREFIX, WORKLOAD_PREFIX) or not key.strip("."):
        raise AccelsimError(
            f"no key{f' after {key!r}' if key else ''}: name one, e.g. chip.engines.tpc.count=8,16 or "
            "workload.seq_len=1024,4096",
            source="--set",
            key=key or "''",
        )
    if not key.startswith((CHIP_PREFIX, WORKLOAD_PREFIX)):
        prefix = WORKLOAD_PREFIX if _looks_like_workload_key(key) else CHIP_PREFIX
        raise AccelsimError(
            f"say whether the key is the chip profile's or the workload's: write --set "
            f"{prefix}{key}={raw} (chip.KEY: a dotted key of the profile's TOML; workload.KEY: a "
            "field as run --set names it)",
            source="--set",
            key=key,
        )
    values, texts = [], []
    for text in (v.strip() for v in _split_values(raw)):
        if not text:
            raise AccelsimError(f"empty value in {item!r}", source="--set", key=key)
        check_nesting(text, f"--set {key}")  # before the parser, which recursion or memory could exhaust
        try:
            values.append(tomllib.loads(f"v = {text}")["v"])
        except tomllib.TOMLDecodeError:
            values.append(text)
        texts.append(text)
    for i, v in enumerate(values):  # a point run twice would be one row: the count said points never written
        earlier = next((texts[j] for j in range(i) if _same(values[j], v)), None)
        if earlier is not None:
            raise AccelsimError(
                f"the value {texts[i]!r} is given twice (as {earlier!r}); give each value once", source="--set", key=key
            )
    return Axis(key, tuple(values), tuple(texts))


def _same(a: object, b: object) -> bool:
    """Whether two swept values are one point: equal and of one type (1 and 1.0, or true and 1, are not)."""
    return type(a) is type(b) and a == b


def _split_values(raw: str) -> list[str]:
    """Split at the commas outside braces, brackets and quotes (``{ fp8 = 1, bf16 = 2 },{ bf16 = 2 }``)."""
    parts: list[str] = []
    current: list[str] = []
    depth, quote = 0, ""
    for ch in raw:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
        elif ch == "," and depth <= 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    parts.append("".join(current))
    return parts


def with_value(base: dict, key: str, value: object, source: str) -> dict:
    """A copy of the profile dict with ``key`` (which must exist) set to ``value``."""
    out = copy.deepcopy(base)
    node = out
    parts = key.split(".")
    for depth, part in enumerate(parts):
        if not isinstance(node, dict) or part not in node:
            here = ".".join(parts[:depth]) or "(top level)"
            keys = ", ".join(sorted(node)) if isinstance(node, dict) else "none (not a table)"
            raise AccelsimError(
                f"not a key of the profile; keys under {here}: {keys}", source=source, key=CHIP_PREFIX + key
            )
        if depth == len(parts) - 1:
            node[part] = value
        else:
            node = node[part]
    return out


def point_profile(base: dict, keys: Sequence[str], values: Sequence[object], source: str) -> dict:
    """The profile dict with the chip ``keys`` (without the ``chip.`` prefix) set to ``values``."""
    data = base
    for k, v in zip(keys, values, strict=True):
        data = with_value(data, k, v, source)
    return data


@lru_cache(maxsize=16)
def _lowered(workload: str, overrides: tuple[str, ...] = ()) -> TaskGraph:
    from .lowering import lower
    from .workload import load_workload

    return lower(load_workload(workload, list(overrides)))


@dataclass(frozen=True)
class SweepRecord:
    """One row of the sweep file: a point's swept values, the base chip, a workload and a scheduler, and what the
    simulation gave (all None, with ``error`` set, when the point failed)."""

    point: tuple[tuple[str, object], ...]  # (swept key, value) in the order of the axes
    chip: str  # the base profile's name
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
        chip = chip_from_dict(point_profile(unit.base, *unit.chip_point(), "sweep"), "sweep point")
        cmp = compare(chip, _lowered(unit.workload, unit.workload_overrides()), list(unit.schedulers))
        head = chip.headline()
        peak = head.peak_matrix_tflops.get("bf16", 0.0) + head.peak_vector_tflops.get("bf16", 0.0)
        engines = sum(g.count for g in chip.groups)
        array = sum(g.count * matrix_macs(g.spec) for g in chip.groups if isinstance(g.spec, MatrixEngines))
        rows = []
        for r in cmp.results:
            util = r.utilization()
            rows.append(
                SweepRecord(
                    point,
                    unit.chip,
                    unit.workload,
                    r.scheduler,
                    latency_us=round(r.latency_us, 4),
                    latency_cycles=r.latency_cycles,
                    util_matrix=round(util.get("matrix", 0.0), 5),
                    util_vector=round(util.get("vector", 0.0), 5),
                    util_dma=round(util.get("dma", 0.0), 5),
                    lower_bound_cycles=cmp.bound.cycles,
                    peak_bf16_tflops=round(peak, 3),
                    engines=engines,
                    matrix_macs=array,
                )
            )
        return rows
    except Exception as exc:  # a failing point is recorded and the sweep goes on
        message = f"{type(exc).__name__}: {exc}".replace("\r", " ").replace("\n", " ") or "failed"
        return [SweepRecord(point, unit.chip, unit.workload, s, error=message) for s in unit.schedulers]


COLUMNS = (
    "chip",
    "workload",
    "scheduler",
    "latency_us",
    "latency_cycles",
    "util_matrix",
    "util_vector",
    "util_dma",
    "lower_bound_cycles",
    "peak_bf16_tflops",
    "engines",
    "matrix_macs",
    "error",
)
#: The columns, after the swept keys, that name a row: with the swept values, the row's key. A rerun writes a new
#: row for a key only when its last row has an ``error``; read back, a key's last row is the one that counts.
KEY_COLUMNS = ("chip", "workload", "scheduler")


def _csv_line(cells: Sequence[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf).writerow(cells)
    return buf.getvalue()


class Journal:
    """The output file as a journal: rows are appended and flushed as units finish; reading it back tells which
    rows are done. It is append-only while a sweep runs: a failed row that is retried is superseded by the new
    row after it (a key's last row counts), and when the sweep ends the file is rewritten with one row per key
    (to a temporary file, renamed over it: atomic). Parquet output keeps its journal in ``FILE.journal.csv``
    (seeded from the Parquet file when one exists) and writes the Parquet file when all rows are done."""

    def __init__(self, path: Path, keys: Sequence[str]) -> None:
        self.path = Path(path)
        self.parquet = self.path.suffix == ".parquet"
        self.csv_path = self.path.with_name(self.path.name + ".journal.csv") if self.parquet else self.path
        self.header = [*keys, *COLUMNS]
        self.n_key = len(keys) + len(KEY_COLUMNS)
        self._superseded = False

    def check(self) -> None:
        """The output (and a Parquet output's journal) can be written: called before anything runs."""
        check_output_file(self.path, "--out")
        if self.parquet:
            check_output_file(self.csv_path, "--out")

    def row_key(self, row: Sequence[str]) -> tuple[str, ...]:
        return tuple(row[: self.n_key])

    def rows(self) -> dict[tuple[str, ...], list[str]]:
        """Every row of the file by its key, the last row of a key winning (a retried failure's new row).

        A torn last line (the sweep was killed while writing it) is cut off the file; a file with other columns
        (another sweep's, or not a sweep's at all) is refused before anything in it is touched."""
        if self.parquet and self.path.exists() and not self.csv_path.exists():
            self._seed_from_parquet()
        if not self.csv_path.exists():
            return {}
        raw = self.csv_path.read_bytes()
        header_line = _csv_line(self.header).encode()
        first_end = raw.find(b"\n")
        if first_end < 0:  # not even a whole header: ours, torn, or someone else's file
            if header_line.startswith(raw):
                self._truncate(0)
                return {}
            self._refuse(raw)
        header = next(csv.reader([raw[: first_end + 1].decode("utf-8", "replace")]), [])
        if header != self.header:
            self._refuse(raw)
        if not raw.endswith(b"\n"):
            self._truncate(raw.rfind(b"\n") + 1)
        out: dict[tuple[str, ...], list[str]] = {}
        with self.csv_path.open(newline="", encoding="utf-8", errors="replace") as fh:
            reader = csv.reader(fh)
            next(reader, None)
            for row in reader:
                if len(row) != len(self.header):
                    self._superseded = True  # a malformed line: rewritten away with the rest
                    continue
                key = self.row_key(row)
                if key in out:
                    del out[key]  # keep the file order of the winning rows
                    self._superseded = True
                out[key] = row
        return out

    def done(self) -> set[tuple[str, ...]]:
        """Keys (swept values as written, chip, workload, scheduler) of the rows recorded without an error."""
        return {k for k, row in self.rows().items() if not row[-1]}

    def _refuse(self, raw: bytes) -> None:
        first = raw.split(b"\n", 1)[0].decode("utf-8", "replace").strip()
        shown = first if len(first) <= 200 else first[:200] + "..."
        raise AccelsimError(
            f"exists with other columns ({shown or 'none'}) than this sweep's "
            f"({', '.join(self.header)}); use another --out to start a new sweep",
            source=str(self.csv_path),
            key="--out",
        )

    def _truncate(self, size: int) -> None:
        with self.csv_path.open("r+b") as fh:
            fh.truncate(size)

    def _seed_from_parquet(self) -> None:
        table = read_parquet(self.path)
        if list(table.column_names) != self.header:
            raise AccelsimError(
                f"exists with other columns ({', '.join(table.column_names)}) than this sweep's "
                f"({', '.join(self.header)}); use another --out to start a new sweep",
                source=str(self.path),
                key="--out",
            )
        self._write_csv([[_cell(v) for v in r.values()] for r in table.to_pylist()], self.csv_path)

    def append(self, rows: Iterable[SweepRecord]) -> None:
        try:
            new = not self.csv_path.exists() or self.csv_path.stat().st_size == 0
            with self.csv_path.open("a", newline="", encoding="utf-8") as fh:
                writer = csv.DictWriter(fh, fieldnames=self.header, extrasaction="ignore")
                if new:
                    writer.writeheader()
                writer.writerows(r.csv_row() for r in rows)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            raise write_failed(self.csv_path, exc, "--out") from None

    def _write_csv(self, rows: Iterable[Sequence[str]], path: Path) -> None:
        """Write header and rows to ``path`` atomically (a temporary file in its folder, then a rename)."""
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with tmp.open("w", newline="", encoding="utf-8") as fh:
                writer = csv.writer(fh)
                writer.writerow(self.header)
                writer.writerows(rows)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise write_failed(path, exc, "--out") from None

    def compact(self) -> None:
        """Rewrite the journal with one row per key if a rerun superseded rows (atomic: nothing is lost if the
        process dies meanwhile)."""
        rows = self.rows()
        if self._superseded:
            self._write_csv(rows.values(), self.csv_path)
            self._superseded = False

    def finish(self) -> None:
        self.compact()
        if not self.parquet:
            return
        try:
            import pyarrow.csv as pacsv
            import pyarrow.parquet as pq
        except ImportError:
            raise AccelsimError(
                f"Parquet output needs pyarrow (pip install 'accelsim[parquet]'); the rows are in {self.csv_path}",
                source=str(self.path),
            ) from None
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            pq.write_table(pacsv.read_csv(self.csv_path), tmp)
            os.replace(tmp, self.path)
            self.csv_path.unlink()
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise write_failed(self.path, exc, "--out") from None


def _cell(value: object) -> str:
    """A Parquet value as the CSV journal writes it (None: an empty cell)."""
    return "" if value is None else str(value)


def read_parquet(path: Path, raw: bytes | None = None):
    """A Parquet file as a pyarrow table: read from ``path``, or parsed from its bytes ``raw`` already read."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise AccelsimError(
            "reading Parquet needs pyarrow (pip install 'accelsim[parquet]')", source=str(path)
        ) from None
    try:
        if raw is not None:
            import pyarrow as pa

            return pq.read_table(pa.BufferReader(raw))
        return pq.read_table(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError and others for a file that is not Parquet
        raise AccelsimError(
            f"not a readable Parquet file ({type(exc).__name__}: {exc})".replace("\n", " "), source=str(path)
        ) from None


def plan(
    chip: str, axes: Sequence[Axis], workloads: Sequence[str], schedulers: Sequence[str], plugins: Sequence[str] = ()
) -> list[Unit]:
    """Every unit of the sweep, each point's chip profile and workload validated before anything runs."""
    from .workload import load_workload

    path = resolve(chip, "chips")
    base = read_toml(path)
    chip_name = chip_from_dict(base, str(path)).name
    keys = tuple(a.key for a in axes)
    if len(set(keys)) != len(keys):
        raise AccelsimError("a key is swept twice", source="--set")
    for a in axes:
        if not a.key.startswith((CHIP_PREFIX, WORKLOAD_PREFIX)):
            raise AccelsimError(
                f"a swept key starts with {CHIP_PREFIX} or {WORKLOAD_PREFIX}", source="--set", key=a.key
            )
    if not workloads or not all(w.strip() for w in workloads):
        raise AccelsimError("name at least one workload, separated by commas", key="--workload")
    chip_axes = [a for a in axes if a.on_chip]
    work_axes = [a for a in axes if not a.on_chip]
    for w in workloads:
        load_workload(w)  # a bad workload name is an error now, not in every row
    for values in itertools.product(*(a.values for a in chip_axes)):
        try:
            chip_from_dict(point_profile(base, [a.path for a in chip_axes], values, str(path)), str(path))
        except AccelsimError as exc:
            shown = ", ".join(f"{a.key}={v!r}" for a, v in zip(chip_axes, values, strict=True))
            raise AccelsimError(f"{exc.detail} (at {shown})", source=str(path), key=exc.key) from None
    for w in workloads:
        for texts in itertools.product(*(a.texts or tuple(map(str, a.values)) for a in work_axes)):
            items = [f"{a.path}={t}" for a, t in zip(work_axes, texts, strict=True)]
            try:
                load_workload(w, items)
            except AccelsimError as exc:
                shown = ", ".join(f"{a.key}={t}" for a, t in zip(work_axes, texts, strict=True))
                raise AccelsimError(f"{exc.detail} (at {shown})", source=exc.source, key=exc.key) from None
    units = []
    texts_of = [a.texts or tuple(map(str, a.values)) for a in axes]
    for picks in itertools.product(*(range(len(a.values)) for a in axes)):
        values = tuple(a.values[i] for a, i in zip(axes, picks, strict=True))
        texts = tuple(t[i] for t, i in zip(texts_of, picks, strict=True))
        for w in workloads:
            units.append(Unit(base, keys, values, w, tuple(schedulers), tuple(plugins), chip_name, texts))
    return units


def unit_key(unit: Unit) -> tuple[str, ...]:
    """How a unit's rows read back from the CSV, less the scheduler: its values as written, chip, workload."""
    return (*(str(v) for v in unit.values), unit.chip, unit.workload)


def row_keys(unit: Unit) -> list[tuple[str, ...]]:
    """The keys of the rows a unit writes: one per scheduler."""
    return [(*unit_key(unit), s) for s in unit.schedulers]


@dataclass(frozen=True)
class SweepStats:
    """What a ``run_sweep`` call did: units in the sweep, already in the file, run now, and failed of those."""

    units: int
    skipped: int
    ran: int
    failed: int
    seconds: float


def pending(units: Sequence[Unit], done: set[tuple[str, ...]]) -> list[Unit]:
    """The units with a row missing or failed, each left with only the schedulers still to run: a point is done
    when every (workload, scheduler) row of it is in the file without an error."""
    todo = []
    for u in units:
        missing = tuple(s for s, k in zip(u.schedulers, row_keys(u), strict=True) if k not in done)
        if missing:
            todo.append(u if missing == u.schedulers else dataclasses.replace(u, schedulers=missing))
    return todo


def run_sweep(
    units: Sequence[Unit], out: Path, workers: int | None = None, dask: str | None = None, progress: bool = True
) -> SweepStats:
    """Run the rows not yet in ``out`` (missing, or recorded with an error); returns counts and timings."""
    journal = Journal(out, units[0].keys if units else ())
    journal.check()
    todo = pending(units, journal.done())
    start = time.perf_counter()
    bar = _progress(len(units), len(units) - len(todo), progress)
    results = _run_dask(todo, dask) if dask else _run_local(todo, workers)
    failed = 0
    try:
        for rows in results:
            journal.append(rows)
            failed += any(r.error for r in rows)
            bar.update(1)
    finally:
        results.close()  # on an error or Ctrl-C: stop the workers now, not at interpreter exit
        bar.close()
    journal.finish()
    return SweepStats(
        units=len(units),
        skipped=len(units) - len(todo),
        ran=len(todo),
        failed=failed,
        seconds=time.perf_counter() - start,
    )


def _die_with_parent(parent: int, start_method: str) -> None:
    """Initialiser of each worker process: exit when the sweep's process dies, even by SIGKILL, rather than run
    on (or wait forever) as an orphan.

    On Linux the kernel sends SIGKILL when the parent exits (``prctl(PR_SET_PDEATHSIG)``; the parent is the
    thread that started the worker, which is the thread running the sweep for the pool's lifetime). Everywhere,
    a daemon thread also checks twice a second that the parent is still the process that started the worker."""
    ppid = os.getppid()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            import ctypes
            import signal

            pr_set_pdeathsig = 1
            ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)
    direct = start_method in ("fork", "spawn")  # forkserver: the parent is the server, which exits with ours
    if os.getppid() != ppid or (direct and ppid != parent):
        os._exit(1)  # the parent died before the watch was set up

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != ppid:
                os._exit(1)

    threading.Thread(target=watch, name="accelsim-parent-watch", daemon=True).start()


def _run_local(units: Sequence[Unit], workers: int | None) -> Generator[list[SweepRecord], None, None]:
    workers = workers or os.cpu_count() or 1
    if workers == 1 or len(units) <= 1:
        yield from map(run_unit, units)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    context = multiprocessing.get_context()
    pool = ProcessPoolExecutor(
        max_workers=min(workers, len(units)),
        mp_context=context,
        initializer=_die_with_parent,
        initargs=(os.getpid(), context.get_start_method()),
    )
    finished = False
    try:
        futures = [pool.submit(run_unit, u) for u in units]
        for f in as_completed(futures):
            yield f.result()
        finished = True
    finally:
        if finished:
            pool.shutdown(wait=True)
        else:  # interrupted (Ctrl-C, an error writing a row): stop now; the rows already written are kept
            _stop(pool)


def _stop(pool) -> None:
    """Drop the queued units and end the running ones, rather than wait for work whose rows nobody will write."""
    stop = getattr(pool, "terminate_workers", None)  # Python 3.14
    if stop is not None:
        stop()
        return
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        with contextlib.suppress(Exception):
            process.terminate()


def _run_dask(units: Sequence[Unit], address: str) -> Generator[list[SweepRecord], None, None]:
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise AccelsimError(
            "the Dask backend needs dask.distributed (pip install 'accelsim[dask]')", source="--dask"
        ) from None
    try:
        client = Client(address, timeout="10s")
    except OSError as exc:
        raise AccelsimError(f"cannot reach the Dask scheduler ({exc})", source="--dask") from None
    try:
        # Units go out in chunks, about four per worker: fewer round trips through the scheduler, which on a small
        # machine competes with the workers for the same cores; rows are still written as each chunk finishes.
        workers = max(1, len(client.scheduler_info().get("workers", {})))
        size = max(1, -(-len(units) // (4 * workers)))
        chunks = [list(units[i : i + size]) for i in range(0, len(units), size)]
        futures = client.map(run_units, chunks, pure=False)
        for f in as_completed(futures):
            yield from f.result()
    finally:
        client.close()


def run_units(units: Sequence[Unit]) -> list[list[SweepRecord]]:
    """Several units in one task (the Dask path's chunks)."""
    return [run_unit(u) for u in units]


def _progress(total: int, initial: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="point", disable=not enabled, dynamic_ncols=True, desc="sweep")
