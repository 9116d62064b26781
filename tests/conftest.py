import os

import pytest
from hypothesis import HealthCheck, settings

import accelsim

settings.register_profile("ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else "dev")


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
