"""Sweep throughput: points per second with 1 and 2 local worker processes and on a Dask cluster on this machine,
and the per-point overhead of the Dask path.

    python benchmarks/sweep_speed.py [--points 16]

Each point is a small hybrid-attention training step (the tests' tiny GPT) under naive and balanced, so the
per-point cost is small and overheads show. The Dask backend runs on a LocalCluster of 2 worker processes.
"""

from __future__ import annotations

import argparse
import importlib
import tempfile
import time
from pathlib import Path

from accelsim.sweep import parse_axis, plan, run_sweep

TINY = """
name = "tiny-gpt"
[model]
family = "gpt"
layers = 2
d_model = 128
heads = 4
embeddings = false
[run]
batch = 2
seq_len = 256
mode = "training"
[attention]
variant = "hybrid"
window = 64
chunk = 32
[lowering]
granularity = "tile"
tile_m = 64
tile_n = 64
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", type=int, default=16)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    workload = tmp / "tiny-gpt.toml"
    workload.write_text(TINY)
    counts = ",".join(str(4 + k) for k in range(args.points))
    units = plan("gaudi2", [parse_axis(f"chip.engines.tpc.count={counts}")], [str(workload)], ["naive", "balanced"])
    rows = []

    def timed(label: str, workers: int | None = None, dask: str | None = None) -> float:
        t = time.perf_counter()
        run_sweep(units, tmp / f"{label.replace(' ', '_')}.csv", workers=workers, dask=dask, progress=False)
        s = time.perf_counter() - t
        rows.append((label, s, len(units) / s))
        return s

    one = timed("local, 1 worker", workers=1)
    two = timed("local, 2 workers", workers=2)
    import dask
    from distributed import Client, LocalCluster

    # The workers' statistical profiler samples every thread's stack every 10 ms, which a CPU-bound Python point
    # pays for under the GIL; a sweep has no use for it (dask's own setting, documented in docs/sweeps.md).
    dask.config.set({"distributed.worker.profile.enabled": False})
    dask_time = {}
    for n in (1, 2):
        t = time.perf_counter()
        with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
            # A fresh Dask worker imports accelsim (numpy, scipy, SimPy) on its first task, which local workers,
            # forked from this process, never do: warm the workers first, as a long-lived cluster is.
            with Client(cluster.scheduler_address) as client:
                client.run(importlib.import_module, "accelsim.sweep")
            start = time.perf_counter() - t
            dask_time[n] = timed(f"dask, {n} worker process{'es' if n > 1 else ''}", dask=cluster.scheduler_address)
    print(f"{'backend':28s} {'seconds':>8s} {'points/s':>9s}   ({len(units)} points)")
    for label, s, rate in rows:
        print(f"{label:28s} {s:8.2f} {rate:9.2f}")
    for n, local in ((1, one), (2, two)):
        per_point = (dask_time[n] - local) / len(units)
        print(
            f"Dask with {n} worker{'s' if n > 1 else ''} against {n} local: {per_point * 1e3:+.0f} ms per point, "
            f"{per_point / (local / len(units)):+.0%} of a point's time there"
        )
    print(f"dask cluster start-up and worker warm-up: {start:.1f} s (not counted above)")


if __name__ == "__main__":
    main()
