"""Fitting a Gaudi-class profile to published generation throughputs (``accelsim fit`` on ``llm_generate`` records).

Three physical parameters: the HBM bandwidth a generation achieves (``memory.bandwidth_efficiency``), the matrix
engines' achieved fraction of the systolic formulas' rate (``engines.<matrix>.efficiency``), and the host's time per
forward pass (``step_overhead_us``: graph launch, sampling, the serving loop). The host time adds to every pass, so
it enters exactly; the two efficiencies need a simulation per value, so each record is simulated on a 3 x 3 grid of
them and interpolated bilinearly in 1 / efficiency (the time a bound resource takes), and the fitted values are then
checked by simulating every record once more (``median_abs_error`` is that check's, not the surrogate's).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.optimize import differential_evolution

from .catalog import load_model
from .chip import Chip, SystolicMatrixEngines, chip_from_dict
from .config import read_toml
from .errors import AccelsimError
from .fit import FitResult
from .generation import generate
from .generation_records import LlmGenerateRecord, why_not_predicted
from .resources import resolve
from .validation import Measurements, measurements

#: Efficiencies simulated for the surrogate; the fit stays within them.
GRID = (0.5, 0.72, 1.0)
MAX_OVERHEAD_US = 5000.0


def _matrix_group(chip: Chip) -> str:
    group = next((g.name for g in chip.groups if isinstance(g.spec, SystolicMatrixEngines)), None)
    if group is None:
        raise AccelsimError(
            "fitting to generation records needs a systolic matrix group (a Gaudi-class profile); GPU profiles are "
            "fitted to kernel records",
            source=chip.source,
            key="engines",
        )
    return group


def _with(data: dict, group: str, bandwidth: float, matrix: float, overhead_us: float) -> dict:
    out = copy.deepcopy(data)
    out.setdefault("memory", {})["bandwidth_efficiency"] = float(bandwidth)
    out["engines"][group]["efficiency"] = float(matrix)
    out["step_overhead_us"] = float(overhead_us)
    return out


def generation_records(chip: Chip, records: Measurements) -> list[tuple[int, LlmGenerateRecord]]:
    """The llm_generate records ``chip`` can predict on one card (a modelled catalog model, this chip). Records of
    several cards are left out of the fit: they check the tensor-parallel model, fitted to none of them."""
    usable = []
    for r in records.records:
        spec = r.spec
        if isinstance(spec, LlmGenerateRecord) and spec.cards == 1 and why_not_predicted(spec, chip) is None:
            usable.append((r.line, spec))
    return usable


def _predict(chip: Chip, rec: LlmGenerateRecord) -> float | None:
    """Milliseconds of the whole generation without host time; None where it does not fit one card."""
    try:
        g = generate(
            chip, load_model(rec.model), rec.batch, rec.input_tokens, rec.output_tokens, rec.dtype, serving=rec.serving
        )
    except AccelsimError:
        return None
    return g.latency_ms


def fit_generation(chip: str, records: Measurements | Sequence[Mapping[str, Any]]) -> FitResult:
    """The parameters that minimize the median |log(predicted / measured tokens/s)| over the chip's predictable
    records (least median of squares)."""
    path = resolve(chip, "chips")
    data = read_toml(path)
    base = chip_from_dict(data, str(path))
    group = _matrix_group(base)
    m = measurements(records)
    usable = generation_records(base, m)
    grid = {
        (i, j): [_predict(chip_from_dict(_with(data, group, bw, mm, 0.0), str(path)), rec) for _, rec in usable]
        for i, bw in enumerate(GRID)
        for j, mm in enumerate(GRID)
    }
    keep = [k for k in range(len(usable)) if all(grid[ij][k] is not None for ij in grid)]
    if len(keep) < 3:
        raise AccelsimError(
            f"{len(keep)} llm_generate record(s) this chip can predict; fitting three parameters needs at least 3",
            source=m.source,
        )
    recs = [usable[k][1] for k in keep]
    table = np.array([[[grid[(i, j)][k] for j in range(3)] for i in range(3)] for k in keep], dtype=float)
    inv = 1 / np.array(GRID)
    passes = np.array([r.output_tokens for r in recs], dtype=float)  # the prefill and output_tokens - 1 steps
    tokens = np.array([r.batch * r.output_tokens for r in recs], dtype=float)
    measured = np.array([r.tokens_per_s for r in recs])

    def surrogate_ms(bw: float, mm: float) -> np.ndarray:
        """Bilinear in (1/bandwidth efficiency, 1/matrix efficiency) over the grid (its axes run downwards)."""
        u, v = 1 / bw, 1 / mm
        i = int(np.clip(np.searchsorted(-inv, -u) - 1, 0, 1))
        j = int(np.clip(np.searchsorted(-inv, -v) - 1, 0, 1))
        a = (u - inv[i]) / (inv[i + 1] - inv[i])
        b = (v - inv[j]) / (inv[j + 1] - inv[j])
        t = table
        return (
            (1 - a) * (1 - b) * t[:, i, j]
            + a * (1 - b) * t[:, i + 1, j]
            + (1 - a) * b * t[:, i, j + 1]
            + a * b * t[:, i + 1, j + 1]
        )

    def residuals(x: np.ndarray) -> np.ndarray:
        bw, mm, overhead_us = x
        ms = surrogate_ms(bw, mm) + passes * overhead_us / 1e3
        return np.log(tokens / (ms / 1e3) / measured)

    def median_error(x: np.ndarray) -> float:
        return float(np.median(np.abs(residuals(x))))

    # Least median of squares (Rousseeuw 1984): the records hold runs the model cannot represent (mixtures of
    # experts whose software runs every expert, releases with other kernels), and a fit on every record's error,
    # even a robust one, lets them pull the parameters; the median's breakdown point is 50%. Seeded: the same
    # records always give the same values.
    bounds = [(GRID[0], GRID[-1]), (GRID[0], GRID[-1]), (0.0, MAX_OVERHEAD_US)]
    res = differential_evolution(median_error, bounds, seed=0, tol=1e-8, maxiter=300, polish=False)
    bw, mm, overhead_us = (float(v) for v in res.x)
    fitted = _with(data, group, round(bw, 4), round(mm, 4), round(overhead_us, 1))
    check = chip_from_dict(fitted, str(path))
    errors = []
    for rec in recs:
        g = generate(
            check, load_model(rec.model), rec.batch, rec.input_tokens, rec.output_tokens, rec.dtype, serving=rec.serving
        )
        errors.append(abs(g.tokens_per_s / rec.tokens_per_s - 1))
    return FitResult(
        chip=str(path),
        records=len(recs),
        parameters={
            "memory.bandwidth_efficiency": round(bw, 4),
            f"engines.{group}.efficiency": round(mm, 4),
            "step_overhead_us": round(overhead_us, 1),
        },
        median_abs_error=round(float(np.median(errors)), 4),
        evaluations=len(GRID) ** 2 * len(usable) + len(recs),  # simulated generations
    )
