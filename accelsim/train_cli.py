"""``accelsim train``: a training step as a published configuration writes it, or a search over the layouts and
micro-batches of N cards; its reports and its figure. Kept apart from accelsim.cli, which registers it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .catalog import model_workload_data
from .errors import AccelsimError
from .parallel import Layout
from .registry import DEFAULT_SCHEDULER
from .report import table
from .system import System, load_system
from .training import GROUP_NAMES, Search, TrainOptions, TrainStep, search, train_step
from .workload import ModelSpec, RunSpec, name_in, workload_data


def _whole(text: str) -> int:
    """An argparse type: a whole number from 1 to MAX_WORKLOAD_SIZE."""
    from .limits import MAX_WORKLOAD_SIZE

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 1 <= value <= MAX_WORKLOAD_SIZE:
        raise argparse.ArgumentTypeError(f"must be from 1 to {MAX_WORKLOAD_SIZE:,}, got {value}")
    return value


def add_train_parser(sub: argparse._SubParsersAction) -> None:
    tr = sub.add_parser(
        "train",
        help="predict a training step as published runs are configured (global batch, micro-batches, ZeRO, fp8), "
        "or search the layouts of N cards",
    )
    tr.add_argument("--system", required=True, help="a system of many cards (accelsim systems)")
    what = tr.add_mutually_exclusive_group(required=True)
    what.add_argument("--model", help="a catalog model id (accelsim models) or a config.json")
    what.add_argument("--workload", help="a shipped workload name or .toml file (its model; its run is replaced)")
    tr.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a model field (--set layers=4); the run's settings are this command's options",
    )
    tr.add_argument(
        "--parallel",
        metavar="tp=T,pp=P,dp=D",
        help="the layout; fewer cards than a node use part of one node, more fill whole nodes",
    )
    tr.add_argument("--global-batch", type=_whole, required=True, help="sequences per optimizer step, all replicas")
    tr.add_argument(
        "--micro-batch",
        type=_whole,
        help="sequences per micro-batch on each replica (default: each replica's whole batch, one micro-batch; "
        "with --search: every divisor up to 16)",
    )
    tr.add_argument("--seq-len", type=_whole, help="tokens per sequence (required for a gpt model)")
    tr.add_argument(
        "--dtype",
        choices=["bf16", "fp16", "fp32", "fp8"],
        default="bf16",
        help="fp8: the transformer engines' recipe (matrix products and their gradients in fp8, the rest in bf16, "
        "fp32 master weights and optimizer state)",
    )
    tr.add_argument("--zero", type=int, choices=[0, 1, 2, 3], default=0, help="DeepSpeed's ZeRO stage (default 0)")
    tr.add_argument("--recompute", choices=["none", "selective", "full"], default="none")
    tr.add_argument(
        "--sequence-parallel",
        action="store_true",
        help="Megatron's sequence parallelism in the tensor group (where tp > 1, as Megatron does)",
    )
    tr.add_argument(
        "--search",
        action="store_true",
        help="try every layout tp x pp x dp = --cards and micro-batch; print the ten fastest and why the others "
        "were refused",
    )
    tr.add_argument("--cards", type=_whole, help="with --search: the cards to lay out")
    tr.add_argument("--top", type=_whole, default=10, help="with --search: rows of the ranking (default 10)")
    tr.add_argument("--scheduler", default=DEFAULT_SCHEDULER, help="registered scheduler name")
    tr.add_argument("--plot", metavar="DIR", help="write the step's breakdown figure (and a pipeline's 1F1B chart)")
    tr.add_argument("--json", action="store_true")
    tr.add_argument("--plugin", action="append", default=[], metavar="MODULE_OR_FILE", help="register schedulers")


#: The options ``accelsim plot --train`` takes from ``accelsim train`` (its --dtype is plot's own: bf16 or fp8).
PLOT_TRAIN_OPTIONS = ("global_batch", "micro_batch", "seq_len", "zero", "recompute", "sequence_parallel")


def add_plot_train_options(plot: argparse.ArgumentParser) -> None:
    """``accelsim plot --train``: a training step's figures, with train's options."""
    plot.add_argument(
        "--train",
        action="store_true",
        help="with --system and --parallel: draw a training step as accelsim train predicts it (its breakdown, and "
        "a pipeline's 1F1B chart)",
    )
    plot.add_argument("--global-batch", type=_whole, help="with --train: sequences per optimizer step")
    plot.add_argument("--micro-batch", type=_whole, help="with --train: sequences per micro-batch on each replica")
    plot.add_argument("--seq-len", type=_whole, help="with --train: tokens per sequence")
    plot.add_argument("--zero", type=int, choices=[0, 1, 2, 3], help="with --train: DeepSpeed's ZeRO stage")
    plot.add_argument("--recompute", choices=["none", "selective", "full"], help="with --train")
    plot.add_argument("--sequence-parallel", action="store_true", default=None, help="with --train")


def plot_train(args: argparse.Namespace) -> bool:
    """``accelsim plot --train``; False when --train is not given (and none of its options, which are refused
    without it)."""
    if not args.train:
        given = [f"--{k.replace('_', '-')}" for k in PLOT_TRAIN_OPTIONS if getattr(args, k) is not None]
        if given:
            raise AccelsimError(f"{', '.join(given)}: options of a training step, drawn with --train", key="--train")
        return False
    from .registry import get_scheduler

    if args.system is None or args.chip is not None or args.graph:
        raise AccelsimError("--train draws a step on a system: give --system, and --workload or --model", key="--train")
    if not args.parallel or args.global_batch is None:
        raise AccelsimError("--train needs the layout (--parallel) and --global-batch", key="--train")
    names = [n.strip() for n in args.schedulers.split(",") if n.strip()]
    scheduler = get_scheduler(names[0] if names else DEFAULT_SCHEDULER).name
    system, layout = load_system(args.system), Layout.parse(args.parallel)
    if args.global_batch % layout.dp:
        raise AccelsimError(
            f"global batch {args.global_batch} does not divide over {layout.dp} replicas", key="--global-batch"
        )
    data, source = _model_data(args)
    args.zero = args.zero or 0
    args.recompute = args.recompute or "none"
    args.sequence_parallel = bool(args.sequence_parallel)
    options = _options(args, data, args.micro_batch or args.global_batch // layout.dp)
    step = train_step(system, layout, data, source, options, scheduler)
    for path in train_figures(system, layout, data, source, step, scheduler, Path(args.out)):
        print(path)
    return True


def _model_data(args: argparse.Namespace) -> tuple[dict, str]:
    items = [s.strip().removeprefix("workload.") for s in args.set]
    for item in items:
        key = item.split("=", 1)[0].strip()
        name = key.split(".", 1)[1] if key.startswith("run.") else key
        if key.startswith("run.") or (
            "." not in key and name_in(RunSpec, name) and not name_in(ModelSpec, name)  # a model field wins a clash
        ):
            raise AccelsimError(
                f"{key} is a run setting: train sets it from its options (--global-batch, --micro-batch, --seq-len, "
                "--dtype, --zero, --recompute, --sequence-parallel)",
                key="--set",
            )
    data, source = model_workload_data(args.model, items) if args.model else workload_data(args.workload, items)
    return data, source


def _options(args: argparse.Namespace, data: dict, micro_batch: int) -> TrainOptions:
    seq = args.seq_len
    vit = data.get("model", {}).get("family") == "vit"
    if vit and seq is not None:
        raise AccelsimError(
            "a vit's sequence comes from its image and patch sizes: leave out --seq-len", key="--seq-len"
        )
    if not vit and seq is None:
        raise AccelsimError("a gpt model's training run needs --seq-len", key="--seq-len")
    return TrainOptions(
        global_batch=args.global_batch,
        micro_batch=micro_batch,
        seq_len=seq,
        dtype=args.dtype,
        zero=args.zero,
        recompute=args.recompute,
        sequence_parallel=args.sequence_parallel,
    )


def cmd_train(args: argparse.Namespace) -> None:
    from .outputs import check_output_dir
    from .registry import get_scheduler

    if args.plot:
        check_output_dir(args.plot, "--plot")
    scheduler = get_scheduler(args.scheduler).name
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
    layout = Layout.parse(args.parallel)
    if args.global_batch % layout.dp:
        raise AccelsimError(
            f"global batch {args.global_batch} does not divide over {layout.dp} replicas", key="--global-batch"
        )
    micro = args.micro_batch or args.global_batch // layout.dp
    step = train_step(system, layout, data, source, _options(args, data, micro), scheduler)
    print(json.dumps(step.to_dict(), allow_nan=False) if args.json else train_report(step))
    if args.plot:
        for path in train_figures(system, layout, data, source, step, scheduler, Path(args.plot)):
            print(path)


def train_report(s: TrainStep) -> str:
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


def search_report(found: Search, top: int) -> str:
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
        model = {k: v for k, v in data.items() if k != "run"}
        run = {**settings, "batch": step.options.global_batch // layout.dp}
        pipe = pipeline_step(system, layout, {**model, "run": run}, source, scheduler)
        written += plots.save(plots.pipeline_chart(pipe.run, step.model), out, f"{stem}_pipeline")
    return written
