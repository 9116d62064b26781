"""Per-kernel timeline of the calibration script's attention variants and layers, for diagnosing a GPU profile.

gpu_calib.py times whole ops with CUDA events; this records, for the same functions and shapes, every kernel the
op launched (name, device duration, gap before it) with torch.profiler, so a model's error can be traced to a
kernel class (strided copy, masked_fill, cumsum, ...) or to launch gaps. The attention and layer functions are
taken from gpu_calib.py itself (parsed, not copied), so both always time the same code.

Run on a GPU: python3 tools/gpu_kernel_profile.py PATH/TO/gpu_calib.py  (writes $OUT/gpu_kernels.jsonl)
"""

from __future__ import annotations

import ast
import json
import os
import statistics
import sys

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

WANTED = {
    "attn_softmax_unfused",
    "attn_sdpa",
    "attn_window",
    "phi",
    "attn_linear_chunked",
    "attn_linear_outer",
    "layer_fn",
}


def load_calib_functions(path: str, dev: str) -> dict:
    """Exec only the attention/layer definitions of gpu_calib.py (its top level runs the whole measurement)."""
    tree = ast.parse(open(path).read())
    keep = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in WANTED]
    keep += [
        n
        for n in tree.body
        if isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "variants" for t in n.targets)
    ]
    ns = {"torch": torch, "F": F, "dev": dev}
    exec(compile(ast.Module(body=keep, type_ignores=[]), path, "exec"), ns)
    return ns


def kernel_timeline(fn, iters: int = 3) -> list[dict]:
    """Kernels of one call of fn: name, median duration and median gap before it (us) over iters calls."""
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    runs = []
    for _ in range(iters):
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            fn()
            torch.cuda.synchronize()
        ks = sorted(
            (
                e
                for e in prof.events()
                if e.device_type == torch.autograd.DeviceType.CUDA and "Memcpy" not in e.name and "Memset" not in e.name
            ),
            key=lambda e: e.time_range.start,
        )
        runs.append(ks)
    n = min(len(r) for r in runs)
    out = []
    for i in range(n):
        durs = [r[i].time_range.elapsed_us() for r in runs]
        gaps = [r[i].time_range.start - r[i - 1].time_range.end if i else 0.0 for r in runs]
        out.append({"name": runs[0][i].name[:120], "us": statistics.median(durs), "gap_us": statistics.median(gaps)})
    return out


def main() -> None:
    calib = sys.argv[1]
    dev = "cuda"
    dt = torch.bfloat16
    ns = load_calib_functions(calib, dev)
    out = open(os.path.join(os.environ.get("OUT", "."), "gpu_kernels.jsonl"), "w")

    def rec(**kw):
        out.write(json.dumps(kw) + "\n")
        out.flush()

    def R(*shape):
        return torch.randn(*shape, device=dev, dtype=dt)

    p = torch.cuda.get_device_properties(0)
    rec(kind="device", name=p.name, sms=p.multi_processor_count, torch=torch.__version__)
    for r, c in [(8192, 3072), (65536, 1024), (196608, 2048)]:
        x, y = R(r, c), R(r, c)
        w, b = R(c), R(c)
        for op, fn in {
            "add": lambda: x + y,
            "softmax": lambda: torch.softmax(x, -1),
            "layernorm": lambda: F.layer_norm(x, (c,), w, b),
            "copy": lambda: x.clone(),
            "strided_copy": lambda: x.t().contiguous(),
        }.items():
            rec(kind="vector", op=op, rows=r, cols=c, kernels=kernel_timeline(fn))
    for b, h, s, d in [(8, 12, 1024, 64), (8, 12, 2048, 64), (8, 12, 4096, 64), (4, 32, 4096, 128)]:
        q, k, v = R(b, h, s, d), R(b, h, s, d), R(b, h, s, d)
        for name, fn in ns["variants"].items():
            if name == "linear_outer" and b * h * s * d * d * 2 > 4e9:
                continue
            with torch.no_grad():
                ks = kernel_timeline(lambda: fn(q, k, v))
            rec(kind="attention", variant=name, B=b, H=h, S=s, D=d, kernels=ks)
    lcfg = [
        ("gpt2-small", 8, 1024, 768, 12),
        ("gpt2-small", 8, 4096, 768, 12),
        ("gpt2-medium", 4, 2048, 1024, 16),
        ("llama7b-like", 1, 4096, 4096, 32),
    ]
    for mname, b, s, dm, h in lcfg:
        P = {
            "ln1w": R(dm),
            "ln1b": R(dm),
            "ln2w": R(dm),
            "ln2b": R(dm),
            "wqkv": R(dm, 3 * dm) * 0.02,
            "wo": R(dm, dm) * 0.02,
            "w1": R(dm, 4 * dm) * 0.02,
            "w2": R(4 * dm, dm) * 0.02,
        }
        x = R(b, s, dm)
        for variant in ["softmax_unfused", "sdpa_flash", "window256", "linear_chunked", "hybrid"]:
            with torch.no_grad():
                ks = kernel_timeline(lambda: ns["layer_fn"](x, P, variant, h))
            rec(kind="layer", model=mname, variant=variant, B=b, S=s, d_model=dm, heads=h, kernels=ks)
        for t in P.values():
            t.requires_grad_(True)
        x.requires_grad_(True)
        for variant in ["softmax_unfused", "sdpa_flash", "window256", "linear_chunked", "hybrid"]:

            def step():
                for t in P.values():
                    t.grad = None
                x.grad = None
                ns["layer_fn"](x, P, variant, h).float().sum().backward()

            rec(
                kind="layer_train",
                model=mname,
                variant=variant,
                B=b,
                S=s,
                d_model=dm,
                heads=h,
                kernels=kernel_timeline(step),
            )

    print("kernel profile done")


if __name__ == "__main__":
    main()
