"""Plain-text tables for the terminal."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .chip import Chip
from .compiler import CompileReport
from .generation import Generation
from .results import Results
from .system import System

if TYPE_CHECKING:  # compare imports the schedulers, which would make an import cycle at run time
    from .compare import Comparison


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A left-aligned first column, right-aligned numbers, columns sized to fit."""
    cells = [[str(h) for h in headers]] + [[_fmt(v) for v in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for k, r in enumerate(cells):
        parts = [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)]
        lines.append("  ".join(parts).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


def run_report(results: Results) -> str:
    head = (
        f"chip {results.chip.name}  graph {results.graph.name}  scheduler {results.scheduler}  "
        f"tasks {len(results.graph):,}\n"
        f"latency {results.latency_cycles:,} cycles = {results.latency_us:.3f} us   "
        f"utilization " + ", ".join(f"{k} {v:.1%}" for k, v in results.utilization().items())
    )
    rows = [
        (s.name, s.kind, s.tasks, s.busy_cycles, s.idle_cycles, s.longest_idle_cycles, f"{s.utilization:.1%}")
        for s in results.engines
    ]
    return head + "\n\n" + table(["engine", "kind", "tasks", "busy", "idle", "longest idle", "util"], rows)


def chips_report(chips: Sequence[Chip]) -> str:
    rows = []
    for c in chips:
        h = c.headline()
        mat = ", ".join(f"{k} {v:g}" for k, v in h.peak_matrix_tflops.items())
        vec = ", ".join(f"{k} {v:g}" for k, v in h.peak_vector_tflops.items())
        eng = " ".join(f"{v.count}x{k}" for k, v in h.engines.items())
        rows.append((c.name, f"{c.clock_ghz:g}", eng, mat, vec, h.hbm_tb_per_s, h.sram_mb))
    return table(["chip", "GHz", "engines", "matrix TFLOPS", "vector TFLOPS", "HBM TB/s", "SRAM MB"], rows)


def _fabric(system: System) -> str:
    """``switch 18x25`` or ``all-to-all 3x12.5``: the scale-up topology, links and GB/s per link."""
    up = system.spec.scale_up
    return f"{up.topology} {up.links}x{up.link_gbps:g}"


def systems_report(systems: Sequence[System]) -> str:
    """One row per system; bandwidths in GB/s per direction (accelsim.system says how each is derived)."""
    rows = [
        (
            s.name,
            s.chip.name,
            s.total_cards,
            _fabric(s),
            s.scale_up_gbps_per_card,
            s.scale_out_gbps_per_card,
            s.node_bisection_gbps,
            s.bisection_gbps,
        )
        for s in systems
    ]
    headers = [
        "system",
        "chip",
        "cards",
        "scale-up fabric",
        "scale-up GB/s per card",
        "scale-out GB/s per card",
        "node bisection GB/s",
        "bisection GB/s",
    ]
    return table(headers, rows)


def system_report(system: System) -> str:
    """``systems show``: the row of ``systems_report`` and what the file says of each fabric."""
    spec = system.spec
    up, out = spec.scale_up, spec.scale_out
    lines = [
        f"{system.name}: {spec.description}" if spec.description else system.name,
        f"{spec.nodes:,} node{'s' if spec.nodes > 1 else ''} x {spec.cards_per_node:,} x {system.chip.name}",
        f"scale-up: {up.topology}, {up.links} link{'s' if up.links > 1 else ''} of {up.link_gbps:g} GB/s "
        + ("per card pair" if up.topology != "switch" else "per card to the switch")
        + f", {up.latency_us:g} us per message",
    ]
    if out is not None:
        lines.append(
            f"scale-out: {out.topology}, {out.ports_per_card:g} port{'s' if out.ports_per_card != 1 else ''} of "
            f"{out.port_gbps:g} GB/s per card, {out.latency_us:g} us per message"
        )
    if spec.collective_overhead_us:
        lines.append(f"each collective: {spec.collective_overhead_us:g} us of set-up and synchronisation")
    return "\n".join(lines) + "\n\n" + systems_report([system])


def compare_report(cmp: Comparison) -> str:
    used = {cmp.chip.groups[cmp.chip.instance_group[e]].kind for r in cmp.results for e in set(r.engine.tolist())}
    kinds = [k for k in cmp.chip.kinds if k in used]  # kinds no scheduler used are left out of the table
    head = (
        f"chip {cmp.chip.name}  workload {cmp.graph.name}  tasks {len(cmp.graph):,}  lower bound "
        f"{cmp.bound.cycles:,} cycles = {cmp.chip.cycles_to_us(cmp.bound.cycles) / 1e3:.3f} ms "
        f"(critical path {cmp.bound.critical_path:,}, area {cmp.bound.area:,}, memory {cmp.bound.memory:,})"
    )
    rows: list[list[object]] = []
    for r in cmp.rows():
        rows.append(
            [r.scheduler, r.latency_cycles, f"{r.latency_us / 1e3:.3f}", f"{r.speedup:.2f}x"]
            + [f"{r.utilization.get(k, 0):.1%}" for k in kinds]
            + [f"{cmp.chip.cycles_to_us(r.idle_cycles.get(k, 0)) / 1e3:.1f}" for k in kinds]
            + [f"{r.gap_to_bound:+.1%}"]
        )
    headers = (
        ["scheduler", "cycles", "ms", "speedup"]
        + [f"util {k}" for k in kinds]
        + [f"idle {k} (engine-ms)" for k in kinds]
        + ["vs bound"]
    )
    lines = [head, "", table(headers, rows)]
    for r in cmp.rows():
        if r.split is not None:
            s = r.split
            lines.append(
                f"\n{r.scheduler}: {s['to_vector']} of {s['dual_tasks']} dual-capable tasks on vector "
                f"cores (fraction {s['fraction_to_vector']:g}; closed form {s['closed_form_fraction']:g}; "
                f"chosen candidate {s['chosen']})"
            )
    return "\n".join(lines)


def compile_report(report: CompileReport) -> str:
    """What the chip's compiler did: tasks per op before and after, fusion, on-chip tensors, HBM bytes, work."""
    saved = report.hbm_bytes_before - report.hbm_bytes_after
    share = saved / report.hbm_bytes_before if report.hbm_bytes_before else 0.0
    lines = [
        f"chip {report.chip}  tasks {report.tasks_before:,} -> {report.tasks_after:,}  "
        f"fused kernels {report.fused_kernels:,} ({report.ops_fused_away:,} ops folded in)  "
        f"weight prefetches {report.prefetches:,}  tensors kept on chip {report.tensors_on_chip:,}",
        f"HBM bytes {report.hbm_bytes_before:,} -> {report.hbm_bytes_after:,} (saved {saved:,}, {share:.1%}, if "
        "every tensor planned on chip stays there)",
        "",
    ]
    ops = sorted(set(report.tasks_per_op_before) | set(report.tasks_per_op_after))
    lines.append(
        table(
            ["op", "tasks before", "tasks after"],
            [(op, report.tasks_per_op_before.get(op, 0), report.tasks_per_op_after.get(op, 0)) for op in ops],
        )
    )
    lines += [
        "",
        table(["engine kind", "GFLOP"], [(k, round(v / 1e9, 3)) for k, v in sorted(report.flops_per_kind.items())]),
    ]
    lines += [f"warning: {w}" for w in report.warnings]
    return "\n".join(lines)


def generation_report(g: Generation) -> str:
    """A generation's headline numbers; each phase's time, share of HBM's peak bandwidth and of the matrix engines'
    peak MAC rate (what bounds it), busy engines and idle engine-time; the memory it needs."""
    lines = [
        f"{g.model} on {g.chip if g.cards == 1 else f'{g.cards} x {g.chip} (tensor parallel)'}: batch {g.batch}, "
        f"{g.input_tokens} input and {g.output_tokens} output tokens, {g.dtype}"
        + ("" if g.attention == "fused" else f", {g.attention} attention")
        + ("" if g.experts_used is None else f", {g.experts_used} experts read per layer"),
        f"  time to first token   {g.ttft_ms:,.2f} ms",
        "  time per output token "
        + (f"{g.tpot_ms:,.3f} ms" if g.tpot_ms is not None else "n/a (one output token: no decode step)"),
        f"  latency               {g.latency_ms:,.1f} ms",
        f"  throughput            {g.tokens_per_s:,.1f} tokens/s",
        "",
    ]
    kinds = list(g.prefill.utilization)
    rows = [
        (
            name,
            f"{p.latency_ms:,.2f}",
            f"{100 * p.hbm_bandwidth_utilization:.1f}%",
            f"{100 * p.matrix_mac_utilization:.1f}%",
            *(f"{100 * p.utilization[k]:.1f}%" for k in kinds),
            *(f"{p.idle_ms[k]:,.1f}" for k in kinds),
        )
        for name, p in (("prefill", g.prefill), ("decode", g.decode))
    ]
    headers = [
        "phase",
        "ms",
        "HBM bw",
        "matrix MACs",
        *(f"{k} busy" for k in kinds),
        *(f"{k} idle engine-ms" for k in kinds),
    ]
    lines.append(table(headers, rows))
    m = g.memory
    lines.append(
        f"\nmemory{' per card' if g.cards > 1 else ''}: weights {m.weights_gb:.2f} GB + KV cache "
        f"{m.kv_cache_gb:.2f} GB of {m.hbm_gb:.1f} GB HBM"
        f" ({'fits' if m.fits else 'does not fit'})"
    )
    return "\n".join(lines)
