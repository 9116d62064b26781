"""The ``accelsim`` command. Bad input prints one line and exits 2, never a traceback."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

from . import run as run_graph
from .analytic import analytic_counts
from .catalog import catalog_ids, load_model, model_workload, model_workload_data
from .chip import Chip, load_chip
from .compare import compare
from .compiler import compile_graph, compiler_warnings
from .errors import AccelsimError
from .generation import Serving
from .graph import TaskGraph, load_graph
from .lowering import lower
from .options import (
    DEFAULT_ATTENTION,
    DEFAULT_PRECISION,
    GENERATION,
    build_parser,
    chip_list,
    comma_list,
    one_scheduler,
    parallel_layout,
    plotted_scheduler,
    scheduler_list,
)
from .outputs import check_output_dir, check_output_file, safe_name
from .parallel import Layout
from .registry import SCHEDULERS, get_scheduler, load_plugin, scheduler_names
from .report import (
    WorkloadListing,
    chips_report,
    communication_line,
    compare_report,
    compile_report,
    explicit_line,
    fit_report,
    generation_report,
    model_report,
    models_report,
    pipeline_compare_report,
    pipeline_report,
    run_report,
    system_report,
    systems_report,
    validation_report,
    workloads_report,
)
from .resources import shipped_names
from .system import System, load_system
from .system_run import PipelineStep, pipeline_step
from .trace import write_chrome_trace
from .train_cli import cmd_train, plot_train
from .workload import load_workload, workload_data


def _parser() -> argparse.ArgumentParser:
    """Every subcommand's parser, built from accelsim.options (one description per option)."""
    return build_parser(__doc__)


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
    for item in (raw.strip() for raw in args.set):
        if item.startswith("chip."):
            raise AccelsimError(
                f"{args.command} --set overrides workload fields; a chip's keys are set in its "
                "profile, or swept with accelsim sweep --set chip.KEY=V1,V2",
                key=item.split("=")[0],
            )
        items.append(item.removeprefix("workload."))  # the prefix a sweep's --set uses is taken here too
    return items


def _layout(args: argparse.Namespace) -> Layout | None:
    """--parallel's layout, None where not given."""
    return None if args.parallel is None else parallel_layout(args.parallel)


def _on_system(args: argparse.Namespace) -> tuple[System, Layout, dict, str]:
    """--system's system, --parallel's layout (default: tensor parallel over one node), and the workload's dict
    and source (--workload or --model, --set applied)."""
    system = load_system(args.system)
    layout = _layout(args) or Layout(tp=system.spec.cards_per_node)
    items = _overrides(args)
    data, source = model_workload_data(args.model, items) if args.model else workload_data(args.workload, items)
    return system, layout, data, source


def _pipeline(args: argparse.Namespace, scheduler: str) -> PipelineStep | None:
    """With --system and pp > 1: the pipeline step under ``scheduler`` (None otherwise)."""
    layout = _layout(args)
    if args.system is None or layout is None or layout.pp == 1:
        return None
    if args.chip is not None or args.graph:
        raise AccelsimError("a system runs a workload (--workload or --model), not --chip or --graph", key="--system")
    system, layout, data, source = _on_system(args)
    return pipeline_step(system, layout, data, source, get_scheduler(scheduler).name, args.nodes)


def _compare_pipeline(args: argparse.Namespace, names: list[str]) -> None:
    """compare with pp > 1: each scheduler schedules every stage's card; the pipeline's step under each."""
    steps = {}
    for name in names:
        step = _pipeline(args, name)
        assert step is not None
        steps[name] = step
    if args.json:
        print(json.dumps({n: {"step_ms": st.step_ms, "bubble": round(st.run.bubble, 4)} for n, st in steps.items()}))
        return
    print(pipeline_compare_report(steps))


def _target(args: argparse.Namespace) -> tuple[Chip, TaskGraph, bool]:
    """The chip (a system's card, with its networks) and graph a run or compare simulates, and whether it is a
    system's."""
    if args.system is None:
        for option in ("parallel", "nodes"):
            if getattr(args, option):
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
    names = scheduler_list(args.scheduler)
    layout = _layout(args)
    if args.system and layout is not None and layout.pp > 1:
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
        print(communication_line(name, c))


def _cmd_plot(args: argparse.Namespace) -> None:
    """plot: the figures, then the files written, one a line (--json: a JSON list)."""
    check_output_dir(args.out, "--out")
    files = _plot_files(args)
    print(json.dumps([str(f) for f in files]) if args.json else "\n".join(map(str, files)))


def _plot_files(args: argparse.Namespace) -> list[Path]:
    """Every figure plot draws (a training step's, a generation's, a pipeline's, or the timelines of a run under
    each scheduler on each chip), in the order written. A pipeline, a generation and a training step run the
    first scheduler --scheduler names."""
    from . import plots

    generation = _draws_generation(args)
    trained = plot_train(args)
    if trained is not None:
        return trained
    if generation:
        return _plot_generation(args)
    step = _pipeline(args, plotted_scheduler(args.scheduler))
    if step is not None:
        name = safe_name(f"pipeline_{step.placement.system.name}")
        return plots.save(plots.pipeline_chart(step.run, step.placement.workload.name), args.out, name)
    names = scheduler_list(args.scheduler)
    if args.system:  # a system's card: its network engines are timeline rows like the others
        card, graph, _ = _target(args)
        loaded, chips = [card], [card.name]
    else:
        chips = chip_list(args.chip)
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

    written: list[Path] = []
    for chip in loaded:
        result = compare(chip, graph, names)
        everything += result.results
        for r in result.results:
            written += plots.save(plots.timeline(r), args.out, stem("timeline", chip.name, r.scheduler))
            written += plots.save(plots.utilization_over_time(r), args.out, stem("utilization", chip.name, r.scheduler))
        written += plots.save(plots.idle_chart(result.results), args.out, stem("idle", chip.name))
    if len(chips) > 1:
        written += plots.save(plots.comparison(everything), args.out, stem("comparison"))
    return written


def _draws_generation(args: argparse.Namespace) -> bool:
    """Whether plot draws a generation (--model and --output-tokens). A generation's options given where plot
    draws something else (a workload's run, a pipeline, a training step) are refused, never dropped."""
    generation = bool(args.model) and args.output_tokens is not None
    if generation and args.train:
        raise AccelsimError("--output-tokens draws a generation and --train a training step; give one", key="--train")
    if generation:
        return True
    given = [f for f in (*GENERATION, "--experts-used") if getattr(args, f[2:].replace("-", "_")) is not None]
    if args.attention != DEFAULT_ATTENTION:
        given.append("--attention")
    if args.precision != DEFAULT_PRECISION and not args.train:
        given.append("--precision")
    if given:
        also = f" (so {'is' if len(given) == 2 else 'are'} {', '.join(given[1:])})" if len(given) > 1 else ""
        raise AccelsimError(
            f"a generation's option: plot draws a generation with --model and --output-tokens{also}", key=given[0]
        )
    return False


def _generation_args(args: argparse.Namespace) -> tuple[int, int, int]:
    missing = [f"--{k.replace('_', '-')}" for k in ("batch", "input_tokens") if getattr(args, k) is None]
    if missing:
        raise AccelsimError(f"a generation also needs {' and '.join(missing)}", key="--output-tokens")
    return args.batch, args.input_tokens, args.output_tokens


def _serving(args: argparse.Namespace) -> Serving:
    """The generation's recipe kernels from --attention and --experts-used."""
    return Serving(attention=args.attention, experts_used=args.experts_used)


def _plot_generation(args: argparse.Namespace) -> list[Path]:
    """Timelines of the prefill and of the last decode step, and idle time per phase."""
    from . import plots
    from .generation import generate, phase_runs

    chips = chip_list(args.chip)
    batch, inputs, outputs = _generation_args(args)
    model = load_model(args.model)
    scheduler = get_scheduler(plotted_scheduler(args.scheduler)).name
    precision = _generation_precision(args)
    written: list[Path] = []
    for name in chips:
        chip = load_chip(name)
        serving = _serving(args)
        g = generate(chip, model, batch, inputs, outputs, precision, scheduler, serving=serving)
        prefill, decode = phase_runs(chip, model, batch, inputs, outputs, precision, scheduler, serving=serving)
        stem = safe_name(f"{chip.name}_{model.id}")
        written += plots.save(plots.timeline(prefill), args.out, f"timeline_prefill_{stem}")
        written += plots.save(plots.timeline(decode), args.out, f"timeline_decode_{stem}")
        written += plots.save(plots.phase_idle_chart(g), args.out, f"idle_phases_{stem}")
    return written


def _generation_precision(args: argparse.Namespace) -> str:
    """--precision as a generation takes it: bf16, or Gaudi's fp8 recipe (fp16 and fp32 are training's)."""
    if args.precision not in ("bf16", "fp8"):
        raise AccelsimError(f"a generation runs bf16 or fp8, got {args.precision!r}", key="--precision")
    return str(args.precision)


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
        print(model_report(m))
        return
    models = [load_model(i) for i in catalog_ids()]
    if args.json:
        print(json.dumps([m.to_dict() for m in models], indent=2))
        return
    print(models_report(models))


def _cmd_generate(args: argparse.Namespace) -> None:
    from .generation import generate

    layout = _layout(args) or Layout()
    if layout.pp > 1 or layout.dp > 1:
        raise AccelsimError(
            "generate splits a model over a tensor group only: give tp=N (the chip's one-node system's cards)",
            key="--parallel",
        )
    g = generate(
        load_chip(args.chip),
        load_model(args.model),
        args.batch,
        args.input_tokens,
        args.output_tokens,
        _generation_precision(args),
        get_scheduler(one_scheduler(args.scheduler)).name,
        cards=layout.tp,
        serving=_serving(args),
    )
    if args.json:
        print(json.dumps(g.to_dict(), allow_nan=False))
        return
    print(generation_report(g))


def _cmd_sweep(args: argparse.Namespace) -> int:
    from .sweep import Journal, parse_axis, plan, run_sweep

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
    names = scheduler_list(args.scheduler)
    for n in names:
        get_scheduler(n)
    units = plan(args.chip, axes, comma_list(args.workload, "--workload", "workload"), names, args.plugin)
    stats = run_sweep(units, out, workers=args.workers, dask=args.dask, progress=not args.quiet)
    if args.json:
        from .sweep_plot import file_rows

        print(json.dumps({**asdict(stats), "rows": file_rows(out)}))
    else:
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
    from .sweep_plot import sweep_plots

    check_output_dir(args.out, "--out")
    files = sweep_plots(Path(args.file), Path(args.out))
    print(json.dumps([str(f) for f in files]) if args.json else "\n".join(map(str, files)))


def _cmd_workloads(args: argparse.Namespace) -> None:
    listings = []
    for name in shipped_names("workloads"):
        wl = load_workload(name)
        flops, nbytes = analytic_counts(wl)
        listings.append(WorkloadListing(wl.summary(), flops, nbytes, len(lower(wl)), wl.spec.description))
    if args.json:
        print(json.dumps([w.to_dict() for w in listings], indent=2))
        return
    print(workloads_report(listings))


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


def _run_explicit(args: argparse.Namespace) -> None:
    """run --explicit: every card of the layout simulated; the step against the one-card shortcut's."""
    from .explicit import explicit_step

    if not args.system:
        raise AccelsimError("--explicit simulates every card of a system: give --system", key="--explicit")
    if args.trace:
        raise AccelsimError("--explicit writes no trace (one card's: run without it)", key="--trace")
    chip, graph, _ = _target(args)  # the shortcut's card, and every check of the layout
    scheduler = one_scheduler(args.scheduler)
    shortcut = run_graph(chip, graph, scheduler)
    system, layout, data, source = _on_system(args)
    every = explicit_step(system, layout, data, source, scheduler, args.nodes)
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
    print(explicit_line(summary))


def _cmd_run(args: argparse.Namespace) -> None:
    if args.trace:
        check_output_file(args.trace, "--trace")  # before the simulation, not after it
    step = _pipeline(args, one_scheduler(args.scheduler))
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
            print(pipeline_report(step))
        return
    if args.explicit:
        _run_explicit(args)
        return
    chip, graph, on_system = _target(args)
    results = run_graph(chip, graph, one_scheduler(args.scheduler))
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
            print("\n" + communication_line("communication", comms))
        if args.trace:
            print(f"\ntrace written to {args.trace}")


def _cmd_validate(args: argparse.Namespace) -> None:
    from .validation import read_records, validate

    result = validate(load_chip(args.chip) if args.chip else None, read_records(args.measurements))
    for w in result.warnings:
        print(f"accelsim: warning: {w}", file=sys.stderr)
    if args.json:
        print(json.dumps(result.to_dict(), allow_nan=False))
        return
    print(validation_report(result))


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
    print(fit_report(result, args.measurements))


def _cmd_schedulers(args: argparse.Namespace) -> None:
    if args.json:
        print(json.dumps([{"name": n, "description": SCHEDULERS[n].description} for n in scheduler_names()], indent=2))
        return
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
