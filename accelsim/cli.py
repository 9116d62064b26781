"""The ``accelsim`` command. Bad input prints one line and exits 2, never a traceback."""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import NoReturn

from . import run as run_graph
from .analytic import analytic_counts
from .catalog import catalog_ids, load_model, model_workload, model_workload_data
from .chip import Chip, load_chip
from .compare import compare
from .compiler import compile_graph, compiler_warnings
from .errors import AccelsimError
from .graph import TaskGraph, load_graph
from .kernel_records import KernelPrediction
from .lowering import lower
from .outputs import check_output_dir, check_output_file, safe_name
from .parallel import Layout, whole_number
from .registry import DEFAULT_SCHEDULER, get_scheduler, load_plugin, scheduler_names
from .report import (
    chips_report,
    compare_report,
    compile_report,
    generation_report,
    run_report,
    system_report,
    systems_report,
    table,
)
from .resources import shipped_names
from .system import System, load_system
from .system_run import PipelineStep, pipeline_step
from .trace import write_chrome_trace
from .train_cli import add_plot_train_options, add_train_parser, cmd_train, plot_train
from .workload import WorkloadSummary, load_workload, workload_data


def _add_inputs(sp: argparse.ArgumentParser, chip_help: str, system: bool = False) -> None:
    """The options every simulating command shares: what to run, on which chip (or system), with which plugins."""
    sp.add_argument("--chip", required=not system, help=chip_help)
    if system:
        sp.add_argument(
            "--system",
            help="a system of many cards (accelsim systems) instead of --chip: one card of --parallel's layout is "
            "simulated, standing for all (every card does the same work at the same time)",
        )
        sp.add_argument(
            "--parallel",
            metavar="tp=T,pp=P,dp=D",
            help="with --system: tensor, pipeline and data parallel degrees, whose product is the system's cards "
            "(default: tensor parallel over one node); --set batch is each replica's sequences",
        )
        sp.add_argument(
            "--nodes",
            type=_positive,
            help="with --system: this many of its nodes, whose cards the layout must use (default: those it fills)",
        )
    what = sp.add_mutually_exclusive_group(required=True)
    what.add_argument("--workload", help="shipped workload name or path to a .toml workload")
    what.add_argument("--graph", help="hand-written task graph file (.toml)")
    what.add_argument(
        "--model",
        help="a catalog model id (accelsim models) or a config.json: one pass of batch 1 x 128 tokens unless --set "
        "says otherwise (--set seq_len=1024 --set batch=8 --set mode=training)",
    )
    sp.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a workload field, e.g. --set seq_len=4096 --set mode=training (a workload. "
        "prefix, as sweep --set takes it, may be written)",
    )
    _add_plugin(sp)


def _add_plugin(sp: argparse.ArgumentParser) -> None:
    sp.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="MODULE_OR_FILE",
        help="import a module or .py file that registers schedulers (repeatable)",
    )


def comma_list(text: str, option: str, what: str = "name") -> list[str]:
    """The one parser of comma-separated options (``--schedulers naive,heft``, ``--chip``, ``--workload``,
    ``--parallel``): items stripped; an empty item (``a,,b``, ``,``), no item at all, or an item given twice is
    refused naming the option."""
    items = [item.strip() for item in text.split(",")]
    if not any(items):
        raise AccelsimError(f"name at least one {what}, got {text!r}", key=option)
    if not all(items):
        raise AccelsimError(f"an empty {what} in {text!r} (two commas, or one at an end)", key=option)
    twice = sorted({i for i in items if items.count(i) > 1})
    if twice:
        raise AccelsimError(f"{', '.join(map(repr, twice))} given more than once in {text!r}", key=option)
    return items


class _UsageError(AccelsimError):
    """argparse's own refusal (a missing option, a bad value, an unknown command), in the one-line form."""


class _Parser(argparse.ArgumentParser):
    """argparse, but its refusals are the one line ``accelsim: error: OPTION: what is allowed`` and exit 2 that
    every other bad input gets, not usage text (``accelsim COMMAND --help`` still prints the usage)."""

    def error(self, message: str) -> NoReturn:
        raise _UsageError(re.sub(r"^argument ([^:]+): ", r"\1: ", message).replace("\n", " "))


def _positive(text: str) -> int:
    """An argparse type: a whole number from 1 to MAX_WORKLOAD_SIZE."""
    from .limits import MAX_WORKLOAD_SIZE

    value = whole_number(text.strip())
    if value is None:
        raise argparse.ArgumentTypeError(f"expected a whole number (ASCII digits), got {text!r}")
    if not 1 <= value <= MAX_WORKLOAD_SIZE:
        raise argparse.ArgumentTypeError(f"must be from 1 to {MAX_WORKLOAD_SIZE:,}, got {value}")
    return value


def _add_generation(sp: argparse.ArgumentParser, required: bool) -> None:
    """What a generation is: sequences, prompt and output lengths, the precision."""
    sp.add_argument("--batch", type=_positive, required=required, help="sequences generated together")
    sp.add_argument("--input-tokens", type=_positive, required=required, help="prompt tokens per sequence")
    sp.add_argument("--output-tokens", type=_positive, required=required, help="new tokens per sequence")
    sp.add_argument(
        "--dtype",
        choices=["bf16", "fp8"],
        default="bf16",
        help="bf16, or fp8 as Gaudi's fp8 recipe (matrix products and the KV cache in fp8, the rest in bf16)",
    )


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="accelsim", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    chips = sub.add_parser("chips", help="list shipped chip profiles, or `chips show NAME` to check one")
    chips.add_argument(
        "action", nargs="?", metavar="show", help="show one profile's figures (the word may be left out)"
    )
    chips.add_argument("name", nargs="?", help="shipped name or path to a .toml profile")
    chips.add_argument("--json", action="store_true")

    systems = sub.add_parser("systems", help="list shipped systems of many cards, or `systems show NAME` to check one")
    systems.add_argument(
        "action", nargs="?", metavar="show", help="show one system's figures (the word may be left out)"
    )
    systems.add_argument("name", nargs="?", help="shipped name or path to a .toml system")
    systems.add_argument("--json", action="store_true")

    run = sub.add_parser("run", help="simulate a workload or a task graph on a chip, or on a system of many cards")
    _add_inputs(run, "shipped chip name or path to a .toml profile", system=True)
    run.add_argument("--scheduler", default=DEFAULT_SCHEDULER, help="registered scheduler name")
    run.add_argument(
        "--explicit",
        action="store_true",
        help="with --system: simulate every card in one clock, the collectives on one shared network (slow; checks "
        "the one-card shortcut, and sees collectives of two groups sharing links)",
    )
    run.add_argument("--trace", help="write a Chrome trace (Perfetto, chrome://tracing) to this path")
    run.add_argument("--json", action="store_true", help="print one JSON object with every task's placement")

    cpl = sub.add_parser("compile", help="show what the chip's graph compiler makes of a workload or a task graph")
    _add_inputs(cpl, "shipped chip name or path to a .toml profile")
    cpl.add_argument("--json", action="store_true")

    cmp = sub.add_parser("compare", help="compare schedulers on one chip (or a system's card) and workload")
    _add_inputs(cmp, "shipped chip name or path to a .toml profile", system=True)
    cmp.add_argument("--schedulers", default="naive,balanced,heft", help="comma-separated registered names")
    cmp.add_argument("--json", action="store_true")

    plot = sub.add_parser("plot", help="draw timelines, idle time, utilization and a chip comparison")
    _add_inputs(plot, "one chip, or several separated by commas", system=True)
    plot.add_argument("--schedulers", default="naive,balanced")
    plot.add_argument("--out", required=True, help="folder for the PNG and SVG files")
    _add_generation(plot, required=False)
    add_plot_train_options(plot)

    sw = sub.add_parser("sweep", help="simulate every combination of chip-profile values, workloads and schedulers")
    sw.add_argument("--chip", required=True, help="the base profile, by name or path")
    sw.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="chip.KEY=V1,... | workload.KEY=V1,...",
        help="a swept key and its values: chip.KEY is a dotted key of the profile's TOML "
        "(chip.engines.tpc.count=8,16,24), workload.KEY a workload field as run --set takes it "
        "(workload.seq_len=1024,4096)",
    )
    sw.add_argument("--workload", required=True, help="one or more workloads, separated by commas")
    sw.add_argument("--schedulers", default="naive,balanced")
    sw.add_argument("--out", required=True, help="results file: .csv, or .parquet")
    where = sw.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, help="local processes (default: all cores)")
    where.add_argument("--dask", metavar="ADDRESS", help="run on an existing Dask cluster's scheduler")
    sw.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_plugin(sw)

    swp = sub.add_parser("sweep-plot", help="plot a sweep's results")
    swp.add_argument("file")
    swp.add_argument("--out", required=True, help="folder for the PNG and SVG files")

    val = sub.add_parser("validate", help="predict measured latencies and report the errors")
    val.add_argument("--chip", help="the chip predicted; optional for train_step records, whose system names it")
    val.add_argument("--measurements", required=True, help="JSON-lines records (../shared/calibration schema)")
    val.add_argument("--json", action="store_true")

    fit = sub.add_parser(
        "fit",
        help="fit a profile's efficiency parameters: a GPU's to measured kernel latencies, a Gaudi's to llm_generate "
        "throughputs",
    )
    fit.add_argument("--chip", required=True)
    fit.add_argument(
        "--measurements",
        required=True,
        nargs="+",
        help="JSON-lines records; for a Gaudi-class profile several files (generation and kernel records)",
    )
    fit.add_argument("--json", action="store_true")

    models = sub.add_parser("models", help="list the model catalog, or `models show ID` for one model")
    models.add_argument(
        "action", nargs="?", metavar="show", help="show one model's architecture (the word may be left out)"
    )
    models.add_argument("id", nargs="?", help="catalog id (a Hugging Face id) or path to a config.json")
    models.add_argument("--json", action="store_true")

    gen = sub.add_parser("generate", help="predict LLM generation: a prefill, then one decode step per token")
    gen.add_argument("--chip", required=True, help="shipped chip name or path to a .toml profile")
    gen.add_argument("--model", required=True, help="catalog id (accelsim models) or path to a config.json")
    _add_generation(gen, required=True)
    gen.add_argument(
        "--cards",
        type=_positive,
        default=1,
        help="tensor parallel over this many cards of the chip's one-node system (accelsim systems)",
    )
    gen.add_argument("--scheduler", default=DEFAULT_SCHEDULER, help="registered scheduler name")
    gen.add_argument("--json", action="store_true")
    _add_plugin(gen)

    wls = sub.add_parser("workloads", help="list the shipped workload presets")
    wls.add_argument("--json", action="store_true")

    sub.add_parser("schedulers", help="list registered schedulers")
    add_train_parser(sub)
    return p


def _graph(args: argparse.Namespace) -> TaskGraph:
    if args.graph:
        if args.set:
            raise AccelsimError("--set overrides workload fields; it cannot be used with --graph", key="--set")
        return load_graph(args.graph)
    items = _overrides(args)
    if args.model:
        return lower(model_workload(args.model, items))
    return lower(load_workload(args.workload, items))


def _overrides(args: argparse.Namespace) -> list[str]:
    """--set's workload overrides (a chip key there is an error: chips are set in their profiles)."""
    items = []
    for item in args.set:
        if item.strip().startswith("chip."):
            raise AccelsimError(
                f"{args.command} --set overrides workload fields; a chip's keys are set in its "
                "profile, or swept with accelsim sweep --set chip.KEY=V1,V2",
                key=item.split("=")[0],
            )
        items.append(item.strip().removeprefix("workload."))  # the prefix a sweep's --set uses is taken here too
    return items


def _layout(args: argparse.Namespace) -> Layout | None:
    """--parallel's layout (None where not given), every bound checked as it is parsed (Layout.of_items)."""
    text = getattr(args, "parallel", None)
    return None if text is None else Layout.of_items(comma_list(text, "--parallel", "degree"))


def _on_system(args: argparse.Namespace) -> tuple[System, Layout, dict, str]:
    """--system's system, --parallel's layout (default: tensor parallel over one node), and the workload's dict
    and source (--workload or --model, --set applied)."""
    system = load_system(args.system)
    layout = _layout(args) or Layout(tp=system.spec.cards_per_node)
    items = _overrides(args)
    data, source = model_workload_data(args.model, items) if args.model else workload_data(args.workload, items)
    return system, layout, data, source


def _pipeline(args: argparse.Namespace) -> PipelineStep | None:
    """With --system and pp > 1: the pipeline step (None otherwise)."""
    layout = _layout(args)
    if getattr(args, "system", None) is None or layout is None or layout.pp == 1:
        return None
    if args.chip is not None or args.graph:
        raise AccelsimError("a system runs a workload (--workload or --model), not --chip or --graph", key="--system")
    system, layout, data, source = _on_system(args)
    return pipeline_step(system, layout, data, source, getattr(args, "scheduler", DEFAULT_SCHEDULER), args.nodes)


def _compare_pipeline(args: argparse.Namespace, names: list[str]) -> None:
    """compare with pp > 1: each scheduler schedules every stage's card; the pipeline's step under each."""
    steps = {}
    for name in names:
        args.scheduler = get_scheduler(name).name
        step = _pipeline(args)
        assert step is not None
        steps[name] = step
    if args.json:
        print(json.dumps({n: {"step_ms": st.step_ms, "bubble": round(st.run.bubble, 4)} for n, st in steps.items()}))
        return
    first = next(iter(steps.values()))
    print(f"pipeline: {first.run.stages} stages x {first.run.micro_batches} micro-batches (1F1B)\n")
    print(
        table(
            ["scheduler", "step ms", "bubble"],
            [(n, f"{st.step_ms:,.3f}", f"{st.run.bubble:.1%}") for n, st in steps.items()],
        )
    )


def _pipeline_report(step: PipelineStep) -> str:
    rows = [
        (
            i,
            kind,
            f"{step.placement.chip.cycles_to_us(t.forward) / 1e3:,.3f}",
            f"{step.placement.chip.cycles_to_us(t.backward) / 1e3:,.3f}",
            f"{step.placement.chip.cycles_to_us(t.tail) / 1e3:,.3f}",
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


def _target(args: argparse.Namespace) -> tuple[Chip, TaskGraph, bool]:
    """The chip (a system's card, with its networks) and graph a run or compare simulates, and whether it is a
    system's."""
    system = getattr(args, "system", None)
    if system is None:
        for option in ("parallel", "nodes"):
            if getattr(args, option, None):
                raise AccelsimError(f"--{option} lays a workload out on a system: give --system", key=f"--{option}")
        if args.chip is None:
            raise AccelsimError("give --chip (one chip) or --system (many cards)", key="--chip")
        return load_chip(args.chip), _graph(args), False
    if args.chip is not None:
        raise AccelsimError("give --chip or --system, not both (a system names its chip)", key="--chip")
    if args.graph:
        raise AccelsimError("a system runs a workload (--workload or --model), not a task graph", key="--graph")
    from .system_run import place

    loaded, layout, data, source = _on_system(args)
    placement = place(loaded, layout, data, source, nodes=args.nodes)
    return placement.chip, lower(placement.workload), True


def _cmd_compare(args: argparse.Namespace) -> None:
    names = comma_list(args.schedulers, "--schedulers", "scheduler")
    layout = _layout(args)
    if getattr(args, "system", None) and layout is not None and layout.pp > 1:
        _compare_pipeline(args, names)
        return
    chip, graph, on_system = _target(args)
    result = compare(chip, graph, names)
    _warn_of(result.graph)
    if not on_system:
        print(json.dumps(result.to_dict()) if args.json else compare_report(result))
        return
    from .system_run import communication

    comms = {r.scheduler: communication(r) for r in result.results}
    if args.json:
        print(json.dumps({**result.to_dict(), "communication": {k: v.to_dict() for k, v in comms.items()}}))
        return
    print(compare_report(result))
    for name, c in comms.items():
        print(_communication_line(name, c))


def _cmd_plot(args: argparse.Namespace) -> None:
    from . import plots

    check_output_dir(args.out, "--out")
    if plot_train(args):
        return
    if args.model and args.output_tokens is not None:
        _plot_generation(args)
        return
    step = _pipeline(args)
    if step is not None:
        name = safe_name(f"pipeline_{step.placement.system.name}")
        print(
            "\n".join(
                map(str, plots.save(plots.pipeline_chart(step.run, step.placement.workload.name), args.out, name))
            )
        )
        return
    names = comma_list(args.schedulers, "--schedulers", "scheduler")
    if getattr(args, "system", None):  # a system's card: its network engines are timeline rows like the others
        card, graph, _ = _target(args)
        loaded, chips = [card], [card.name]
    else:
        chips = comma_list(args.chip, "--chip", "chip")
        graph = _graph(args)
        loaded = [load_chip(c) for c in chips]  # every profile checked before the first simulation
    everything: list = []
    used: set[str] = set()

    def stem(*parts: str) -> str:
        """A file name from chip and scheduler names: made safe (no path separator, no ..), and unique (two
        chips whose names differ only in unsafe characters do not overwrite each other's figures)."""
        base = safe_name("_".join(parts))
        out, n = base, 2
        while out in used:
            out, n = f"{base}-{n}", n + 1
        used.add(out)
        return out

    for chip in loaded:
        result = compare(chip, graph, names)
        everything += result.results
        for r in result.results:
            written = plots.save(plots.timeline(r), args.out, stem("timeline", chip.name, r.scheduler))
            written += plots.save(plots.utilization_over_time(r), args.out, stem("utilization", chip.name, r.scheduler))
            print("\n".join(map(str, written)))
        print("\n".join(map(str, plots.save(plots.idle_chart(result.results), args.out, stem("idle", chip.name)))))
    if len(chips) > 1:
        print("\n".join(map(str, plots.save(plots.comparison(everything), args.out, stem("comparison")))))


def _generation_args(args: argparse.Namespace) -> tuple[int, int, int]:
    missing = [f"--{k.replace('_', '-')}" for k in ("batch", "input_tokens") if getattr(args, k) is None]
    if missing:
        raise AccelsimError(f"a generation also needs {' and '.join(missing)}", key="--output-tokens")
    return args.batch, args.input_tokens, args.output_tokens


def _plot_generation(args: argparse.Namespace) -> None:
    """Timelines of the prefill and of the last decode step, and idle time per phase."""
    from . import plots
    from .generation import generate, phase_runs

    chips = comma_list(args.chip, "--chip", "chip")
    batch, inputs, outputs = _generation_args(args)
    model = load_model(args.model)
    scheduler = get_scheduler(comma_list(args.schedulers, "--schedulers", "scheduler")[0]).name
    for name in chips:
        chip = load_chip(name)
        g = generate(chip, model, batch, inputs, outputs, args.dtype, scheduler)
        prefill, decode = phase_runs(chip, model, batch, inputs, outputs, args.dtype, scheduler)
        stem = safe_name(f"{chip.name}_{model.id}")
        written = plots.save(plots.timeline(prefill), args.out, f"timeline_prefill_{stem}")
        written += plots.save(plots.timeline(decode), args.out, f"timeline_decode_{stem}")
        written += plots.save(plots.phase_idle_chart(g), args.out, f"idle_phases_{stem}")
        print("\n".join(map(str, written)))


def _shown(args: argparse.Namespace, field: str) -> str | None:
    """``show NAME``, or ``NAME`` alone (``accelsim chips gaudi2``): the name to show, or None to list them all."""
    action, name = args.action, getattr(args, field)
    if action is None:
        return None
    if action != "show":
        if name is not None:
            raise AccelsimError(f"expected `{args.command} show NAME` or `{args.command} NAME`", key=action)
        return action
    if not name:
        what = {"chips": "a chip name or path", "systems": "a system name or path"}
        needs = what.get(args.command, "a catalog id or a path to a config.json")
        raise AccelsimError(f"`accelsim {args.command} show` needs {needs}", key=field.upper())
    return str(name)


def _cmd_models(args: argparse.Namespace) -> None:
    shown = _shown(args, "id")
    if shown is not None:
        m = load_model(shown)
        if args.json:
            print(json.dumps(m.to_dict(), indent=2))
            return
        print(f"{m.id}\n  {m.summary}\n  source: {m.source or m.path}")
        if m.note:
            print(f"  note: {m.note}")
        if m.spec is not None:
            print("  " + ", ".join(f"{k}={v}" for k, v in m.spec.items()))
        return
    models = [load_model(i) for i in catalog_ids()]
    if args.json:
        print(json.dumps([m.to_dict() for m in models], indent=2))
        return
    print(table(["model", "architecture"], [(m.id, m.summary) for m in models]))


def _cmd_generate(args: argparse.Namespace) -> None:
    from .generation import generate

    g = generate(
        load_chip(args.chip),
        load_model(args.model),
        args.batch,
        args.input_tokens,
        args.output_tokens,
        args.dtype,
        get_scheduler(args.scheduler).name,
        cards=args.cards,
    )
    if args.json:
        print(json.dumps(g.to_dict(), allow_nan=False))
        return
    print(generation_report(g))


def _cmd_sweep(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .sweep import Journal, parse_axis, plan, run_sweep

    if args.workers is not None and args.workers < 1:
        raise AccelsimError(f"must be at least 1, got {args.workers}", key="--workers")
    out = Path(args.out)
    if out.suffix not in (".csv", ".parquet"):
        raise AccelsimError("the results file must end in .csv or .parquet", source=args.out, key="--out")
    Journal(out, ()).check()  # where the rows go, before anything runs
    if not args.set:
        raise AccelsimError(
            "name at least one --set chip.KEY=V1,V2,... or workload.KEY=V1,V2,... to sweep", key="--set"
        )
    axes = [parse_axis(a) for a in args.set]
    keys = [a.key for a in axes]
    for k in keys:
        if keys.count(k) > 1:
            raise AccelsimError("swept by two --set options; give its values in one", source="--set", key=k)
    names = comma_list(args.schedulers, "--schedulers", "scheduler")
    for n in names:
        get_scheduler(n)
    units = plan(args.chip, axes, comma_list(args.workload, "--workload", "workload"), names, args.plugin)
    stats = run_sweep(units, out, workers=args.workers, dask=args.dask, progress=not args.quiet)
    print(
        f"{stats.ran} of {stats.units} points run ({stats.skipped} already in {out}), "
        f"{stats.failed} failed, {stats.seconds:.1f} s"
    )
    if stats.failed:
        print(
            f"accelsim: error: {stats.failed} of {stats.ran} points failed; their rows in {out} give the error",
            file=sys.stderr,
        )
        return 1
    return 0


def _cmd_sweep_plot(args: argparse.Namespace) -> None:
    from pathlib import Path

    from .sweep_plot import sweep_plots

    check_output_dir(args.out, "--out")
    for p in sweep_plots(Path(args.file), Path(args.out)):
        print(p)


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


def _cmd_workloads(args: argparse.Namespace) -> None:
    listings = []
    for name in shipped_names("workloads"):
        wl = load_workload(name)
        flops, nbytes = analytic_counts(wl)
        listings.append(WorkloadListing(wl.summary(), flops, nbytes, len(lower(wl)), wl.spec.description))
    if args.json:
        print(json.dumps([w.to_dict() for w in listings], indent=2))
        return
    columns = ("name", "layers", "d_model", "heads", "seq_len", "batch", "attention", "mode")
    print(
        table(
            ["workload", "layers", "d_model", "heads", "seq", "batch", "attention", "mode", "GFLOP", "tasks"],
            [(*(getattr(w.summary, c) for c in columns), round(w.flops / 1e9), w.tasks) for w in listings],
        )
    )


def _cmd_chips(args: argparse.Namespace) -> None:
    shown = _shown(args, "name")
    if shown is not None:
        chip = load_chip(shown)
        if args.json:
            print(json.dumps(asdict(chip.headline()), indent=2))
        else:
            print(chips_report([chip]))
        return
    chips = [load_chip(n) for n in shipped_names("chips")]
    if args.json:
        print(json.dumps([asdict(c.headline()) for c in chips], indent=2))
    else:
        print(chips_report(chips))


def _cmd_systems(args: argparse.Namespace) -> None:
    shown = _shown(args, "name")
    if shown is not None:
        system = load_system(shown)
        print(json.dumps(asdict(system.summary()), indent=2) if args.json else system_report(system))
        return
    systems = [load_system(n) for n in shipped_names("systems")]
    if args.json:
        print(json.dumps([asdict(s.summary()) for s in systems], indent=2))
    else:
        print(systems_report(systems))


def _cmd_compile(args: argparse.Namespace) -> None:
    report = compile_graph(_graph(args), load_chip(args.chip)).report
    print(json.dumps(report.to_dict()) if args.json else compile_report(report))


def _warn_of(graph: TaskGraph) -> None:
    """The compiler's warnings about a graph it compiled, one line each on stderr."""
    for w in compiler_warnings(graph):
        print(f"accelsim: warning: {w}", file=sys.stderr)


def _communication_line(label: str, c: object) -> str:
    from .system_run import Communication

    assert isinstance(c, Communication)
    names = {"network": "tensor group", "data_network": "replicas"}
    nets = ", ".join(f"{names.get(k, k)} {v:.1%}" for k, v in c.network_utilization.items())
    return (
        f"{label}: step {c.step_ms:,.3f} ms per card; collectives {c.communication_ms:,.3f} ms, "
        f"{c.exposed_ms:,.3f} ms exposed and {c.hidden_ms:,.3f} ms hidden under computation; network busy: {nets}"
    )


def _run_explicit(args: argparse.Namespace) -> None:
    """run --explicit: every card of the layout simulated; the step against the one-card shortcut's."""
    from .explicit import explicit_step

    if not getattr(args, "system", None):
        raise AccelsimError("--explicit simulates every card of a system: give --system", key="--explicit")
    if args.trace:
        raise AccelsimError("--explicit writes no trace (one card's: run without it)", key="--trace")
    chip, graph, _ = _target(args)  # the shortcut's card, and every check of the layout
    shortcut = run_graph(chip, graph, args.scheduler)
    system, layout, data, source = _on_system(args)
    every = explicit_step(system, layout, data, source, args.scheduler, args.nodes)
    to_ms = chip.cycles_to_us(1) / 1e3
    summary = {
        "cards": len(every.cards),
        "step_ms": round(every.latency_cycles * to_ms, 4),
        "shortcut_step_ms": round(shortcut.latency_cycles * to_ms, 4),
        "per_card_step_ms": [round(r.latency_cycles * to_ms, 4) for r in every.cards],
    }
    if args.json:
        print(json.dumps(summary))
        return
    print(
        f"every card simulated ({summary['cards']} cards, one network): step {summary['step_ms']:,.3f} ms; "
        f"one card standing for all: {summary['shortcut_step_ms']:,.3f} ms"
    )


def _cmd_run(args: argparse.Namespace) -> None:
    if args.trace:
        check_output_file(args.trace, "--trace")  # before the simulation, not after it
    step = _pipeline(args)
    if step is not None:
        if args.trace:
            raise AccelsimError("a pipeline's timeline is drawn by accelsim plot, not traced", key="--trace")
        if args.json:
            print(
                json.dumps(
                    {
                        "step_ms": step.step_ms,
                        "bubble": round(step.run.bubble, 4),
                        "stages": list(step.stages),
                        "micro_batches": step.run.micro_batches,
                        "stage_cycles": {k: asdict(t) for k, t in step.times.items()},
                    }
                )
            )
        else:
            print(_pipeline_report(step))
        return
    if args.explicit:
        _run_explicit(args)
        return
    chip, graph, on_system = _target(args)
    results = run_graph(chip, graph, args.scheduler)
    _warn_of(results.graph)
    if args.trace:
        write_chrome_trace(results, args.trace)
    comms = None
    if on_system:
        from .system_run import communication

        comms = communication(results)
    if args.json:
        out = results.to_dict(tasks=True)
        if comms is not None:
            out["communication"] = comms.to_dict()
        print(json.dumps(out))
    else:
        print(run_report(results))
        if comms is not None:
            print("\n" + _communication_line("communication", comms))
        if args.trace:
            print(f"\ntrace written to {args.trace}")


def _kernel_table(kernels: Sequence[KernelPrediction]) -> str:
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


def _cmd_validate(args: argparse.Namespace) -> None:
    from collections import Counter

    from .validation import MIN_MS, read_records, validate

    result = validate(load_chip(args.chip) if args.chip else None, read_records(args.measurements))
    for w in result.warnings:
        print(f"accelsim: warning: {w}", file=sys.stderr)
    if args.json:
        print(json.dumps(result.to_dict(), allow_nan=False))
        return
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
        print(table(["kind", "what", "size", "measured ms", "predicted ms", "error", ""], rows))
    if kernels:
        print(_kernel_table(kernels))
    if generations:
        print(
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
    print(f"\n|error| over records of at least {MIN_MS} ms (kernels and layers) and every generation record")
    if result.summary:
        print(
            table(
                ["kind", "records", "median", "90th percentile"],
                [
                    (k, v.records, f"{v.median_abs_error:.1%}", f"{v.p90_abs_error:.1%}")
                    for k, v in result.summary.items()
                ],
            )
        )
    else:
        print("none: every record is shorter")
    conc = result.concurrency
    if conc:
        print(
            f"\nconcurrency: GEMM {conc.gemm_ms:.2f} ms + softmax {conc.softmax_ms:.2f} ms; in a row "
            f"{conc.serial_ms:.2f} ms, on two streams {conc.two_streams_ms:.2f} ms predicted "
            f"(measured {conc.measured_serial_ms:.2f} and {conc.measured_two_streams_ms:.2f} ms)"
        )
    if result.skipped:
        print(f"\nskipped {len(result.skipped)} record{'s' if len(result.skipped) > 1 else ''}, not predicted:")
        first: dict[tuple[str, str], int] = {}
        for s in result.skipped:
            first.setdefault((s.kind, s.reason), s.line)
        for (kind, reason), n in Counter((s.kind, s.reason) for s in result.skipped).items():
            print(
                f"  {n} {kind} record{'s' if n > 1 else ''} (line {first[kind, reason]}"
                f"{' and more' if n > 1 else ''}): {reason}"
            )


def _cmd_fit(args: argparse.Namespace) -> None:
    from .fit import fit
    from .fit_generation import fit_generation
    from .validation import read_records

    files = [read_records(path) for path in args.measurements]
    generation = any(r.record.get("kind") == "llm_generate" for m in files for r in m.records)
    if generation:
        result = fit_generation(args.chip, files)
    elif len(files) > 1:
        raise AccelsimError(
            "a GPU profile is fitted to one file of kernel records; several files are for a Gaudi-class profile's "
            "llm_generate and gemm records",
            source=args.measurements[1],
        )
    else:
        result = fit(args.chip, files[0])
    if args.json:
        print(json.dumps(result.to_dict(), allow_nan=False))
        return
    print(
        f"# fitted to {result.records} records of {' and '.join(args.measurements)}: median |error| "
        f"{result.median_abs_error:.1%} ({result.evaluations} evaluations); paste into {result.chip}"
    )
    for key, value in result.parameters.items():
        print(f"{key} = {value}")
    if result.system:
        print(f"# paste into {result.system}")
        for key, value in result.system_parameters.items():
            print(f"{key} = {value}")
    if result.kinds:
        print("# median |error| per kind: " + ", ".join(f"{k} {v:.1%}" for k, v in result.kinds.items()))


def _cmd_schedulers(args: argparse.Namespace) -> None:
    print("\n".join(scheduler_names()))


#: Each command returns its exit status, or None for 0 (1 when the work ran but part of it failed).
COMMANDS: dict[str, Callable[[argparse.Namespace], int | None]] = {
    "chips": _cmd_chips,
    "systems": _cmd_systems,
    "compile": _cmd_compile,
    "run": _cmd_run,
    "compare": _cmd_compare,
    "plot": _cmd_plot,
    "sweep": _cmd_sweep,
    "sweep-plot": _cmd_sweep_plot,
    "workloads": _cmd_workloads,
    "schedulers": _cmd_schedulers,
    "validate": _cmd_validate,
    "fit": _cmd_fit,
    "models": _cmd_models,
    "generate": _cmd_generate,
    "train": cmd_train,
}


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
        for spec in getattr(args, "plugin", []):
            load_plugin(spec)
        code = COMMANDS[args.command](args)
    except AccelsimError as exc:
        print(f"accelsim: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. piped into `head`
        return 0
    except KeyboardInterrupt:  # Ctrl-C: what finished is already written (sweeps append as points finish)
        print("accelsim: interrupted", file=sys.stderr)
        return 130
    return code or 0


if __name__ == "__main__":
    raise SystemExit(main())
