"""Plain-text tables for the terminal."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .chip import Chip
from .compiler import CompileReport
from .errors import shown
from .generation import Generation
from .results import Results
from .system import System
from .workload import WorkloadSummary

if TYPE_CHECKING:  # compare imports the schedulers, which would make an import cycle at run time
    from .catalog import Model
    from .compare import Comparison
    from .fit import FitResult
    from .kernel_records import KernelPrediction
    from .system_run import Communication, PipelineStep
    from .training import Search, TrainStep
    from .validation import Validation


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


def communication_line(label: str, c: Communication) -> str:
    """A system card's collectives in one line: how long, how much exposed, how busy each network."""
    names = {"network": "tensor group", "data_network": "replicas"}
    nets = ", ".join(f"{names.get(k, k)} {v:.1%}" for k, v in c.network_utilization.items())
    return (
        f"{label}: step {c.step_ms:,.3f} ms per card; collectives {c.communication_ms:,.3f} ms, "
        f"{c.exposed_ms:,.3f} ms exposed and {c.hidden_ms:,.3f} ms hidden under computation; network busy: {nets}"
    )


def pipeline_report(step: PipelineStep) -> str:
    """A pipeline's step: its 1F1B schedule's bubble, and each stage's forward, backward and optimizer tail."""
    chip = step.placement.chip
    rows = [
        (
            i,
            kind,
            f"{chip.cycles_to_us(t.forward) / 1e3:,.3f}",
            f"{chip.cycles_to_us(t.backward) / 1e3:,.3f}",
            f"{chip.cycles_to_us(t.tail) / 1e3:,.3f}",
        )
        for i, kind in enumerate(step.stages)
        for t in (step.times[kind],)
    ]
    run = step.run
    return (
        f"pipeline: {run.stages} stages x {run.micro_batches} micro-batches (1F1B); step {step.step_ms:,.3f} ms per "
        f"card, bubble {run.bubble:.1%}\n\n"
        + table(["stage", "holds", "forward ms", "backward ms", "optimizer tail ms"], rows)
    )


def pipeline_compare_report(steps: dict[str, PipelineStep]) -> str:
    """compare on a pipeline: the step and bubble under each scheduler."""
    first = next(iter(steps.values()))
    return f"pipeline: {first.run.stages} stages x {first.run.micro_batches} micro-batches (1F1B)\n\n" + table(
        ["scheduler", "step ms", "bubble"],
        [(n, f"{st.step_ms:,.3f}", f"{st.run.bubble:.1%}") for n, st in steps.items()],
    )


def kernel_table(kernels: Sequence[KernelPrediction]) -> str:
    """Kernel and collective records (accelsim.kernel_records): what ran, and its rate measured and predicted."""
    rows = []
    for k in kernels:
        p = k.record["params"]
        if "M" in p:
            what = f"{p['M']}x{p['K']}x{p['N']}"
            detail = str(p.get("scaling_granularity") or "")
        else:
            what = f"{p['op']} {p['ranks']} ranks" + (f" on {p['nodes']} nodes" if p.get("nodes", 1) > 1 else "")
            size = p.get("bytes_per_rank") or p.get("bytes_per_rank_input")
            detail = f"{size / 2**20:,.0f} MiB per rank"
        rows.append(
            (
                k.kind,
                what,
                detail,
                f"{k.measured_ms:.4f}",
                f"{k.predicted_ms:.4f}",
                f"{k.measured_rate:,.1f}",
                f"{k.predicted_rate:,.1f}",
                f"{k.rel_error:+.1%}",
            )
        )
    return table(["kind", "what", "", "measured ms", "predicted ms", "measured rate", "predicted rate", "error"], rows)


def validation_report(result: Validation) -> str:
    """validate's tables: layer and kernel records, kernel and collective rates, generations, the |error|
    statistics, the concurrency check and the records skipped."""
    from collections import Counter

    from .kernel_records import KernelPrediction
    from .validation import MIN_MS

    out: list[str] = []
    rows = []
    generations = [p.to_dict() for p in result.records if p.kind.startswith("llm_generate")]
    kernels = [p for p in result.records if isinstance(p, KernelPrediction)]
    for r in (
        p.to_dict()
        for p in result.records
        if not p.kind.startswith("llm_generate") and not isinstance(p, KernelPrediction)
    ):
        what = r.get("variant") or r.get("op") or "x".join(str(r[k]) for k in ("B", "M", "K", "N") if k in r)
        size = ", ".join(f"{k}={r[k]}" for k in ("B", "H", "S", "D", "rows", "cols", "d_model") if k in r)
        rows.append(
            (
                r["kind"],
                what,
                size,
                f"{r['measured_ms']:.4f}",
                f"{r['predicted_ms']:.4f}",
                f"{r['rel_error']:+.1%}",
                "" if r["measured_ms"] >= MIN_MS else "(< 0.05 ms)",
            )
        )
    if rows:
        out.append(table(["kind", "what", "size", "measured ms", "predicted ms", "error", ""], rows))
    if kernels:
        out.append(kernel_table(kernels))
    if generations:
        out.append(
            table(
                ["model", "cards", "dtype", "batch", "in", "out", "measured tok/s", "predicted tok/s", "error"],
                [
                    (
                        r["model"],
                        r["cards"],
                        r["dtype"],
                        r["batch"],
                        r["input_tokens"],
                        r["output_tokens"],
                        f"{r['measured_tokens_per_s']:,.1f}",
                        f"{r['predicted_tokens_per_s']:,.1f}",
                        f"{r['rel_error']:+.1%}",
                    )
                    for r in generations
                ],
            )
        )
    out.append(f"\n|error| over records of at least {MIN_MS} ms (kernels and layers) and every generation record")
    if result.summary:
        out.append(
            table(
                ["kind", "records", "median", "90th percentile"],
                [
                    (k, v.records, f"{v.median_abs_error:.1%}", f"{v.p90_abs_error:.1%}")
                    for k, v in result.summary.items()
                ],
            )
        )
    else:
        out.append("none: every record is shorter")
    conc = result.concurrency
    if conc:
        out.append(
            f"\nconcurrency: GEMM {conc.gemm_ms:.2f} ms + softmax {conc.softmax_ms:.2f} ms; in a row "
            f"{conc.serial_ms:.2f} ms, on two streams {conc.two_streams_ms:.2f} ms predicted "
            f"(measured {conc.measured_serial_ms:.2f} and {conc.measured_two_streams_ms:.2f} ms)"
        )
    if result.skipped:
        out.append(f"\nskipped {len(result.skipped)} record{'s' if len(result.skipped) > 1 else ''}, not predicted:")
        first: dict[tuple[str, str], int] = {}
        for s in result.skipped:
            first.setdefault((s.kind, s.reason), s.line)
        for (kind, reason), n in Counter((s.kind, s.reason) for s in result.skipped).items():
            out.append(
                f"  {n} {kind} record{'s' if n > 1 else ''} (line {first[kind, reason]}"
                f"{' and more' if n > 1 else ''}): {reason}"
            )
    return "\n".join(out)


def train_report(s: TrainStep) -> str:
    """train's step: the layout and run, step time and MFU, memory per card, and each group's communication."""
    from .training import GROUP_NAMES

    o, lay = s.options, s.layout
    mem = s.memory.to_dict()
    products = f"{s.products_dtype} products, bf16 elsewhere" if o.dtype == "fp8" else o.dtype
    lines = [
        f"train {s.model} on {s.system}: tp={lay.tp} pp={lay.pp} dp={lay.dp} ({lay.cards} cards); global batch "
        f"{o.global_batch} = {s.micro_batches} micro-batch{'es' if s.micro_batches > 1 else ''} of {o.micro_batch} "
        f"per replica; seq {o.seq_len or 'of the images'}; {products}; ZeRO-{o.zero}; recompute {o.recompute}"
        + ("; sequence parallel" if o.sequence_parallel else ""),
        f"step {s.step_ms:,.3f} ms   {s.tokens_per_s:,.0f} tokens/s   MFU {s.mfu:.1%} (6 x parameters x tokens + "
        f"attention 12 x layers x seq x heads x d_head per token, over {lay.cards} x {s.peak_tflops:,.1f} "
        f"{s.products_dtype} TFLOPS)",
    ]
    if lay.pp > 1:
        lines.append(
            f"pipeline bubble {s.bubble:.1%}; stage 0's micro-batch {s.micro_batch_ms:,.3f} ms forward and backward, "
            f"{s.last_ms:,.3f} ms with the optimizer's tail"
        )
    else:
        lines.append(
            f"micro-batch {s.micro_batch_ms:,.3f} ms (forward and backward, gradients accumulated); the last "
            f"{s.last_ms:,.3f} ms (with the replicas' reduction and the update); pipeline bubble none (pp = 1)"
        )
    lines.append(
        f"memory per card: parameters {mem['parameters_gb']:.2f} GB, gradients {mem['gradients_gb']:.2f} GB, "
        f"optimizer {mem['optimizer_gb']:.2f} GB, activations {mem['activations_gb']:.2f} GB = "
        f"{mem['total_gb']:.2f} GB of {s.hbm_gb:.1f} GB"
    )
    if s.communication:
        lines.append("")
        if lay.pp > 1:
            lines.append("communication of stage 0's card (its passes' own overlap; waits on other stages are bubble):")
        lines.append(
            table(
                ["communication", "busy ms", "exposed ms", "hidden ms"],
                [
                    (GROUP_NAMES[k], f"{c.busy_ms:,.3f}", f"{c.exposed_ms:,.3f}", f"{c.hidden_ms:,.3f}")
                    for k, c in s.communication.items()
                ],
            )
        )
    return "\n".join(lines)


def search_report(found: Search, top: int) -> str:
    """train --search: the ranking's first ``top`` layouts, and how many were refused by each reason."""
    rows = []
    for i, s in enumerate(found.ranked[:top], 1):
        exposed = sum(c.exposed_ms for c in s.communication.values())
        rows.append(
            (
                i,
                f"tp={s.layout.tp},pp={s.layout.pp},dp={s.layout.dp}",
                s.options.micro_batch,
                s.micro_batches,
                f"{s.step_ms:,.1f}",
                f"{s.tokens_per_s:,.0f}",
                f"{s.mfu:.1%}",
                f"{s.memory.total / 1e9:,.1f}",
                f"{exposed:,.1f}",
                f"{s.bubble:.1%}",
            )
        )
    tried = len(found.ranked) + len(found.refused)
    out = [
        f"{tried} candidates on {found.cards} cards: {len(found.ranked)} ran, {len(found.refused)} refused",
        "",
        table(
            [
                "rank",
                "layout",
                "micro",
                "micro-batches",
                "step ms",
                "tokens/s",
                "MFU",
                "GB/card",
                "exposed ms",
                "bubble",
            ],
            rows,
        )
        if rows
        else "no layout runs",
    ]
    if found.refused:
        out.append("")
        out.append("refused:")
        examples: dict[str, str] = {}
        for r in found.refused:
            examples.setdefault(
                r.reason, f"tp={r.layout.tp},pp={r.layout.pp},dp={r.layout.dp} micro {r.micro_batch}: {r.detail}"
            )
        for reason, n in found.reasons().items():
            out.append(f"  {n} by {reason}, e.g. {examples[reason]}")
    return "\n".join(out)


@dataclass(frozen=True)
class WorkloadListing:
    """One line of ``accelsim workloads``: the workload's summary (workload.py's keys) and what lowering gives."""

    summary: WorkloadSummary
    flops: int
    bytes: int
    tasks: int
    description: str

    def to_dict(self) -> dict[str, object]:
        return {
            **self.summary.to_dict(),
            "flops": self.flops,
            "bytes": self.bytes,
            "tasks": self.tasks,
            "description": self.description,
        }


def workloads_report(listings: Sequence[WorkloadListing]) -> str:
    """accelsim workloads: each preset's shape, its GFLOP and its tasks."""
    columns = ("name", "layers", "d_model", "heads", "seq_len", "batch", "attention", "mode")
    return table(
        ["workload", "layers", "d_model", "heads", "seq", "batch", "attention", "mode", "GFLOP", "tasks"],
        [(*(getattr(w.summary, c) for c in columns), round(w.flops / 1e9), w.tasks) for w in listings],
    )


def model_report(m: Model) -> str:
    """accelsim models show ID: the architecture, where its config came from, and its spec."""
    lines = [m.id, f"  {m.summary}", f"  source: {m.source or m.path}"]
    if m.note:
        lines.append(f"  note: {m.note}")
    if m.spec is not None:
        lines.append("  " + ", ".join(f"{k}={v}" for k, v in m.spec.items()))
    return "\n".join(lines)


def models_report(models: Sequence[Model]) -> str:
    """accelsim models: the catalog, one model a line."""
    return table(["model", "architecture"], [(m.id, m.summary) for m in models])


def fit_report(result: FitResult, files: Sequence[str]) -> str:
    """accelsim fit: the fitted parameters as TOML lines to paste into the profile (and system)."""
    lines = [
        f"# fitted to {result.records} records of {' and '.join(files)}: median |error| "
        f"{result.median_abs_error:.1%} ({result.evaluations} evaluations); paste into {shown(result.chip)}"
    ]
    lines += [f"{key} = {value}" for key, value in result.parameters.items()]
    if result.system:
        lines.append(f"# paste into {shown(result.system)}")
        lines += [f"{key} = {value}" for key, value in result.system_parameters.items()]
    if result.kinds:
        lines.append("# median |error| per kind: " + ", ".join(f"{k} {v:.1%}" for k, v in result.kinds.items()))
    return "\n".join(lines)


def explicit_line(summary: dict[str, object]) -> str:
    """run --explicit: every card's step against the one-card shortcut's."""
    return (
        f"every card simulated ({summary['cards']} cards, one network): step {summary['step_ms']:,.3f} ms; "
        f"one card standing for all: {summary['shortcut_step_ms']:,.3f} ms"
    )
