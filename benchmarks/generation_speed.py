"""What a user waits for: `accelsim generate` on large models with long outputs (the issue's target: a 70B model
with 2048 output tokens in under 10 s on this machine), with the simulations it ran, against simulating every
decode step and every layer (what the shortcuts in accelsim.generation save; measured on one case only, as it
takes minutes).

    python benchmarks/generation_speed.py [--json] [--exact]
"""

from __future__ import annotations

import argparse
import json
import time

import accelsim
from accelsim.catalog import load_model
from accelsim.generation import generate

CASES = (
    ("gaudi2", "meta-llama/Llama-2-70b-hf", "fp8", 1, 128, 2048),
    ("gaudi2", "meta-llama/Llama-2-70b-hf", "fp8", 64, 128, 2048),
    ("gaudi3", "meta-llama/Llama-3.1-70B", "fp8", 32, 2048, 2048),
    ("h100", "meta-llama/Llama-3.1-8B", "bf16", 64, 1024, 2048),
    ("gaudi2", "mistralai/Mixtral-8x7B-v0.1", "fp8", 16, 128, 2048),
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--exact", action="store_true", help="also time every step and layer simulated (slow)")
    args = ap.parse_args()
    rows = []
    for chip_name, model_id, dtype, batch, inputs, outputs in CASES:
        chip, model = accelsim.load_chip(chip_name), load_model(model_id)
        t0 = time.perf_counter()
        g = generate(chip, model, batch, inputs, outputs, dtype)
        rows.append(
            {
                "chip": chip_name,
                "model": model_id,
                "dtype": dtype,
                "batch": batch,
                "input": inputs,
                "output": outputs,
                "seconds": round(time.perf_counter() - t0, 2),
                "tokens_per_s": round(g.tokens_per_s, 1),
            }
        )
    if args.exact:
        chip, model = accelsim.load_chip("gaudi2"), load_model("Salesforce/codegen2-1B")
        for exact in (False, True):
            t0 = time.perf_counter()
            g = generate(chip, model, 16, 128, 256, exact=exact)
            rows.append(
                {
                    "chip": "gaudi2",
                    "model": "Salesforce/codegen2-1B" + (" (every step, every layer)" if exact else ""),
                    "dtype": "bf16",
                    "batch": 16,
                    "input": 128,
                    "output": 256,
                    "seconds": round(time.perf_counter() - t0, 2),
                    "tokens_per_s": round(g.tokens_per_s, 1),
                }
            )
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'chip':7} {'model':55} {'dtype':5} {'batch':>5} {'in':>5} {'out':>5} {'seconds':>8} {'tokens/s':>10}")
    for r in rows:
        print(
            f"{r['chip']:7} {r['model']:55} {r['dtype']:5} {r['batch']:>5} {r['input']:>5} {r['output']:>5} "
            f"{r['seconds']:>8.2f} {r['tokens_per_s']:>10,.1f}"
        )


if __name__ == "__main__":
    main()
