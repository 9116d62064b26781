"""Fitting a GPU profile's efficiency parameters to measured latencies (``accelsim fit``).

Every measured record of at least 0.05 ms is fitted, single kernels and whole layers alike. The out-of-sample
checks are other runs of the same script: another H200 machine, and an H100 with only datasheet figures changed
(tests/test_validation.py). The eight parameters are physical: the tensor cores' achieved fraction of peak and
fixed cost per wave of tiles; the fixed cost of an eager kernel; HBM's achievable fraction of peak bandwidth for
contiguous and for strided or broadcast operands; the latency of one dependent step of a scan; and the SM issue
slots per element of softmax and layernorm (row ops are bound by the SMs, not HBM: an H100 runs them as fast as
an H200 with 1.43x its bandwidth). The gap between back-to-back kernels is measured, not fitted
(tools/gpu_kernel_profile.py).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.optimize import least_squares

from .chip import Chip, EngineGroup, MatrixEngines, TiledMatrixEngines, chip_from_dict
from .config import read_toml
from .errors import AccelsimError
from .generation_records import LlmGenerateRecord
from .kernel_records import CollectiveRecord, GemmKernelRecord
from .resources import resolve
from .train_records import TrainStepRecord
from .validation import (
    MEASURED,
    MIN_MS,
    ConcurrencyRecord,
    Measurements,
    Record,
    lower_record,
    measurements,
    predict_at,
)

FITTED_KINDS = MEASURED


@dataclass(frozen=True)
class Param:
    path: tuple[str, ...]  # into the profile dict; "{matrix}"/"{vector}" name the first group of that kind
    low: float
    high: float
    start: float  # the search starts here, whatever the profile holds, so a refit gives the same values
    integer: bool = False
    tied: tuple[tuple[str, ...], ...] = ()  # more keys that take the same value


PARAMS = (
    Param(("engines", "{matrix}", "efficiency"), 0.3, 1.0, 0.8),
    Param(("engines", "{matrix}", "wave_overhead_cycles"), 0, 20000, 1000, integer=True),
    Param(("dispatch_overhead_cycles",), 0, 60000, 10000, integer=True),
    Param(("memory", "bandwidth_efficiency"), 0.3, 1.0, 0.8),
    Param(("memory", "strided_bandwidth_efficiency"), 0.1, 1.0, 0.5),
    Param(("engines", "{vector}", "pipeline_latency_cycles"), 0, 5000, 500, integer=True),
    # Row ops' issue slots per element on this SM; their backward kernels' are taken as the forward's.
    Param(("vector_instructions", "softmax"), 1, 200, 60, tied=(("vector_instructions", "softmax_grad"),)),
    Param(("vector_instructions", "layernorm"), 1, 200, 60, tied=(("vector_instructions", "layernorm_grad"),)),
)


def _describe(g: EngineGroup) -> str:
    return f"{g.name} ({g.kind}, {g.spec.model})" if isinstance(g.spec, MatrixEngines) else f"{g.name} ({g.kind})"


def _groups(chip: Chip) -> dict[str, str]:
    """The engine groups the parameters name: the first tiled matrix group (tensor cores) and the first vector
    group (CUDA cores). A profile without both is not a GPU profile this fit knows."""
    matrix = next((g.name for g in chip.groups if isinstance(g.spec, TiledMatrixEngines)), None)
    vector = next((g.name for g in chip.groups if g.kind == "vector"), None)
    if matrix is None or vector is None:
        wanted = (('a matrix group with model = "tiled" (tensor cores)', matrix), ("a vector group", vector))
        missing = " and ".join(what for what, name in wanted if name is None)
        raise AccelsimError(
            f"accelsim fit fits GPU profiles: it needs {missing}; this profile has "
            f"{', '.join(map(_describe, chip.groups))}",
            source=chip.source,
            key="engines",
        )
    return {"matrix": matrix, "vector": vector}


def _keys(groups: Mapping[str, str], p: Param) -> list[list[str]]:
    """The profile key paths a parameter sets, engine groups named."""
    return [[groups[k[1:-1]] if k.startswith("{") else k for k in keys] for keys in (p.path, *p.tied)]


def _apply(data: dict, groups: Mapping[str, str], values: np.ndarray) -> dict:
    out = copy.deepcopy(data)
    for p, v in zip(PARAMS, values, strict=True):
        for path in _keys(groups, p):
            node = out
            for k in path[:-1]:
                node = node.setdefault(k, {})
            node[path[-1]] = int(round(v)) if p.integer else float(v)
    return out


@dataclass(frozen=True)
class FitResult:
    """Fitted parameter values by dotted profile key, ready to paste into the profile, and how well they fit."""

    chip: str  # the profile's path
    records: int  # records fitted (at least MIN_MS)
    parameters: Mapping[str, int | float]
    median_abs_error: float
    evaluations: int  # model evaluations the least-squares search took
    #: The system file whose values ``system_parameters`` are (a fit to records of several cards), or None.
    system: str | None = None
    system_parameters: Mapping[str, int | float] = dataclasses.field(default_factory=dict)
    #: Median |error| per kind of record, where the fit has several kinds.
    kinds: Mapping[str, float] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON ``accelsim fit --json`` prints."""
        return {
            **asdict(self),
            "parameters": dict(self.parameters),
            "system_parameters": dict(self.system_parameters),
            "kinds": dict(self.kinds),
        }


def fit(chip: str, records: Measurements | Sequence[Mapping[str, Any]]) -> FitResult:
    """Robust least squares on log(predicted / measured) over the records; returns the fitted values by profile
    key and the fit's median |error|. A profile without tensor and CUDA core groups, or fewer usable records than
    parameters, is an AccelsimError."""
    path = resolve(chip, "chips")
    data = read_toml(path)
    groups = _groups(chip_from_dict(data, str(path)))
    m = measurements(records)
    micro: list[tuple[int, Record]] = [
        (r.line, r.spec)
        for r in m.records
        if not isinstance(
            r.spec, ConcurrencyRecord | LlmGenerateRecord | TrainStepRecord | GemmKernelRecord | CollectiveRecord
        )
        and r.spec.kind in FITTED_KINDS
        and r.spec.ms >= MIN_MS
    ]
    if len(micro) < len(PARAMS):
        kinds = ", ".join(FITTED_KINDS)
        raise AccelsimError(
            f"{len(micro) or 'no'} record{'' if len(micro) == 1 else 's'} to fit: accelsim fit needs "
            f"at least {len(PARAMS)} (one per parameter) of kinds {kinds}, each of at least "
            f"{MIN_MS} ms",
            source=m.source,
        )
    graphs = [(line, lower_record(spec)) for line, spec in micro]
    measured = np.array([spec.ms for _, spec in micro])
    lo = np.array([p.low for p in PARAMS])
    hi = np.array([p.high for p in PARAMS])
    scale = hi - lo

    def residuals(x: np.ndarray) -> np.ndarray:
        c = chip_from_dict(_apply(data, groups, lo + x * scale), str(path))
        return np.log(np.array([predict_at(c, g, m.source, line) for line, g in graphs]) / measured)

    x0 = (np.array([p.start for p in PARAMS]) - lo) / scale
    res = least_squares(residuals, x0, bounds=(0, 1), diff_step=0.02, max_nfev=200, loss="soft_l1", f_scale=0.1)
    x = res.x
    fitted: dict[str, int | float] = {}
    for p, v in zip(PARAMS, lo + x * scale, strict=True):
        for keys in _keys(groups, p):
            fitted[".".join(keys)] = int(round(v)) if p.integer else round(float(v), 4)
    evaluations = int(res.nfev)
    errors = np.abs(np.exp(residuals(x)) - 1)
    return FitResult(
        chip=str(path),
        records=len(micro),
        parameters=fitted,
        median_abs_error=round(float(np.median(errors)), 4),
        evaluations=evaluations,
    )
