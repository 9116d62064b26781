import os
import signal
from contextlib import contextmanager

import pytest
from hypothesis import HealthCheck, settings

import accelsim

settings.register_profile("ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture(autouse=True)
def _registry_restored():
    """Each test sees the built-in schedulers only: a plugin one loads (test_schedulers' "mine" and
    "critical-first", which have no description) is gone after it, so no test depends on which ran before."""
    before = dict(accelsim.registry.SCHEDULERS)
    yield
    accelsim.registry.SCHEDULERS.clear()
    accelsim.registry.SCHEDULERS.update(before)


def tiny_chip_dict(**over):
    """One 4x4 output-stationary matrix engine, two 8-lane vector cores, one DMA; 1 GHz; 16 B/cycle of HBM."""
    d = {
        "name": "tiny",
        "clock_ghz": 1.0,
        "engines": {
            "mme": {
                "kind": "matrix",
                "count": 1,
                "rows": 4,
                "cols": 4,
                "dataflow": "os",
                "macs_per_cycle": {"bf16": 16},
            },
            "tpc": {"kind": "vector", "count": 2, "lanes": {"bf16": 8}, "pipeline_latency_cycles": 0},
            "dma": {"kind": "dma", "count": 1, "bytes_per_cycle": 1000},
        },
        "memory": {"hbm_gb": 1, "hbm_bandwidth_gbps": 16, "sram_mb": 1},
    }
    d.update(over)
    return d


@pytest.fixture
def tiny_chip():
    return accelsim.chip_from_dict(tiny_chip_dict(), "tiny.toml")


#: A one-layer hybrid GPT small enough for a sweep point in a fraction of a second (test_sweep, test_edges_outputs).
TINY_WORKLOAD = """
name = "tiny-gpt"
[model]
family = "gpt"
layers = 1
d_model = 64
heads = 2
embeddings = false
[run]
batch = 2
seq_len = 64
mode = "training"
[attention]
variant = "hybrid"
window = 32
chunk = 16
[lowering]
granularity = "tile"
tile_m = 32
tile_n = 32
"""


@contextmanager
def deadline(seconds: int):
    """Fail, rather than hang, past ``seconds`` (SIGALRM: the main thread of a POSIX process)."""

    def expire(signum, frame):
        raise TimeoutError(f"no answer within {seconds} s")

    old = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
