"""Every option of the ``accelsim`` command, described once: its flag, what it means, how its value is read.

accelsim.cli builds each subcommand's parser from these descriptions (``build_parser``), so a flag has one name,
one meaning and one help text in every command that takes it. A command may require an option or give it its own
default; it cannot give it another help or another meaning. Spellings that were retired are listed per command
(``Command.retired``) and refused with the new spelling as a hint, rather than read as something else.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn

from .errors import AccelsimError
from .parallel import Layout, whole_number
from .registry import DEFAULT_SCHEDULER


def comma_list(text: str, option: str, what: str = "name") -> list[str]:
    """The one parser of comma-separated options (``--scheduler naive,heft``, ``--chip``, ``--workload``,
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


def positive(text: str) -> int:
    """An argparse type: a whole number (plain ASCII digits) from 1 to MAX_WORKLOAD_SIZE."""
    from .limits import MAX_WORKLOAD_SIZE

    value = whole_number(text.strip())
    if value is None:
        raise argparse.ArgumentTypeError(f"expected a whole number (ASCII digits), got {text!r}")
    if not 1 <= value <= MAX_WORKLOAD_SIZE:
        raise argparse.ArgumentTypeError(f"must be from 1 to {MAX_WORKLOAD_SIZE:,}, got {value}")
    return value


class UsageError(AccelsimError):
    """argparse's own refusal (a missing option, a bad value, an unknown command), in the one-line form."""


class Parser(argparse.ArgumentParser):
    """argparse, but its refusals are the one line ``accelsim: error: OPTION: what is allowed`` and exit 2 that
    every other bad input gets, not usage text (``accelsim COMMAND --help`` still prints the usage). Prefixes of
    a flag are not taken for it (``allow_abbrev=False``): ``--sched`` is refused, not read as ``--scheduler``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(re.sub(r"^argument ([^:]+): ", r"\1: ", message).replace("\n", " "))


@dataclass(frozen=True)
class Option:
    """One option as every command that takes it reads it. ``flag`` is ``--name``, or a positional's name."""

    flag: str
    help: str
    type: Callable[[str], Any] | None = None
    choices: tuple[Any, ...] | None = None
    metavar: str | None = None
    #: argparse's action: None (store a value), "store_true" or "append".
    action: str | None = None
    nargs: str | None = None
    default: Any = None

    @property
    def positional(self) -> bool:
        return not self.flag.startswith("-")


OPTIONS: dict[str, Option] = {
    o.flag: o
    for o in (
        Option(
            "--chip",
            "a shipped chip name or the path to a .toml profile (plot: several, separated by commas; sweep: the base "
            "profile swept; validate: optional for train_step records, whose system names it)",
        ),
        Option(
            "--system",
            "a system of many cards (accelsim systems), instead of --chip: one card of --parallel's layout is "
            "simulated, standing for all (every card does the same work at the same time)",
        ),
        Option(
            "--parallel",
            "tensor, pipeline and data parallel degrees (a degree left out is 1), whose product is the cards used; "
            "run, compare and plot: with --system (default: tensor parallel over one node); generate: tp=N only, "
            "over the chip's one-node system",
            metavar="tp=T,pp=P,dp=D",
        ),
        Option(
            "--nodes",
            "with --system: this many of its nodes, whose cards the layout must use (default: those it fills)",
            type=positive,
        ),
        Option(
            "--workload",
            "a shipped workload name or the path to a .toml workload (sweep: several, separated by commas; train: "
            "its model, its run replaced by train's options)",
        ),
        Option("--graph", "a hand-written task graph file (.toml)"),
        Option(
            "--model",
            "a catalog model id (accelsim models) or a config.json; run, compare, compile and plot lower one pass of "
            "batch 1 x 128 tokens unless --set says otherwise (--set seq_len=1024 --set batch=8)",
        ),
        Option(
            "--set",
            "a workload field, e.g. --set seq_len=4096 --set mode=training (a workload. prefix may be written; "
            "--set dtype= is the tensors' dtype, not --precision's recipe); train: model fields only, its run "
            "being its options; sweep: a swept key and its values, chip.KEY=V1,V2,... (a dotted key of the "
            "profile's TOML, chip.engines.tpc.count=8,16) or workload.KEY=V1,V2,... (workload.seq_len=1024,4096)",
            metavar="KEY=VALUE",
            action="append",
            default=[],
        ),
        Option(
            "--plugin",
            "import a module or .py file that registers schedulers (repeatable)",
            metavar="MODULE_OR_FILE",
            action="append",
            default=[],
        ),
        Option(
            "--scheduler",
            "a registered scheduler (accelsim schedulers); compare, plot and sweep take several, separated by "
            "commas (default: %(default)s)",
            metavar="NAME[,NAME...]",
        ),
        Option(
            "--explicit",
            "with --system: simulate every card in one clock, the collectives on one shared network (slow; checks "
            "the one-card shortcut, and sees collectives of two groups sharing links)",
            action="store_true",
        ),
        Option("--trace", "write a Chrome trace (Perfetto, chrome://tracing) to this path"),
        Option(
            "--json",
            "print JSON instead of the text report (run: every task's placement; plot, sweep-plot: the files "
            "written; sweep: the rows of its results file)",
            action="store_true",
        ),
        Option(
            "--out",
            "where the output goes: plot and sweep-plot, the folder for the PNG and SVG files; sweep, the results "
            "file (.csv or .parquet)",
        ),
        Option(
            "--batch",
            "sequences generated together: the workload's run.batch field, which other commands set with --set batch=N",
            type=positive,
        ),
        Option("--input-tokens", "prompt tokens per sequence", type=positive),
        Option("--output-tokens", "new tokens per sequence", type=positive),
        Option(
            "--precision",
            "the numeric recipe: bf16 (fp16 and fp32 for train too), or fp8, the Gaudi and transformer-engine "
            "recipe: matrix products (and the KV cache in generation, the gradients' products in training) in fp8, "
            "the rest in bf16 (default: %(default)s)",
            choices=("bf16", "fp16", "fp32", "fp8"),
        ),
        Option(
            "--attention",
            "the attention kernel of a generation: fused (FusedSDPA, FlashAttention: a key/value head's query heads "
            "stacked as one product) or eager (separate ops, each query head its own product reading its key/value "
            "head's cache, as optimum-habana runs without --use_flash_attention) (default: %(default)s)",
            choices=("fused", "eager"),
        ),
        Option(
            "--experts-used",
            "mixtures of experts in a generation: experts whose weights each MoE layer reads (default: those the "
            "tokens are routed to, in expectation under uniform routing; the number of experts for a kernel that "
            "runs them all)",
            type=positive,
        ),
        Option(
            "--train",
            "with --system and --parallel: draw a training step as accelsim train predicts it (its breakdown, and "
            "a pipeline's 1F1B chart), with train's options",
            action="store_true",
        ),
        Option("--global-batch", "a training step's sequences per optimizer step, all replicas", type=positive),
        Option(
            "--micro-batch",
            "sequences per micro-batch on each replica (default: each replica's whole batch, one micro-batch; with "
            "train --search: every divisor up to 16)",
            type=positive,
        ),
        Option("--seq-len", "a training step's tokens per sequence (required for a gpt model)", type=positive),
        Option("--zero", "DeepSpeed's ZeRO stage (default 0)", type=int, choices=(0, 1, 2, 3)),
        Option(
            "--recompute",
            "activation recomputation in the backward pass: none, selective (attention's) or full (default none)",
            choices=("none", "selective", "full"),
        ),
        Option(
            "--sequence-parallel",
            "Megatron's sequence parallelism in the tensor group (where tp > 1, as Megatron does)",
            action="store_true",
        ),
        Option(
            "--search",
            "try every layout tp x pp x dp = --cards and micro-batch; print the fastest (--top) and why the others "
            "were refused",
            action="store_true",
        ),
        Option("--cards", "with --search: the cards to lay out", type=positive),
        Option("--top", "with --search: rows of the ranking (default %(default)s)", type=positive, default=10),
        Option(
            "--plot", "write the step's breakdown figure (and a pipeline's 1F1B chart) to this folder", metavar="DIR"
        ),
        Option("--workers", "local processes (default: all cores)", type=positive),
        Option("--dask", "run on an existing Dask cluster's scheduler", metavar="ADDRESS"),
        Option("--quiet", "no progress bar", action="store_true"),
        Option(
            "--measurements",
            "JSON-lines measurement records (../shared/calibration schema); fit takes several files for a "
            "Gaudi-class profile (generation and kernel records)",
        ),
        Option(
            "action",
            "the word show, to show one entry instead of the list (it may be left out)",
            metavar="show",
            nargs="?",
        ),
        Option("name", "a shipped name, or the path to a .toml file of its kind", nargs="?"),
        Option("id", "a catalog id (a Hugging Face id) or the path to a config.json", nargs="?"),
        Option("file", "a sweep's results file (.csv or .parquet)"),
    )
}


@dataclass(frozen=True)
class Use:
    """A command's use of an option: whether it must be given, and the command's own default where it has one."""

    option: str
    required: bool = False
    #: The command's own default (None: the option's, unless ``own_default`` says None is the command's own).
    default: Any = None
    nargs: str | None = None
    own_default: bool = False


@dataclass(frozen=True)
class OneOf:
    """Options of which at most one (exactly one where ``required``) may be given."""

    options: tuple[str, ...]
    required: bool = True


@dataclass(frozen=True)
class Command:
    help: str
    uses: tuple[Use | OneOf, ...]
    #: Retired spellings: the flag, and the hint that names its new spelling.
    retired: dict[str, str] = field(default_factory=dict)


SCHEDULERS_RETIRED = {"--schedulers": "is now --scheduler NAME,NAME"}
PRECISION_RETIRED = {"--dtype": "is now --precision bf16|fp8 (the recipe; --set dtype= is a workload's tensors' dtype)"}
INPUTS = (OneOf(("--workload", "--graph", "--model")), Use("--set"), Use("--plugin"))
ON_SYSTEM = (Use("--system"), Use("--parallel"), Use("--nodes"))
GENERATION = ("--batch", "--input-tokens", "--output-tokens")
#: The recipe and attention kernel a generation (and a training step's recipe) takes unless told otherwise.
DEFAULT_PRECISION = "bf16"
DEFAULT_ATTENTION = "fused"
TRAINING = ("--global-batch", "--micro-batch", "--seq-len")

COMMANDS: dict[str, Command] = {
    "chips": Command(
        "list shipped chip profiles, or `chips show NAME` to check one",
        (Use("action"), Use("name"), Use("--json")),
    ),
    "systems": Command(
        "list shipped systems of many cards, or `systems show NAME` to check one",
        (Use("action"), Use("name"), Use("--json")),
    ),
    "run": Command(
        "simulate a workload or a task graph on a chip, or on a system of many cards",
        (
            Use("--chip"),
            *ON_SYSTEM,
            *INPUTS,
            Use("--scheduler", default=DEFAULT_SCHEDULER),
            Use("--explicit"),
            Use("--trace"),
            Use("--json"),
        ),
        SCHEDULERS_RETIRED,
    ),
    "compile": Command(
        "show what the chip's graph compiler makes of a workload or a task graph",
        (Use("--chip", required=True), *INPUTS, Use("--json")),
    ),
    "compare": Command(
        "compare schedulers on one chip (or a system's card) and workload",
        (
            Use("--chip"),
            *ON_SYSTEM,
            *INPUTS,
            Use("--scheduler", default="naive,balanced,heft"),
            Use("--json"),
        ),
        SCHEDULERS_RETIRED,
    ),
    "plot": Command(
        "draw timelines, idle time, utilization and a chip comparison",
        (
            Use("--chip"),
            *ON_SYSTEM,
            *INPUTS,
            Use("--scheduler", default="naive,balanced"),
            Use("--out", required=True),
            *(Use(o) for o in GENERATION),
            Use("--precision", default=DEFAULT_PRECISION),
            Use("--attention", default=DEFAULT_ATTENTION),
            Use("--experts-used"),
            Use("--train"),
            *(Use(o) for o in TRAINING),
            Use("--zero"),
            Use("--recompute"),
            Use("--sequence-parallel", own_default=True),  # None: not given (refused without --train)
            Use("--json"),
        ),
        {**SCHEDULERS_RETIRED, **PRECISION_RETIRED},
    ),
    "sweep": Command(
        "simulate every combination of chip-profile values, workloads and schedulers",
        (
            Use("--chip", required=True),
            Use("--set"),
            Use("--workload", required=True),
            Use("--scheduler", default="naive,balanced"),
            Use("--out", required=True),
            OneOf(("--workers", "--dask"), required=False),
            Use("--quiet"),
            Use("--plugin"),
            Use("--json"),
        ),
        SCHEDULERS_RETIRED,
    ),
    "sweep-plot": Command("plot a sweep's results", (Use("file"), Use("--out", required=True), Use("--json"))),
    "validate": Command(
        "predict measured latencies and report the errors",
        (Use("--chip"), Use("--measurements", required=True), Use("--json")),
    ),
    "fit": Command(
        "fit a profile's efficiency parameters: a GPU's to measured kernel latencies, a Gaudi's to llm_generate "
        "throughputs",
        (Use("--chip", required=True), Use("--measurements", required=True, nargs="+"), Use("--json")),
    ),
    "models": Command(
        "list the model catalog, or `models show ID` for one model",
        (Use("action"), Use("id"), Use("--json")),
    ),
    "generate": Command(
        "predict LLM generation: a prefill, then one decode step per token",
        (
            Use("--chip", required=True),
            Use("--model", required=True),
            *(Use(o, required=True) for o in GENERATION),
            Use("--precision", default=DEFAULT_PRECISION),
            Use("--attention", default=DEFAULT_ATTENTION),
            Use("--experts-used"),
            Use("--parallel"),
            Use("--scheduler", default=DEFAULT_SCHEDULER),
            Use("--json"),
            Use("--plugin"),
        ),
        {**SCHEDULERS_RETIRED, **PRECISION_RETIRED, "--cards": "is now --parallel tp=N"},
    ),
    "train": Command(
        "predict a training step as published runs are configured (global batch, micro-batches, ZeRO, fp8), or "
        "search the layouts of N cards",
        (
            Use("--system", required=True),
            OneOf(("--model", "--workload")),
            Use("--set"),
            Use("--parallel"),
            Use("--global-batch", required=True),
            Use("--micro-batch"),
            Use("--seq-len"),
            Use("--precision", default=DEFAULT_PRECISION),
            Use("--zero"),  # not given: TrainOptions says (stage 0), for train and plot --train alike
            Use("--recompute"),
            Use("--sequence-parallel"),
            Use("--search"),
            Use("--cards"),
            Use("--top"),
            Use("--scheduler", default=DEFAULT_SCHEDULER),
            Use("--plot"),
            Use("--json"),
            Use("--plugin"),
        ),
        {**SCHEDULERS_RETIRED, **PRECISION_RETIRED},
    ),
    "workloads": Command("list the shipped workload presets", (Use("--json"),)),
    "schedulers": Command("list registered schedulers", (Use("--json"),)),
}


class _Retired(argparse.Action):
    """A retired spelling: refused with its new spelling, never read as another option (hidden from --help)."""

    def __init__(self, *args: Any, hint: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hint = hint

    def __call__(self, parser: argparse.ArgumentParser, namespace: object, values: object, flag: object = None) -> None:
        raise AccelsimError(self.hint, key=str(flag))


def _add(target: Any, option: Option, use: Use, required: bool) -> None:
    kwargs: dict[str, Any] = {"help": option.help}
    if option.action is not None:
        kwargs["action"] = option.action
    if option.type is not None:
        kwargs["type"] = option.type
    if option.choices is not None:
        kwargs["choices"] = option.choices
    if option.metavar is not None:
        kwargs["metavar"] = option.metavar
    nargs = use.nargs or option.nargs
    if nargs is not None:
        kwargs["nargs"] = nargs
    default = use.default if use.default is not None or use.own_default else option.default
    if option.action == "append":
        default = list(default)  # a fresh list per parse
    if default is not None or use.own_default:
        kwargs["default"] = default
    if required:
        kwargs["required"] = True
    target.add_argument(option.flag, **kwargs)


def add_command(sub: argparse._SubParsersAction, name: str) -> argparse.ArgumentParser:
    """One subcommand's parser, every option from OPTIONS, every retired spelling a refusal with its hint."""
    command = COMMANDS[name]
    sp = sub.add_parser(name, help=command.help, description=command.help)
    for use in command.uses:
        if isinstance(use, OneOf):
            group = sp.add_mutually_exclusive_group(required=use.required)
            for flag in use.options:
                _add(group, OPTIONS[flag], Use(flag), False)
        else:
            _add(sp, OPTIONS[use.option], use, use.required)
    for flag, hint in command.retired.items():
        sp.add_argument(flag, action=_Retired, nargs="?", help=argparse.SUPPRESS, hint=hint)
    return sp


def build_parser(description: str | None) -> argparse.ArgumentParser:
    """The ``accelsim`` parser: one subcommand per entry of COMMANDS."""
    p = Parser(prog="accelsim", description=description)
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    for name in COMMANDS:
        add_command(sub, name)
    return p


def retired_flags(parser: argparse.ArgumentParser) -> set[str]:
    """The retired spellings a parser refuses (its _Retired actions): the options a test of help text skips."""
    return {f for a in parser._actions if isinstance(a, _Retired) for f in a.option_strings}


def scheduler_list(text: str) -> list[str]:
    """--scheduler's names, in order: the one reader of the option."""
    return comma_list(text, "--scheduler", "scheduler")


def one_scheduler(text: str) -> str:
    """--scheduler where a command runs one scheduler (run, generate, train): refused when it names several."""
    names = scheduler_list(text)
    if len(names) > 1:
        raise AccelsimError(f"this command runs one scheduler; got {len(names)} ({text})", key="--scheduler")
    return names[0]


def plotted_scheduler(text: str) -> str:
    """The scheduler plot draws one run under (a generation, a pipeline, a training step): the first one
    --scheduler names, so that plot's default list serves every figure."""
    return scheduler_list(text)[0]


def parallel_layout(text: str) -> Layout:
    """--parallel's layout: the one reader of the option (run, compare, plot, generate, train), each degree's
    bounds checked as it is parsed (Layout.of_items)."""
    return Layout.of_items(comma_list(text, "--parallel", "degree"))


def chip_list(text: str) -> list[str]:
    """--chip's names or paths, in order, where a command draws several chips (plot)."""
    return comma_list(text, "--chip", "chip")
