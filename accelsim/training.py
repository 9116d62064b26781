"""A training step as published configurations write it: a global batch, micro-batches with gradient accumulation,
a tensor x pipeline x data layout, ZeRO's stage, recomputation and the precision (``accelsim train``).

A step is ``global_batch / (dp x micro_batch)`` micro-batches per replica, each a forward and backward pass on the
card, the gradients accumulated, then one optimizer step. Without a pipeline two graphs are simulated, not m: one
micro-batch's forward and backward (no update, no reduction but ZeRO 2 and 3's reduce-scatters), and the last
micro-batch with the replicas' gradient reduction overlapping its backward and the optimizer's update, so the step
is (m - 1) x the first + the last. A pipeline runs its micro-batches in the 1F1B order (accelsim.system_run's
pipeline_step). What a search over layouts repeats (a micro-batch's pass that does not depend on the replicas) is
simulated once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .chip import Chip
from .errors import AccelsimError
from .footprint import CardMemory, card_memory
from .lowering import lower
from .parallel import Layout
from .registry import DEFAULT_SCHEDULER
from .runner import run as run_graph
from .system import System
from .system_run import (
    Cost,
    group_communication,
    nodes_used,
    over_layers,
    pipeline_step,
    place,
)
from .workload import Workload, training_dtypes, workload_from_dict

#: The networks' names in reports.
GROUP_NAMES = {"network": "tensor group", "data_network": "replicas"}


@dataclass(frozen=True)
class TrainOptions:
    """What a published training run's command line sets besides the model and the layout."""

    global_batch: int
    micro_batch: int
    seq_len: int | None  # None: a vit's, from its image and patch sizes
    dtype: str = "bf16"
    zero: int = 0
    recompute: str = "none"
    sequence_parallel: bool = False

    def run_settings(self, layout: Layout) -> dict[str, Any]:
        """The workload's run table for one micro-batch on a card of ``layout``. ZeRO over one replica shards
        nothing (stage 0), and sequence parallelism needs a tensor group (Megatron turns it off at tp = 1)."""
        return training_dtypes(
            {
                "mode": "training",
                "batch": self.micro_batch,
                "micro_batch": self.micro_batch,
                **({"seq_len": self.seq_len} if self.seq_len is not None else {}),
                "dtype": self.dtype,
                "zero": self.zero if layout.dp > 1 else 0,
                "recompute": self.recompute,
                "sequence_parallel": self.sequence_parallel and layout.tp > 1,
            }
        )


@dataclass(frozen=True)
class GroupCommunication:
    """One network group's collectives over a step: busy, not overlapped by computation (exposed), overlapped."""

    busy_ms: float
    exposed_ms: float
    hidden_ms: float


@dataclass(frozen=True)
class TrainStep:
    """A predicted training step and what it is made of."""

    system: str
    model: str
    layout: Layout
    options: TrainOptions
    micro_batches: int
    step_ms: float
    tokens_per_s: float
    model_flops: float  # per step, all cards: 6 x parameters x tokens + attention's (see model_flops)
    mfu: float
    peak_tflops: float  # one card's matrix peak in the products' dtype
    products_dtype: str
    memory: CardMemory
    hbm_gb: float
    communication: dict[str, GroupCommunication]
    bubble: float  # a pipeline's idle share of stage-time (its optimizer tails not counted); 0 without one
    micro_batch_ms: float  # one micro-batch's forward and backward (the first stage's, under a pipeline)
    last_ms: float  # the last micro-batch with the reduction and the update (pp = 1)
    notes: list[str] = field(default_factory=list)

    def breakdown(self) -> dict[str, float]:
        """The step's milliseconds split into what the cards spend them on: computing (with the communication it
        hides), each group's communication nothing overlapped, and a pipeline's bubble; they add up to the step."""
        bubble = self.bubble * self.step_ms
        # under a pipeline, stage 0's exposed communication (each of its passes' share), scaled to the time it is busy
        scale = 1.0 if self.layout.pp == 1 else self._stage0_share()
        exposed = {f"exposed {GROUP_NAMES[k]}": round(c.exposed_ms * scale, 4) for k, c in self.communication.items()}
        compute = self.step_ms - sum(exposed.values()) - bubble
        return {"computation": round(compute, 4), **exposed, "pipeline bubble": round(bubble, 4)}

    def _stage0_share(self) -> float:
        """Under a pipeline: the step's non-bubble time over stage 0's passes summed (its micro-batches back to
        back), so that its exposed communication, a share of those passes, fits the step's breakdown."""
        passes = (self.micro_batches - 1) * self.micro_batch_ms + self.last_ms
        return min(1.0, self.step_ms * (1 - self.bubble) / passes) if passes else 0.0

    def to_dict(self) -> dict[str, Any]:
        o = self.options
        return {
            "system": self.system,
            "model": self.model,
            "tp": self.layout.tp,
            "pp": self.layout.pp,
            "dp": self.layout.dp,
            "cards": self.layout.cards,
            "global_batch": o.global_batch,
            "micro_batch": o.micro_batch,
            "micro_batches": self.micro_batches,
            "seq_len": o.seq_len,
            "dtype": o.dtype,
            "products_dtype": self.products_dtype,
            "zero": o.zero,
            "recompute": o.recompute,
            "sequence_parallel": o.sequence_parallel,
            "step_ms": self.step_ms,
            "tokens_per_s": round(self.tokens_per_s, 1),
            "model_flops": self.model_flops,
            "mfu": round(self.mfu, 4),
            "peak_tflops_per_card": self.peak_tflops,
            "memory": self.memory.to_dict(),
            "hbm_gb": round(self.hbm_gb, 3),
            "communication": {
                GROUP_NAMES[k]: {"busy_ms": v.busy_ms, "exposed_ms": v.exposed_ms, "hidden_ms": v.hidden_ms}
                for k, v in self.communication.items()
            },
            "bubble": round(self.bubble, 4),
            "breakdown_ms": self.breakdown(),
            "micro_batch_ms": self.micro_batch_ms,
            "last_micro_batch_ms": self.last_ms,
            "notes": self.notes,
        }


def model_flops(whole: Workload, tokens: int) -> float:
    """A step's model FLOPs (what MFU counts, recomputation left out): 6 x the whole model's parameters
    (Workload.parameters: matrices, norms, the embedding table and an untied LM head) x tokens, plus attention's
    12 x layers x seq_len x heads x d_head per token (PaLM's count, not halved for the causal mask)."""
    m = whole.spec.model
    attention = 12 * m.layers * whole.seq_len * m.heads * whole.d_head
    return float(6 * whole.parameters * tokens + attention * tokens)


def _whole_model(data: dict[str, Any], options: TrainOptions, source: str) -> Workload:
    """The unsharded model (its parameters, heads and widths) with a one-sequence run."""
    run = {"mode": "training", "batch": 1, "dtype": "bf16"}
    if options.seq_len is not None:
        run["seq_len"] = options.seq_len
    return workload_from_dict({**data, "run": run}, source)


def train_step(
    system: System,
    layout: Layout,
    data: dict[str, Any],
    source: str,
    options: TrainOptions,
    scheduler: str = DEFAULT_SCHEDULER,
    cache: dict[tuple, Any] | None = None,
    sample_layers: int | None = None,
) -> TrainStep:
    """The step of ``options`` for the model of workload dict ``data`` (its run table replaced) on ``layout`` of
    ``system``: part of one node when the layout has fewer cards than a node, else the whole nodes it fills. A
    global batch that does not divide, a card whose memory the step exceeds, or a layout that cannot run is one
    AccelsimError. ``cache`` (shared by a search's candidates) keeps simulated micro-batches that do not depend on
    the replicas. ``sample_layers`` k (a search's shortcut): a card holding more than 2k alike layers is simulated
    with k and with 2k and its step extrapolated linearly in the layers (each layer adds the same cycles once the
    engines' work is periodic; tests/test_training.py bounds the difference)."""
    gb, mb, dp = options.global_batch, options.micro_batch, layout.dp
    if gb % (dp * mb):
        raise AccelsimError(
            f"global batch {gb} is not a whole number of micro-batches of {mb} sequences on each of {dp} replicas "
            f"(dp x micro-batch = {dp * mb})",
            source="--global-batch",
        )
    m = gb // (dp * mb)
    if options.zero >= 2 and layout.pp > 1:
        raise AccelsimError(
            "ZeRO stages 2 and 3 do not run with pipeline parallelism (DeepSpeed's pipeline engine takes stage 0 or 1)",
            source="--zero",
        )
    nodes = nodes_used(system, layout.cards)
    settings = options.run_settings(layout)
    model = {k: v for k, v in data.items() if k != "run"}
    whole = _whole_model(model, options, source)
    cache = {} if cache is None else cache
    notes: list[str] = []
    if layout.pp > 1:
        layers = model.get("model", {}).get("layers", 0)
        if not isinstance(layers, int) or layers % layout.pp:
            raise AccelsimError(
                f"{layers} layers do not divide into {layout.pp} pipeline stages", source=source, key="layers"
            )
        # the first stage holds the most: its memory (min(pp, m) micro-batches in flight) before any simulation
        stage = {**model, "model": {**model["model"], "layers": layers // layout.pp}}
        stage["run"] = {**settings, "pipeline_stage": "first"}
        first = place(
            system, Layout(layout.tp, 1, dp), stage, source, total_cards=layout.cards, nodes=nodes, memory_checked=False
        )
        _check_memory(card_memory(first.workload, first.layout, min(layout.pp, m)), first.chip, source)
        step_data = {**model, "run": {**settings, "batch": gb // dp}}
        step = pipeline_step(system, layout, step_data, source, scheduler, nodes, cache, sample_layers)
        first = step.placement
        in_flight = min(layout.pp, m)
        memory = card_memory(first.workload, Layout(layout.tp, 1, dp), in_flight)
        chip = first.chip
        step_cycles = step.run.cycles
        # idle stage-time, the optimizer's tails (the update and the reduction it exposes) not counted as bubble
        busy = sum(p.end - p.start for p in step.run.passes) + sum(step.times[k].tail for k in step.stages)
        bubble = max(0.0, 1 - busy / (step_cycles * layout.pp)) if step_cycles else 0.0
        t = step.times[step.stages[0]]
        micro_cycles, last_cycles = t.forward + t.backward, t.forward + t.backward + t.tail
        micro_groups, last_groups = step.communication[step.stages[0]]
        to_ms = chip.cycles_to_us(1) / 1e3
        comms = {}
        for g in micro_groups | last_groups:
            busy = (m - 1) * micro_groups.get(g, (0, 0))[0] + last_groups.get(g, (0, 0))[0]
            hidden = (m - 1) * micro_groups.get(g, (0, 0))[1] + last_groups.get(g, (0, 0))[1]
            comms[g] = GroupCommunication(
                round(busy * to_ms, 4), round((busy - hidden) * to_ms, 4), round(hidden * to_ms, 4)
            )
        notes.append(f"pipeline: {layout.pp} stages x {m} micro-batches (1F1B), {in_flight} in flight on stage 0")
        workload = first.workload
    else:
        last = place(system, layout, {**model, "run": settings}, source, nodes=nodes, memory_checked=False)
        workload, chip = last.workload, last.chip
        memory = card_memory(workload, layout)
        _check_memory(memory, chip, source)
        layers = workload.spec.model.layers

        def measure(run: dict[str, Any], held: int) -> Cost:
            key: tuple = (repr(model), repr(run), held, layout.tp, scheduler)
            if run.get("optimizer_step", True) or options.zero >= 2:  # the replicas' collectives in it
                key += (dp, nodes)
            if key not in cache:
                shard = {**model, "model": {**model["model"], "layers": held}, "run": run}
                placed = place(system, layout, shard, source, nodes=nodes)
                results = run_graph(placed.chip, lower(placed.workload), scheduler)
                cache[key] = (results.latency_cycles, group_communication(results))
            found: Cost = cache[key]
            return found

        def full(run: dict[str, Any]) -> Cost:
            return over_layers(model["model"], layers, sample_layers, lambda held: measure(run, held))

        last_cycles, groups = full(settings)
        per_group = {k: (busy, hidden) for k, (busy, hidden) in groups.items()}
        micro_cycles = last_cycles
        if m > 1:
            micro_cycles, micro_groups = full({**settings, "optimizer_step": False})
            for kind, (busy, hidden) in micro_groups.items():
                b0, h0 = per_group.get(kind, (0, 0))
                per_group[kind] = (b0 + (m - 1) * busy, h0 + (m - 1) * hidden)
        step_cycles = (m - 1) * micro_cycles + last_cycles
        bubble = 0.0
        to_ms = chip.cycles_to_us(1) / 1e3
        comms = {
            k: GroupCommunication(round(busy * to_ms, 4), round((busy - hidden) * to_ms, 4), round(hidden * to_ms, 4))
            for k, (busy, hidden) in per_group.items()
        }
    to_ms = chip.cycles_to_us(1) / 1e3
    step_ms = step_cycles * to_ms
    products = workload.spec.run.matmul_dtype or workload.spec.run.dtype
    peak = chip.headline().peak_matrix_tflops.get(products, 0.0)
    tokens = gb * workload.seq_len
    flops = model_flops(whole, tokens)
    mfu = flops / (step_ms / 1e3 * layout.cards * peak * 1e12) if peak and step_ms else 0.0
    return TrainStep(
        system=system.name,
        model=whole.name,
        layout=layout,
        options=options,
        micro_batches=m,
        step_ms=round(step_ms, 4),
        tokens_per_s=tokens / (step_ms / 1e3) if step_ms else 0.0,
        model_flops=flops,
        mfu=mfu,
        peak_tflops=peak,
        products_dtype=products,
        memory=memory,
        hbm_gb=chip.hbm_bytes / 1e9,
        communication=comms,
        bubble=bubble,
        micro_batch_ms=round(micro_cycles * to_ms, 4),
        last_ms=round(last_cycles * to_ms, 4),
        notes=notes,
    )


def _check_memory(memory: CardMemory, chip: Chip, source: str) -> None:
    """A card whose step needs more than its HBM is refused, with the figures."""
    hbm = chip.hbm_bytes
    if memory.total > hbm:
        d = memory.to_dict()
        raise AccelsimError(
            f"each card needs {d['total_gb']:.1f} GB (parameters {d['parameters_gb']:.1f}, gradients "
            f"{d['gradients_gb']:.1f}, optimizer {d['optimizer_gb']:.1f}, activations {d['activations_gb']:.1f}), "
            f"more than its {hbm / 1e9:.1f} GB of HBM: use more tensor or pipeline parallelism, a higher ZeRO stage, "
            "recomputation, or a smaller micro-batch",
            source=source,
            key="memory",
        )


#: A search simulates a card of more than twice this many layers with this many and twice as many, and
#: extrapolates (accelsim train without --search simulates every layer).
SEARCH_SAMPLE_LAYERS = 2
#: A search tries micro-batches of at most this many sequences (the divisors of each replica's batch up to it).
MAX_SEARCH_MICRO_BATCH = 16


@dataclass(frozen=True)
class Refusal:
    """A candidate of a search that cannot run, and why."""

    layout: Layout
    micro_batch: int
    reason: str  # memory, divisibility, layout
    detail: str


@dataclass(frozen=True)
class Search:
    """Every layout and micro-batch a search tried: those that run, fastest first, and those refused."""

    cards: int
    ranked: list[TrainStep]
    refused: list[Refusal]

    def reasons(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.refused:
            out[r.reason] = out.get(r.reason, 0) + 1
        return out


def _divisors(n: int) -> list[int]:
    return [k for k in range(1, n + 1) if n % k == 0]


def _reason(err: AccelsimError) -> str:
    if err.key == "memory":
        return "memory"
    if err.key in ("heads", "kv_heads", "d_ff", "d_ff_expert", "d_ff_shared", "layers", "vocab") or (
        err.source == "--global-batch"
    ):
        return "divisibility"
    return "layout"


def search(
    system: System,
    data: dict[str, Any],
    source: str,
    cards: int,
    options: TrainOptions,
    micro_batch: int | None = None,
    scheduler: str = DEFAULT_SCHEDULER,
    sample_layers: int | None = SEARCH_SAMPLE_LAYERS,
) -> Search:
    """Every layout tp x pp x dp = ``cards`` (tp a divisor of a node's cards, pp of the layers) and every micro-batch
    (``micro_batch``, or the divisors of each replica's batch up to MAX_SEARCH_MICRO_BATCH) of ``options``' global
    batch, ranked by step time. What cannot run (memory first, before any simulation; a split that does not divide;
    a layout the system cannot hold) is kept with its reason. Micro-batches that do not depend on the replicas are
    simulated once for every candidate that repeats them, and a card of many layers is simulated with
    ``sample_layers`` and twice that and extrapolated (train_step); None simulates every layer."""
    per_node = system.spec.cards_per_node
    layers = data.get("model", {}).get("layers", 0)
    if not isinstance(layers, int) or layers < 1:
        raise AccelsimError("the model's layers must be a positive whole number", source=source, key="layers")
    if cards > per_node and cards % per_node:
        raise AccelsimError(
            f"{cards} cards are neither part of one node nor whole nodes of {system.name} ({per_node} cards each)",
            source="--cards",
        )
    cache: dict[tuple, Any] = {}
    ranked: list[TrainStep] = []
    refused: list[Refusal] = []
    for tp in [t for t in _divisors(per_node) if cards % t == 0]:
        for pp in [p for p in _divisors(cards // tp) if layers % p == 0]:
            dp = cards // (tp * pp)
            layout = Layout(tp, pp, dp)
            if options.global_batch % dp:
                refused.append(
                    Refusal(layout, 0, "divisibility", f"global batch {options.global_batch} over {dp} replicas")
                )
                continue
            per_rank = options.global_batch // dp
            micros = [micro_batch] if micro_batch else [k for k in _divisors(per_rank) if k <= MAX_SEARCH_MICRO_BATCH]
            for mb in micros:
                candidate = TrainOptions(**{**options.__dict__, "micro_batch": mb})
                try:
                    ranked.append(train_step(system, layout, data, source, candidate, scheduler, cache, sample_layers))
                except AccelsimError as err:
                    refused.append(Refusal(layout, mb, _reason(err), err.detail))
    ranked.sort(key=lambda s: (s.step_ms, s.layout.cards, s.layout.tp, s.layout.pp, s.options.micro_batch))
    return Search(cards, ranked, refused)
