"""Regenerate tests/data/scalesim_cycles.json by running SCALE-Sim 3.0.0 itself on GEMM shapes.

SCALE-Sim is not a dependency of accelsim (it needs numpy<2): run this in its own environment,
    python -m venv /tmp/ss && /tmp/ss/bin/pip install "numpy<2" scalesim==3.0.0
    /tmp/ss/bin/python tools/scalesim_reference.py > tests/data/scalesim_cycles.json
Each case runs in a fresh folder with memory large enough that no stall occurs; "Total Cycles" of its compute
report is recorded. The tests compare accelsim.systolic_cycles with every recorded case.
"""

import contextlib
import io
import json
import os
import sys
import tempfile

from scalesim.scale_sim import scalesim

CFG = """[general]
run_name = t

[architecture_presets]
ArrayHeight:    {R}
ArrayWidth:     {C}
IfmapSramSzkB:    6144
FilterSramSzkB:   6144
OfmapSramSzkB:    2048
IfmapOffset:    0
FilterOffset:   10000000
OfmapOffset:    20000000
Bandwidth : 10000
Dataflow : {DF}
MemoryBanks:   1
ReadRequestBuffer: 32
WriteRequestBuffer: 32

[layout]
IfmapCustomLayout: False
IfmapSRAMBankBandwidth: 10
IfmapSRAMBankNum: 10
IfmapSRAMBankPort: 2
FilterCustomLayout: False
FilterSRAMBankBandwidth: 10
FilterSRAMBankNum: 10
FilterSRAMBankPort: 2

[sparsity]
SparsitySupport : false
SparseRep : ellpack_block
OptimizedMapping : false
BlockSize : 8
RandomNumberGeneratorSeed : 40

[run_presets]
InterfaceBandwidth: CALC
UseRamulatorTrace: False
"""


def cycles(M, K, N, R, C, df):
    d = os.path.join(tempfile.mkdtemp(prefix="scalesim-"), "run")
    os.makedirs(d, exist_ok=True)
    open(f"{d}/c.cfg", "w").write(CFG.format(R=R, C=C, DF=df))
    open(f"{d}/t.csv", "w").write(f"Layer, M, N, K,\nl0, {M}, {N}, {K},\n")
    open(f"{d}/l.csv", "w").write("Layer,\n")
    with contextlib.redirect_stdout(io.StringIO()):
        s = scalesim(
            save_disk_space=True,
            verbose=False,
            config=f"{d}/c.cfg",
            topology=f"{d}/t.csv",
            layout=f"{d}/l.csv",
            input_type_gemm=True,
        )
        s.run_scale(top_path=d)
    rep = [p for p in os.listdir(d + "/t") if "COMPUTE_REPORT" in p][0]
    lines = open(f"{d}/t/{rep}").read().strip().splitlines()
    hdr = [h.strip() for h in lines[0].split(",")]
    row = [x.strip() for x in lines[1].split(",")]
    return int(float(row[hdr.index("Total Cycles")]))


SHAPES = [
    (1, 1, 1),
    (17, 33, 65),
    (1, 768, 768),
    (768, 1, 768),
    (64, 64, 64),
    (128, 128, 128),
    (129, 127, 65),
    (3, 5, 7),
    (100, 10, 1),
    (256, 64, 256),
    (31, 200, 17),
    (512, 64, 512),
    (8, 8, 300),
    (300, 8, 8),
]
ARRAYS = [(8, 8), (16, 32), (32, 8), (128, 128)]


def main() -> None:
    out = []
    for m, k, n in SHAPES:
        for r, c in ARRAYS:
            if max(m, k, n) >= 300 and r * c < 512:
                continue  # SCALE-Sim's traces take minutes for thousands of folds; big shapes use big arrays
            for df in ("os", "ws", "is"):
                out.append(
                    {"M": m, "K": k, "N": n, "rows": r, "cols": c, "dataflow": df, "cycles": cycles(m, k, n, r, c, df)}
                )
                print(out[-1], file=sys.stderr)
    print(json.dumps({"scalesim": "3.0.0", "cases": out}, indent=1))


if __name__ == "__main__":
    main()
