"""Chrome trace-event export: one row per engine instance, as the Gaudi profiler shows it (opens in Perfetto)."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from .outputs import check_output_file, write_failed
from .results import Results


def chrome_trace(results: Results) -> dict[str, object]:
    """Trace events: a complete ('X') event per task with its op, shape, FLOPs and bytes; counters for HBM
    streams in use and busy engines per kind."""
    chip = results.chip
    us = chip.cycles_to_us(1)
    pid = 1
    names = chip.instance_names
    events: list[dict[str, object]] = [
        {"name": "process_name", "ph": "M", "pid": pid, "args": {"name": f"{chip.name} ({results.scheduler})"}},
    ]
    for e, name in enumerate(names):
        events.append({"name": "thread_name", "ph": "M", "pid": pid, "tid": e, "args": {"name": name}})
        events.append({"name": "thread_sort_index", "ph": "M", "pid": pid, "tid": e, "args": {"sort_index": e}})
    for t, e, s, f in zip(
        results.graph.tasks, results.engine.tolist(), results.start.tolist(), results.end.tolist(), strict=True
    ):
        events.append(
            {
                "name": t.name,
                "cat": t.op,
                "ph": "X",
                "pid": pid,
                "tid": e,
                "ts": s * us,
                "dur": (f - s) * us,
                "args": {
                    "op": t.op,
                    "shape": list(t.shape),
                    "dtype": t.dtype,
                    "flops": t.flops,
                    "bytes": t.bytes,
                    "start_cycle": s,
                    "end_cycle": f,
                    "group": t.group,
                },
            }
        )
    rate_gbps = chip.spec.memory.hbm_bandwidth_gbps
    for c, n in zip(results.hbm_change_cycles.tolist(), results.hbm_change_streams.tolist(), strict=True):
        events.append(
            {
                "name": "HBM GB/s in use",
                "ph": "C",
                "pid": pid,
                "ts": c * us,
                "args": {"GB/s": rate_gbps if n else 0.0, "streams": n},
            }
        )
    for kind, (cycles, busy) in busy_engines_by_kind(results).items():
        for c, b in zip(cycles, busy, strict=True):
            events.append({"name": f"busy {kind} engines", "ph": "C", "pid": pid, "ts": c * us, "args": {kind: b}})
    return {
        "traceEvents": events,
        "displayTimeUnit": "ns",
        "otherData": {
            "chip": chip.name,
            "graph": results.graph.name,
            "scheduler": results.scheduler,
            "latency_cycles": results.latency_cycles,
        },
    }


def busy_engines_by_kind(results: Results) -> dict[str, tuple[list[int], list[int]]]:
    """Per engine kind, a step function (change cycles, busy engine count from that cycle on)."""
    kinds = [results.chip.groups[g].kind for g in results.chip.instance_group]
    deltas: dict[str, dict[int, int]] = {}
    for e, s, f in zip(results.engine.tolist(), results.start.tolist(), results.end.tolist(), strict=True):
        if f == s:
            continue
        d = deltas.setdefault(kinds[e], {})
        d[s] = d.get(s, 0) + 1
        d[f] = d.get(f, 0) - 1
    out: dict[str, tuple[list[int], list[int]]] = {}
    for kind, d in deltas.items():
        cycles, busy, level = [], [], 0
        for c in sorted(d):
            level += d[c]
            cycles.append(c)
            busy.append(level)
        out[kind] = (cycles, busy)
    return out


def write_chrome_trace(results: Results, path: str | Path) -> Path:
    """Write the trace to ``path``, whose folder must exist (``check_output_file``); a path that cannot be
    written is an AccelsimError. The trace is written to a temporary file in the same folder and renamed, so a
    failed write leaves no half a file."""
    path = check_output_file(path, "--trace")
    trace = chrome_trace(results)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as fh:
            json.dump(trace, fh)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise write_failed(path, exc, "--trace") from None
    return path
