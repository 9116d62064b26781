"""Does more of a chip ever make a workload slower? More vector cores, more HBM bandwidth, a faster clock, for
every scheduler, on the Gaudi profiles and the GFormer and GPT-2 presets (one layer).

    python benchmarks/monotonicity.py

List schedulers are not monotone in general (Graham, "Bounds on multiprocessing timing anomalies", 1969): a
faster machine can reorder the list and finish later. This prints, per scheduler, how many steps were slower
than the step before and the worst slowdown.
"""

from __future__ import annotations

import copy

import accelsim
from accelsim.compare import compare
from accelsim.config import read_toml
from accelsim.lowering import lower
from accelsim.report import table
from accelsim.resources import resolve
from accelsim.workload import load_workload

SCHEDULERS = ["naive", "balanced", "heft"]


def variants(base: dict) -> dict[str, list[dict]]:
    """Each knob's steps: more vector cores, more HBM bandwidth, a faster clock."""
    vec = next(k for k, v in base["engines"].items() if v["kind"] == "vector")
    count = base["engines"][vec]["count"]
    out: dict[str, list[dict]] = {"vector cores": [], "HBM bandwidth": [], "clock": []}
    for n in (count, count + 8, 2 * count):
        d = copy.deepcopy(base)
        d["engines"][vec]["count"] = n
        out["vector cores"].append(d)
    for f in (1, 1.5, 2):
        d = copy.deepcopy(base)
        d["memory"]["hbm_bandwidth_gbps"] *= f
        out["HBM bandwidth"].append(d)
    for f in (1, 1.25, 1.5):
        d = copy.deepcopy(base)
        d["clock_ghz"] *= f
        out["clock"].append(d)
    return out


def main() -> None:
    steps = {s: 0 for s in SCHEDULERS}
    slower = {s: 0 for s in SCHEDULERS}
    worst = {s: (0.0, "") for s in SCHEDULERS}
    for chip in ("gaudi1", "gaudi2", "gaudi3"):
        for workload in ("gformer-gpt", "gformer-vit", "gpt2-small", "vit-b16"):
            graph = lower(load_workload(workload, ["layers=1"]))
            for knob, profiles in variants(read_toml(resolve(chip, "chips"))).items():
                before: list[float] | None = None
                for d in profiles:
                    cmp = compare(accelsim.chip_from_dict(d, chip), graph, SCHEDULERS)
                    now = [r.latency_us for r in cmp.results]
                    if before is not None:
                        for s, a, b in zip(SCHEDULERS, before, now, strict=True):
                            steps[s] += 1
                            if b > a:
                                slower[s] += 1
                                if b / a - 1 > worst[s][0]:
                                    worst[s] = (b / a - 1, f"{chip} {workload} {knob}")
                    before = now
    print(
        table(
            ["scheduler", "steps", "slower than the step before", "worst slowdown", "where"],
            [(s, steps[s], slower[s], f"{worst[s][0]:.2%}", worst[s][1] or "-") for s in SCHEDULERS],
        )
    )


if __name__ == "__main__":
    main()
