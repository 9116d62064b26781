"""``accelsim train``: a training step as a published configuration writes it, or a search over the layouts and
micro-batches of N cards, and its figure. Kept apart from accelsim.cli, which dispatches to it; its options are
described in accelsim.options, its text reports are in accelsim.report."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .catalog import model_workload_data
from .errors import AccelsimError
from .options import one_scheduler, parallel_layout, plotted_scheduler
from .parallel import Layout
from .report import search_report, train_report
from .system import System, load_system
from .training import Search, TrainOptions, TrainStep, search, train_step
from .workload import ModelSpec, RunSpec, name_in, workload_data

#: The options ``accelsim plot --train`` takes from ``accelsim train`` (accelsim.options describes them once).
PLOT_TRAIN_OPTIONS = ("global_batch", "micro_batch", "seq_len", "zero", "recompute", "sequence_parallel")


def plot_train(args: argparse.Namespace) -> list[Path] | None:
    """``accelsim plot --train``: the files written; None when --train is not given (and none of its options,
    which are refused without it)."""
    if not args.train:
        given = [f"--{k.replace('_', '-')}" for k in PLOT_TRAIN_OPTIONS if getattr(args, k) is not None]
        if given:
            raise AccelsimError(f"{', '.join(given)}: options of a training step, drawn with --train", key="--train")
        return None
    from .registry import get_scheduler

    if args.system is None or args.chip is not None or args.graph:
        raise AccelsimError("--train draws a step on a system: give --system, and --workload or --model", key="--train")
    if not args.parallel or args.global_batch is None:
        raise AccelsimError("--train needs the layout (--parallel) and --global-batch", key="--train")
    scheduler = get_scheduler(plotted_scheduler(args.scheduler)).name
    system = load_system(args.system)
    data, source = _model_data(args)
    layout, step = _one_step(args, system, data, source, scheduler)
    return train_figures(system, layout, data, source, step, scheduler, Path(args.out))


def _model_data(args: argparse.Namespace) -> tuple[dict, str]:
    items = [s.strip().removeprefix("workload.") for s in args.set]
    for item in items:
        key = item.partition("=")[0].strip()
        if key.startswith("run.") or (name_in(RunSpec, key) and not name_in(ModelSpec, key)):  # a model field wins
            raise AccelsimError(
                f"{key} is a run setting: train sets it from its options (--global-batch, --micro-batch, --seq-len, "
                "--precision, --zero, --recompute, --sequence-parallel)",
                key="--set",
            )
    data, source = model_workload_data(args.model, items) if args.model else workload_data(args.workload, items)
    return data, source


def _options(args: argparse.Namespace, data: dict, micro_batch: int) -> TrainOptions:
    seq = args.seq_len
    vit = data.get("model", {}).get("family") == "vit"  # a workload file may leave its model table to defaults
    if vit and seq is not None:
        raise AccelsimError(
            "a vit's sequence comes from its image and patch sizes: leave out --seq-len", key="--seq-len"
        )
    if not vit and seq is None:
        raise AccelsimError("a gpt model's training run needs --seq-len", key="--seq-len")
    given = {k: getattr(args, k) for k in ("zero", "recompute", "sequence_parallel") if getattr(args, k) is not None}
    return TrainOptions(args.global_batch, micro_batch, seq, dtype=args.precision, **given)  # plot's None: not given


def _one_step(
    args: argparse.Namespace, system: System, data: dict, source: str, scheduler: str
) -> tuple[Layout, TrainStep]:
    """The step of --parallel's layout, --global-batch over its replicas in micro-batches of --micro-batch
    (default: each replica's whole batch, one micro-batch)."""
    layout = parallel_layout(args.parallel)
    if args.global_batch % layout.dp:
        raise AccelsimError(
            f"global batch {args.global_batch} does not divide over {layout.dp} replicas", key="--global-batch"
        )
    micro = args.micro_batch or args.global_batch // layout.dp
    return layout, train_step(system, layout, data, source, _options(args, data, micro), scheduler)


def cmd_train(args: argparse.Namespace) -> None:
    from .outputs import check_output_dir
    from .registry import get_scheduler

    if args.plot:
        check_output_dir(args.plot, "--plot")
    scheduler = get_scheduler(one_scheduler(args.scheduler)).name
    system = load_system(args.system)
    data, source = _model_data(args)
    if args.search:
        if args.parallel:
            raise AccelsimError("--search tries every layout: give --cards, not --parallel", key="--parallel")
        if args.cards is None:
            raise AccelsimError("--search lays out --cards N cards: give --cards", key="--cards")
        if args.plot:
            raise AccelsimError("--plot draws one step: run the layout --search ranks first", key="--plot")
        options = _options(args, data, args.micro_batch or 1)
        found = search(system, data, source, args.cards, options, args.micro_batch, scheduler)
        print(json.dumps(search_dict(found, args.top)) if args.json else search_report(found, args.top))
        return
    if args.cards is not None:
        raise AccelsimError("--cards is the search's: give --parallel for one layout, or add --search", key="--cards")
    if not args.parallel:
        raise AccelsimError("give the layout (--parallel tp=T,pp=P,dp=D), or --search --cards N", key="--parallel")
    layout, step = _one_step(args, system, data, source, scheduler)
    print(json.dumps(step.to_dict(), allow_nan=False) if args.json else train_report(step))
    if args.plot:
        for path in train_figures(system, layout, data, source, step, scheduler, Path(args.plot)):
            print(path)


def search_dict(found: Search, top: int) -> dict:
    return {
        "cards": found.cards,
        "ranked": [s.to_dict() for s in found.ranked[:top]],
        "candidates": len(found.ranked) + len(found.refused),
        "ran": len(found.ranked),
        "refused": found.reasons(),
        "refusals": [
            {"tp": r.layout.tp, "pp": r.layout.pp, "dp": r.layout.dp, "micro_batch": r.micro_batch, "reason": r.reason}
            for r in found.refused
        ],
    }


def train_figures(
    system: System, layout: Layout, data: dict, source: str, step: TrainStep, scheduler: str, out: Path
) -> list[Path]:
    """The step's breakdown (computation, exposed communication per group, the pipeline's bubble) as a bar; under
    a pipeline its 1F1B chart too."""
    from . import plots
    from .outputs import safe_name

    stem = safe_name(f"train_{step.system}_{layout.tp}x{layout.pp}x{layout.dp}")
    written = plots.save(plots.train_breakdown(step), out, stem)
    if layout.pp > 1:
        from .system_run import pipeline_step

        settings = step.options.run_settings(layout)
        run = {**settings, "batch": step.options.global_batch // layout.dp}
        pipe = pipeline_step(system, layout, {**data, "run": run}, source, scheduler)
        written += plots.save(plots.pipeline_chart(pipe.run, step.model), out, f"{stem}_pipeline")
    return written
