"""Fitting a Gaudi-class profile to published measurements: generation throughputs (``llm_generate`` records, one
card and tensor parallel) and single GEMMs (``gemm`` records of the kernel file kind, accelsim.kernel_records).

Five physical parameters: the HBM bandwidth a generation achieves (``memory.bandwidth_efficiency``), the matrix
engines' achieved fraction of the systolic formulas' rate (``engines.<matrix>.efficiency``), the host's time per
forward pass (``step_overhead_us``: graph launch, sampling, the serving loop), the MoE serving kernel's time per
expert it is given (``expert_overhead_us``, accelsim.generation.expert_visits; fitted where records of
mixture-of-experts models are given) and, where records of several cards are given, the time each collective costs
beyond its messages (the system's ``collective_overhead_us``: the library's set-up and the cards' synchronisation).
The three times add exactly (a collective of tensor-parallel
decode is on the critical path: its slope is simulated once per record); the two efficiencies need a simulation per
value, so each record is simulated on a 3 x 3 grid of them and interpolated bilinearly in 1 / efficiency (the time a
bound resource takes), and the fitted values are then checked by simulating every record once more (the errors
reported are that check's, not the surrogate's).

The objective: each kind of record (generation on one card, on several, GEMMs in bf16, in fp8) has the median of
its records' |log(predicted / measured)|, and the fit minimizes the mean of those medians: every kind weighs the
same whatever its number of records, and within a kind the median's breakdown point is 50%. The expert time is
fitted to the records of mixture-of-experts models alone, the other parameters held (the median |log error| of
those records, on a grid of 0.01 us): within a kind of mostly dense models their median would not see it, and as a
group weighed like a kind their five records pulled the bandwidth and the host time away from what the dense
records say (bandwidth efficiency 0.86, single-card median 8.2%). So the four are fitted with the expert time
at 0, then the expert time, then the four again with it, and the expert time once more. Collective records
depend on none of the parameters (their times are the fabric's: the library's per-call cost is not seen in a loop of
back-to-back calls, accelsim.kernel_records), so they are checked by ``validate``, not fitted.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from scipy.optimize import differential_evolution

from .catalog import load_model
from .chip import Chip, SystolicMatrixEngines, chip_from_dict
from .config import read_toml
from .errors import AccelsimError
from .fit import FitResult
from .generation import default_system, expert_visits, generate
from .generation_records import LlmGenerateRecord, why_not_predicted
from .kernel_records import GemmKernelRecord
from .kernel_records import why_not_predicted as why_not_kernel
from .resources import resolve
from .system import System
from .validation import GemmShape, Measurements, lower_at, measurements, predict_at

#: Efficiencies simulated for the surrogate; the fit stays within them.
GRID = (0.5, 0.72, 1.0)
MAX_OVERHEAD_US = 5000.0
MAX_COLLECTIVE_US = 1000.0
#: The collective overhead a multi-card record is simulated at once more, for its slope.
PROBE_US = 100.0
SINGLE, SEVERAL = "llm_generate", "llm_generate, several cards"
#: The group of records of mixture-of-experts models: they fit the expert time alone (reported beside the kinds).
EXPERTS = "llm_generate, mixture of experts"
MAX_EXPERT_US = 100.0
EXPERT_STEP_US = 0.01


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


def _with(data: dict, group: str, bandwidth: float, matrix: float, overhead_us: float, expert_us: float) -> dict:
    out = copy.deepcopy(data)
    out.setdefault("memory", {})["bandwidth_efficiency"] = float(bandwidth)
    out["engines"][group]["efficiency"] = float(matrix)
    out["step_overhead_us"] = float(overhead_us)
    out["expert_overhead_us"] = float(expert_us)
    return out


@dataclass(frozen=True)
class Usable:
    """A record the fit uses: its summary row, where it is, what it holds, and its measured milliseconds."""

    kind: str
    source: str
    line: int
    spec: LlmGenerateRecord | GemmKernelRecord

    @property
    def measured_ms(self) -> float:
        s = self.spec
        if isinstance(s, GemmKernelRecord):
            return s.ms
        return s.batch * s.output_tokens / s.tokens_per_s * 1e3

    @property
    def passes(self) -> int:
        """Forward passes, each paying the host's time: the prefill and output_tokens - 1 steps (0 for a GEMM)."""
        return self.spec.output_tokens if isinstance(self.spec, LlmGenerateRecord) else 0

    @property
    def expert_visits(self) -> int:
        """Experts the MoE serving kernel is given per forward pass (accelsim.generation.expert_visits; 0 for a
        dense model or a GEMM)."""
        return expert_visits(load_model(self.spec.model)) if isinstance(self.spec, LlmGenerateRecord) else 0


def usable_records(chip: Chip, records: Sequence[Measurements]) -> list[Usable]:
    """The records ``chip`` can predict: llm_generate records of this chip and a modelled catalog model (on one
    card or several), and this chip's GEMM records."""
    usable = []
    for m in records:
        for r in m.records:
            spec = r.spec
            if isinstance(spec, LlmGenerateRecord) and why_not_predicted(spec, chip) is None:
                usable.append(Usable(SINGLE if spec.cards == 1 else SEVERAL, m.source, r.line, spec))
            elif isinstance(spec, GemmKernelRecord) and why_not_kernel(spec, chip) is None:
                usable.append(Usable(f"gemm {spec.dtype}", m.source, r.line, spec))
    return usable


def _system(system: System | None, chip: Chip, collective_us: float) -> System | None:
    if system is None:
        return None
    spec = dataclasses.replace(system.spec, collective_overhead_us=float(collective_us))
    return System(spec, chip, system.source)


def _predict(chip: Chip, u: Usable, system: System | None) -> float | None:
    """Milliseconds of the record without the time per pass no engine sees (``chip``'s are 0); None where it
    does not fit or cannot run."""
    s = u.spec
    try:
        if isinstance(s, GemmKernelRecord):
            p = s.params
            shape = GemmShape(kind="gemm", M=p.M, K=p.K, N=p.N, dtype=s.dtype)
            return predict_at(chip, lower_at(shape, u.source, u.line), u.source, u.line)
        g = generate(
            chip,
            load_model(s.model),
            s.batch,
            s.input_tokens,
            s.output_tokens,
            s.dtype,
            cards=s.cards,
            system=system if s.cards > 1 else None,
            serving=s.serving,
        )
    except AccelsimError:
        return None
    return g.latency_ms


def fit_generation(
    chip: str, records: Measurements | Sequence[Mapping[str, Any]] | Sequence[Measurements]
) -> FitResult:
    """The parameters that minimize the mean over kinds of each kind's median |log(predicted / measured)|."""
    path = resolve(chip, "chips")
    data = read_toml(path)
    base = chip_from_dict(data, str(path))
    group = _matrix_group(base)
    if isinstance(records, Measurements):
        sets = [records]
    elif records and all(isinstance(r, Measurements) for r in records):
        sets = [r for r in records if isinstance(r, Measurements)]
    else:
        sets = [measurements(cast(Sequence[Mapping[str, Any]], records))]
    usable = usable_records(base, sets)
    several = any(u.kind == SEVERAL for u in usable)
    system = default_system(base) if several else None

    def chip_at(bw: float, mm: float) -> Chip:
        return chip_from_dict(_with(data, group, bw, mm, 0.0, 0.0), str(path))

    grid: dict[tuple[int, int], list[float | None]] = {}
    for i, bw in enumerate(GRID):
        for j, mm in enumerate(GRID):
            at = chip_at(bw, mm)
            grid[(i, j)] = [_predict(at, u, _system(system, at, 0.0)) for u in usable]
    keep = [k for k in range(len(usable)) if all(grid[ij][k] is not None for ij in grid)]
    if len(keep) < 3:
        raise AccelsimError(
            f"{len(keep)} record(s) this chip can predict (llm_generate, gemm); fitting needs at least 3",
            source=sets[0].source if sets else "<records>",
        )
    recs = [usable[k] for k in keep]
    table = np.array([[[grid[(i, j)][k] for j in range(3)] for i in range(3)] for k in keep], dtype=float)
    # The collective overhead's slope: ms per us of it, simulated once at the grid's middle.
    middle = chip_at(GRID[1], GRID[1])
    slope = np.zeros(len(recs))
    for n, u in enumerate(recs):
        if u.kind == SEVERAL:
            probe = _predict(middle, u, _system(system, middle, PROBE_US))
            slope[n] = 0.0 if probe is None else (probe - table[n, 1, 1]) / PROBE_US
    inv = 1 / np.array(GRID)
    passes = np.array([u.passes for u in recs], dtype=float)
    visits = np.array([u.expert_visits for u in recs], dtype=float)
    measured = np.array([u.measured_ms for u in recs])
    kinds = sorted({u.kind for u in recs})
    members = [np.array([u.kind == k for u in recs]) for k in kinds]
    moe = visits > 0
    experts = bool(moe.any())
    # The groups reported: the kinds, and the MoE records (fitting the expert time) where there are some.
    reported = dict(zip(kinds, members, strict=True)) | ({EXPERTS: moe} if experts else {})

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

    def objective(x: np.ndarray, expert_us: float) -> float:
        bw, mm, overhead_us, collective_us = x
        ms = surrogate_ms(bw, mm) + passes * (overhead_us + visits * expert_us) / 1e3 + slope * collective_us
        err = np.abs(np.log(ms / measured))
        return float(np.mean([np.median(err[m]) for m in members]))

    bounds = [(GRID[0], GRID[-1]), (GRID[0], GRID[-1]), (0.0, MAX_OVERHEAD_US)]
    bounds.append((0.0, MAX_COLLECTIVE_US if several else 0.0))
    expert_us = 0.0
    for _ in range(2 if experts else 1):
        # Seeded: the same records always give the same values.
        res = differential_evolution(objective, bounds, args=(expert_us,), seed=0, tol=1e-8, maxiter=300, polish=False)
        bw, mm, overhead_us, collective_us = (float(v) for v in res.x)
        bw, mm = round(bw, 4), round(mm, 4)
        overhead_us, collective_us = round(overhead_us, 1), round(collective_us, 1)
        expert_us = _expert_us(
            surrogate_ms(bw, mm)[moe] + passes[moe] * overhead_us / 1e3 + slope[moe] * collective_us,
            passes[moe] * visits[moe] / 1e3,
            measured[moe],
        )
    check = chip_from_dict(_with(data, group, bw, mm, overhead_us, expert_us), str(path))
    errors = []
    for u in recs:
        ms = _predict(check, u, _system(system, check, collective_us))
        errors.append(np.nan if ms is None else abs(u.measured_ms / ms - 1))  # the rate's error
    err = np.array(errors)
    parameters: dict[str, int | float] = {
        "memory.bandwidth_efficiency": bw,
        f"engines.{group}.efficiency": mm,
        "step_overhead_us": overhead_us,
    }
    if experts:
        parameters["expert_overhead_us"] = expert_us
    return FitResult(
        chip=str(path),
        records=len(recs),
        parameters=parameters,
        median_abs_error=round(float(np.nanmedian(err)), 4),
        evaluations=len(GRID) ** 2 * len(usable) + int(np.count_nonzero(slope)) + len(recs),
        system=None if system is None else system.source,
        system_parameters={} if system is None else {"collective_overhead_us": collective_us},
        kinds={k: round(float(np.nanmedian(err[m])), 4) for k, m in reported.items()},
    )


def _expert_us(base_ms: np.ndarray, ms_per_us: np.ndarray, measured: np.ndarray) -> float:
    """The expert time (us, a multiple of EXPERT_STEP_US up to MAX_EXPERT_US) that minimizes the median |log
    error| of records whose milliseconds are ``base_ms`` + ``ms_per_us`` x it; the smallest of equals; 0 with no
    records."""
    if not len(measured):
        return 0.0
    us = np.arange(0.0, MAX_EXPERT_US + EXPERT_STEP_US / 2, EXPERT_STEP_US)
    ms = base_ms[None, :] + us[:, None] * ms_per_us[None, :]
    err = np.median(np.abs(np.log(ms / measured[None, :])), axis=1)
    return round(float(us[int(np.argmin(err))]), 2)
