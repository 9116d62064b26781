"""Fitting a GPU profile's efficiency parameters to measured latencies (``accelsim fit``).

Every measured record of at least 0.05 ms is fitted, single kernels and whole layers alike: single kernels
timed alone cannot tell a kernel's launch cost from the gap between kernels in a sequence. The out-of-sample
checks are another machine's run of the same script (``h200_repeat.jsonl``) and, for the model's form, other
GPUs with only datasheet figures changed. The parameters are few and physical: the tensor cores' achieved
fraction of peak and their fixed cost per wave of tiles, the kernel launch overhead and the gap between kernels,
HBM's achievable fraction of peak bandwidth and the transfer size at which half of it is reached, and the longest
row a row op keeps on chip.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

from .chip import chip_from_dict
from .config import read_toml
from .resources import resolve
from .validation import lower_record, predict_ms

from .validation import MEASURED, MIN_MS

FITTED_KINDS = MEASURED


@dataclass(frozen=True)
class Param:
    path: tuple[str, ...]  # into the profile dict; "{matrix}"/"{vector}" name the first group of that kind
    low: float
    high: float
    start: float  # the search starts here, whatever the profile holds, so a refit gives the same values
    integer: bool = False


PARAMS = (
    Param(("engines", "{matrix}", "efficiency"), 0.3, 1.0, 0.8),
    Param(("engines", "{matrix}", "wave_overhead_cycles"), 0, 20000, 1000, integer=True),
    Param(("dispatch_overhead_cycles",), 0, 60000, 10000, integer=True),
    Param(("launch_gap_cycles",), 0, 30000, 5000, integer=True),
    Param(("memory", "bandwidth_efficiency"), 0.3, 1.0, 0.8),
    Param(("memory", "bandwidth_half_bytes"), 0, 64 << 20, 1 << 20, integer=True),
)

#: Discrete parameters, scanned (least squares cannot see a threshold move between measured sizes).
ROW_BUFFERS = (512, 1024, 2048, 4096, 8192, 65536)


def _group(data: dict, kind: str) -> str:
    return next(name for name, g in data["engines"].items() if g["kind"] == kind)


def _apply(data: dict, values: np.ndarray) -> dict:
    out = copy.deepcopy(data)
    for p, v in zip(PARAMS, values):
        node = out
        path = [_group(out, k[1:-1]) if k.startswith("{") else k for k in p.path]
        for k in path[:-1]:
            node = node[k]
        node[path[-1]] = int(round(v)) if p.integer else float(v)
    return out


def fit(chip: str, records: list[dict]) -> dict[str, object]:
    """Robust least squares on log(predicted / measured) over the records; returns the fitted values by profile
    key and the fit's median |error|."""
    path = resolve(chip, "chips")
    data = read_toml(path)
    micro = [r for r in records if r.get("kind") in FITTED_KINDS and r["ms"] >= MIN_MS]
    graphs = [lower_record(r) for r in micro]
    measured = np.array([r["ms"] for r in micro])
    lo = np.array([p.low for p in PARAMS])
    hi = np.array([p.high for p in PARAMS])
    scale = hi - lo

    def residuals(x: np.ndarray) -> np.ndarray:
        c = chip_from_dict(_apply(data, lo + x * scale), str(path))
        return np.log(np.array([predict_ms(c, g) for g in graphs]) / measured)

    vector = _group(data, "vector")
    best_cost, best = np.inf, None
    evaluations = 0
    for rb in ROW_BUFFERS:
        data["engines"][vector]["row_buffer_elements"] = rb
        x0 = (np.array([p.start for p in PARAMS]) - lo) / scale
        res = least_squares(residuals, x0, bounds=(0, 1), diff_step=0.02, max_nfev=100, loss="soft_l1",
                            f_scale=0.1)
        evaluations += int(res.nfev)
        if res.cost < best_cost:
            best_cost, best = res.cost, (rb, res.x)
    rb, x = best  # type: ignore[misc]
    data["engines"][vector]["row_buffer_elements"] = rb
    fitted: dict[str, object] = {}
    for p, v in zip(PARAMS, lo + x * scale):
        key = ".".join(_group(data, k[1:-1]) if k.startswith("{") else k for k in p.path)
        fitted[key] = int(round(v)) if p.integer else round(float(v), 4)
    fitted[f"engines.{vector}.row_buffer_elements"] = rb
    errors = np.abs(np.exp(residuals(x)) - 1)
    return {"chip": str(path), "records": len(micro), "parameters": fitted,
            "median_abs_error": round(float(np.median(errors)), 4), "evaluations": evaluations}
