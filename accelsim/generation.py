"""LLM generation on one chip: a prefill over B prompts of I tokens, then O - 1 decode steps of one token each.

Each phase is a workload lowered, compiled for the chip, scheduled and simulated like any other
(accelsim.runner); the KV cache is ``run.past_tokens``. Two shortcuts keep a 70B model with thousands of output
tokens to seconds, each checked against the long way in tests/test_generation.py:

- *Layers.* The layers of a pass are identical (or repeat with the sliding window's period), so a pass is simulated
  with one and with two periods of layers and the rest extrapolated: cycles and engine busy time grow by the same
  amount with every further period.
- *Decode steps.* Steps differ only in how many cached positions attention reads, which changes their time
  smoothly; a few steps spread over the range are simulated and the others interpolated linearly between them.

Time no engine sees is added to every pass: the host's (``step_overhead_us`` in the chip profile) and, for a
mixture of experts, the serving kernel's per expert it is given (``expert_overhead_us`` x ``expert_visits``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from .catalog import Model
from .chip import Chip, MatrixEngines
from .errors import AccelsimError, shown
from .footprint import card_memory
from .lowering import lower
from .ops import OPS
from .parallel import Layout, shard_model
from .registry import DEFAULT_SCHEDULER
from .resources import shipped_names
from .results import Results
from .runner import run
from .system import System, load_system
from .workload import Workload, experts_used_problem, workload_from_dict

GB = 1e9
#: Decode steps simulated by default; the rest are interpolated (within 1% of simulating every step: tests).
DECODE_SAMPLES = 5


@dataclass(frozen=True)
class Serving:
    """How the serving software runs the model where its kernels differ in cost (a generation's recipe, beside its
    dtype). ``attention``: "fused" (FlashAttention, Gaudi's FusedSDPA: one kernel, no scores through HBM, the
    query heads sharing a key/value head stacked as one product) or "eager" (QK^T, softmax and x V as separate
    ops with the scores through HBM, each query head a product of its own that reads its key/value head's cache:
    optimum-habana's attention without --use_flash_attention, whose gaudi_*_repeat_kv broadcasts K and V over the
    group in a batched matmul). ``experts_used``: the experts whose weights each MoE layer reads (None: the
    experts the pass's tokens are routed to, in expectation under uniform routing)."""

    attention: Literal["fused", "eager"] = "fused"
    experts_used: int | None = None

    def attention_spec(self) -> dict[str, str]:
        """The workload's [attention] table for this kernel."""
        if self.attention == "fused":
            return {"variant": "flash"}
        return {"variant": "softmax", "query_groups": "per_query_head"}


FUSED = Serving()


@dataclass(frozen=True)
class Phase:
    """One phase's time and how busy each engine kind was (idle: engine-time not computing, summed over the
    phase's passes and the engines of the kind). An engine is busy while its task runs, waiting on HBM included;
    what bounds the phase shows in the last two: the fraction of HBM's peak bandwidth used, and of the matrix
    engines' peak MAC rate (decode is HBM-bound while the first is high and the second low)."""

    latency_ms: float
    utilization: dict[str, float]
    idle_ms: dict[str, float]
    hbm_bandwidth_utilization: float
    matrix_mac_utilization: float


@dataclass(frozen=True)
class Memory:
    """HBM a generation needs: the weights and the KV cache at its longest (activations are not counted)."""

    weights_gb: float
    kv_cache_gb: float
    hbm_gb: float
    fits: bool


@dataclass(frozen=True)
class Generation:
    chip: str
    model: str
    batch: int
    input_tokens: int
    output_tokens: int
    dtype: str
    cards: int  # tensor parallel over this many cards (1: one card); memory is per card
    ttft_ms: float
    tpot_ms: float | None  # None (JSON null) with one output token: there is no decode step to time
    latency_ms: float
    tokens_per_s: float
    prefill: Phase
    decode: Phase
    memory: Memory
    #: (cached positions, simulated step time in ms) of the decode steps that were simulated.
    decode_samples: tuple[tuple[int, float], ...]
    #: The recipe's kernels (Serving): the attention kernel, and the experts each MoE layer reads if given.
    attention: str = "fused"
    experts_used: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PassCost:
    """One forward pass: cycles and busy engine-cycles per kind, and the engines of each kind."""

    cycles: float
    busy: dict[str, float]
    engines: dict[str, int]
    hbm_bytes: float = 0.0
    #: Cycles the matrix products would take at the matrix engines' peak MAC rate (all of them, in each dtype).
    ideal_matrix_cycles: float = 0.0

    @staticmethod
    def of(results: Results) -> PassCost:
        busy: dict[str, float] = {}
        engines: dict[str, int] = {}
        for e in results.engines:
            busy[e.kind] = busy.get(e.kind, 0.0) + e.busy_cycles
            engines[e.kind] = engines.get(e.kind, 0) + 1
        chip = results.chip
        rate: dict[str, int] = {}  # MACs per cycle of all matrix engines, per dtype
        for g in chip.groups:
            if isinstance(g.spec, MatrixEngines):
                for dtype, macs in g.spec.macs_per_cycle.items():
                    rate[dtype] = rate.get(dtype, 0) + macs * g.count
        ideal = sum(
            OPS[t.op].macs(t.shape) / rate[t.dtype]
            for t in results.graph.tasks
            if OPS[t.op].category == "matrix" and rate.get(t.dtype)
        )
        return PassCost(float(results.latency_cycles), busy, engines, float(results.hbm_bytes.sum()), ideal)

    def extrapolate(self, two: PassCost, periods: float) -> PassCost:
        """self: one period of layers; two: two periods; the pass with ``periods`` periods."""
        k = periods - 1
        return PassCost(
            self.cycles + k * (two.cycles - self.cycles),
            {kind: self.busy[kind] + k * (two.busy[kind] - self.busy[kind]) for kind in self.busy},
            self.engines,
            self.hbm_bytes + k * (two.hbm_bytes - self.hbm_bytes),
            self.ideal_matrix_cycles + k * (two.ideal_matrix_cycles - self.ideal_matrix_cycles),
        )


def workload_for(
    model: Model,
    batch: int,
    new_tokens: int,
    past_tokens: int,
    dtype: str,
    layers: int | None = None,
    tensor_parallel: int = 1,
    serving: Serving = FUSED,
) -> Workload:
    """One forward pass of ``model`` over ``new_tokens`` per sequence after ``past_tokens`` cached ones, with the
    attention kernel and experts of ``serving`` (default: fused attention, as serving software mostly runs it,
    and the experts the tokens are routed to); ``dtype`` "fp8" is Gaudi's fp8 recipe (matrix products and the KV
    cache in fp8, the rest in bf16)."""
    spec = dict(model.require())
    if spec.get("family") != "gpt" or not spec.get("causal", True):
        raise AccelsimError(
            "generation needs a causal decoder (a text-generation model)", source=model.path, key="model_type"
        )
    if layers is not None:
        spec["layers"] = layers
    run_spec: dict[str, Any] = {
        "batch": batch,
        "seq_len": new_tokens,
        "past_tokens": past_tokens,
        "logits": "last",
        "dtype": "bf16",
        "tensor_parallel": tensor_parallel,
    }
    if serving.experts_used is not None:
        run_spec["experts_used"] = serving.experts_used
    if dtype == "fp8":
        run_spec["matmul_dtype"] = "fp8"
    elif dtype != "bf16":
        raise AccelsimError(f"{dtype!r} is not a generation dtype; allowed: bf16, fp8", source="--precision")
    tag = f"prefill {new_tokens}" if not past_tokens else f"decode after {past_tokens}"
    return workload_from_dict(
        {"name": f"{model.id} {tag}", "model": spec, "run": run_spec, "attention": serving.attention_spec()},
        source=model.path,
    )


def memory_needed(model: Model, batch: int, tokens: int, dtype: str, chip: Chip, cards: int = 1) -> Memory:
    """Weights and the KV cache of ``tokens`` positions per sequence as one of ``cards`` cards holds them
    (accelsim.footprint: weight GEMMs and the cache in fp8 under the fp8 recipe; embeddings and LM head in bf16)."""
    wl = workload_for(model, batch, 1, 0, dtype, tensor_parallel=cards)  # the architecture's derived sizes
    held = card_memory(wl, Layout(cards, 1, 1), cached_tokens=tokens)
    weights, kv, hbm = held.parameters, held.kv_cache, chip.hbm_bytes
    return Memory(weights / GB, kv / GB, hbm / GB, weights + kv <= hbm)


def check_fits(memory: Memory, source: str, cards: int = 1) -> None:
    """A generation whose weights and KV cache exceed a card's HBM is refused, with the cards that would hold it."""
    if memory.fits:
        return
    need = memory.weights_gb + memory.kv_cache_gb
    total = need * cards
    fit = math.ceil(total / memory.hbm_gb)
    where = "one card" if cards == 1 else f"each of {cards} cards"
    raise AccelsimError(
        f"needs {need:.1f} GB of HBM per card (weights {memory.weights_gb:.1f} GB + KV cache "
        f"{memory.kv_cache_gb:.1f} GB), {where} has {memory.hbm_gb:.1f} GB; it would fit on {fit} cards "
        "(--parallel tp=N; or use a smaller --batch, fewer tokens, or --precision fp8)",
        source=source,
        key="memory",
    )


def default_system(chip: Chip) -> System:
    """The shipped one-node system of ``chip``'s cards (hls-gaudi2 for gaudi2, dgx-h100 for h100), its cards
    ``chip`` as given (a profile being fitted or swept keeps its own values on every card)."""
    for name in shipped_names("systems"):
        system = load_system(name)
        if system.chip.name == chip.name and system.spec.nodes == 1:
            return System(system.spec, chip, system.source)
    raise AccelsimError(
        f"no shipped system of {chip.name} cards ({', '.join(shipped_names('systems'))}) to run on several cards",
        source=chip.source,
        key="cards",
    )


def sharded(model: Model, cards: int) -> Model:
    """The model as each of ``cards`` tensor-parallel cards holds it."""
    if cards == 1:
        return model
    return dataclasses.replace(model, spec=shard_model(model.require(), cards, model.path))


def on_cards(chip: Chip, model: Model, cards: int, system: System | None = None) -> tuple[Chip, Model]:
    """The card and the model's shard of a generation tensor parallel over ``cards`` cards of ``system`` (default:
    the chip's shipped one-node system); the chip and the model themselves on one card."""
    if cards == 1:
        return chip, model
    return (system or default_system(chip)).card_chip(cards), sharded(model, cards)


def _period(model: Model) -> int:
    """Layers after which the layer pattern repeats (the sliding window's period, else 1)."""
    spec = model.require()
    return int(spec.get("window_period", 1)) if spec.get("sliding_window") else 1


class PassSimulator:
    """Simulates forward passes of one model on one chip, extrapolating over layers (see the module docstring);
    with ``cards`` > 1, ``model`` is one card's shard and ``chip`` a card with its fabric (System.card_chip)."""

    def __init__(
        self,
        chip: Chip,
        model: Model,
        batch: int,
        dtype: str,
        scheduler: str,
        exact: bool = False,
        cards: int = 1,
        serving: Serving = FUSED,
    ):
        self.chip, self.model, self.batch, self.dtype, self.scheduler = chip, model, batch, dtype, scheduler
        self.exact, self.cards, self.serving = exact, cards, serving
        self.layers = int(model.require()["layers"])
        self.period = _period(model)

    def simulate(self, new_tokens: int, past_tokens: int, layers: int) -> Results:
        wl = workload_for(self.model, self.batch, new_tokens, past_tokens, self.dtype, layers, self.cards, self.serving)
        return run(self.chip, lower(wl), self.scheduler)

    def cost(self, new_tokens: int, past_tokens: int) -> PassCost:
        p = self.period
        if self.exact or self.layers <= 2 * p:
            return PassCost.of(self.simulate(new_tokens, past_tokens, self.layers))
        one = PassCost.of(self.simulate(new_tokens, past_tokens, p))
        two = PassCost.of(self.simulate(new_tokens, past_tokens, 2 * p))
        return one.extrapolate(two, self.layers / p)


def decode_points(first: int, steps: int, samples: int) -> list[int]:
    """Cached positions of the decode steps to simulate: ``samples`` spread evenly from the first step's to the
    last's, both ends included."""
    if steps <= samples:
        return [first + i for i in range(steps)]
    return sorted({first + round(i * (steps - 1) / (samples - 1)) for i in range(samples)})


def interpolated_sum(points: list[int], values: list[float], first: int, steps: int) -> float:
    """The sum over every step ``first .. first + steps - 1`` of the piecewise-linear interpolation of the
    sampled ``values``."""
    xs = np.arange(first, first + steps, dtype=float)
    return float(np.interp(xs, np.asarray(points, dtype=float), np.asarray(values, dtype=float)).sum())


def check_context(model: Model, input_tokens: int, output_tokens: int) -> None:
    """A generation longer than the model's context (its config's limit, hf_config.context_length) is refused:
    its last tokens would attend to positions the model was never built for."""
    if model.context is None:
        return
    key, limit = model.context
    if input_tokens + output_tokens > limit:  # the sequence as generated, prompt and output, as serving counts it
        raise AccelsimError(
            f"{input_tokens:,} input + {output_tokens:,} output tokens run past the model's context of {limit:,} "
            f"positions ({key} in {shown(model.path)}); at most {limit:,} positions in all",
            key="--output-tokens",
        )


def generate(
    chip: Chip,
    model: Model,
    batch: int,
    input_tokens: int,
    output_tokens: int,
    dtype: str = "bf16",
    scheduler: str = DEFAULT_SCHEDULER,
    samples: int = DECODE_SAMPLES,
    exact: bool = False,
    progress: Callable[[str], None] | None = None,
    cards: int = 1,
    system: System | None = None,
    serving: Serving = FUSED,
) -> Generation:
    """Predict a generation; ``exact`` simulates every layer of every decode step (slow: for checking the
    shortcuts). ``cards`` > 1: tensor parallel over that many cards of ``system`` (default: the chip's shipped
    one-node system), every card doing the same work, so one card is simulated with its collectives on the
    fabric. ``serving``: the recipe's attention kernel and experts read."""
    check_context(model, input_tokens, output_tokens)
    check_serving(model, serving)
    chip, model = on_cards(chip, model, cards, system)
    memory = memory_needed(model, batch, input_tokens + output_tokens, dtype, chip, cards)
    check_fits(memory, model.path, cards)
    sim = PassSimulator(chip, model, batch, dtype, scheduler, exact=exact, cards=cards, serving=serving)
    hz = chip.cycles_per_second
    overhead_cycles = pass_overhead_us(chip, model) * 1e-6 * hz
    if progress:
        progress("prefill")
    prefill = sim.cost(input_tokens, 0)
    steps = output_tokens - 1  # the prefill yields the first token
    decode = PassCost(0.0, {kind: 0.0 for kind in prefill.busy}, prefill.engines)  # one output token: no step
    sampled: list[tuple[int, float]] = []
    if steps > 0:
        points = (
            list(range(input_tokens, input_tokens + steps)) if exact else decode_points(input_tokens, steps, samples)
        )
        costs = []
        for p in points:
            if progress:
                progress(f"decode step after {p} positions")
            costs.append(sim.cost(1, p))
        sampled = [(p, c.cycles / hz * 1e3) for p, c in zip(points, costs, strict=True)]

        def total(values: list[float]) -> float:
            return interpolated_sum(points, values, input_tokens, steps)

        decode = PassCost(
            total([c.cycles for c in costs]),
            {kind: total([c.busy[kind] for c in costs]) for kind in prefill.busy},
            prefill.engines,
            total([c.hbm_bytes for c in costs]),
            total([c.ideal_matrix_cycles for c in costs]),
        )
    prefill_ms = (prefill.cycles + overhead_cycles) / hz * 1e3
    decode_ms = (decode.cycles + steps * overhead_cycles) / hz * 1e3
    latency_ms = prefill_ms + decode_ms
    return Generation(
        chip=chip.name,
        model=model.id,
        batch=batch,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        dtype=dtype,
        cards=cards,
        ttft_ms=prefill_ms,
        tpot_ms=decode_ms / steps if steps else None,  # one output token: the prefill made it, no decode step
        latency_ms=latency_ms,
        tokens_per_s=batch * output_tokens / (latency_ms / 1e3),
        prefill=_phase(prefill, prefill_ms, chip),
        decode=_phase(decode, decode_ms, chip),
        memory=memory,
        decode_samples=tuple(sampled),
        attention=serving.attention,
        experts_used=serving.experts_used,
    )


def expert_visits(model: Model) -> int:
    """Experts the serving kernel is given in one forward pass: every expert of every layer, whatever the routing.
    optimum-habana runs a layer's experts as one dynamic MoE op given all of their weights (its Mixtral, Qwen2-MoE
    and Qwen3-MoE code), and that op's cost grows with the experts it is given: Intel's vLLM keeps the op only
    where "it delivers better performance than static MoE" (many tokens, or at most 32 experts a card) and
    otherwise reads every expert's weights (HabanaAI/vllm-hpu-extension #199,
    VLLM_DYNAMIC_MOE_MIN_EXPERTS_SINGLEHPU). A tensor-parallel shard keeps every expert (each is cut, not the set);
    0 for a dense model."""
    spec = model.require()
    return int(spec.get("layers", 0)) * int(spec.get("experts", 0) or 0)


def pass_overhead_us(chip: Chip, model: Model) -> float:
    """Microseconds of each forward pass no engine sees: the host's time per pass plus the MoE kernel's per expert
    it is given (``model``: the card's shard)."""
    return chip.spec.step_overhead_us + chip.spec.expert_overhead_us * expert_visits(model)


def check_serving(model: Model, serving: Serving) -> None:
    """A given count of experts read must be one the model allows (accelsim.workload.experts_used_problem), named
    as the option that gave it."""
    if serving.experts_used is None:
        return
    spec = model.require()
    experts, k = int(spec.get("experts", 0)), int(spec.get("experts_per_token", 0))
    problem = experts_used_problem(experts, k, serving.experts_used)
    if problem:
        raise AccelsimError(f"{model.id}: {problem}", source="--experts-used")


def _phase(cost: PassCost, latency_ms: float, chip: Chip) -> Phase:
    """Utilization of each kind over the phase's wall time (host overhead included: engines idle during it)."""
    hz = chip.cycles_per_second
    wall_cycles = latency_ms * 1e-3 * hz
    util, idle = {}, {}
    for kind, busy in cost.busy.items():
        capacity = wall_cycles * cost.engines[kind]
        util[kind] = round(busy / capacity, 4) if capacity else 0.0
        idle[kind] = round((capacity - busy) / hz * 1e3, 4)
    peak_bytes = wall_cycles * chip.spec.memory.hbm_bandwidth_gbps * 1e9 / hz
    return Phase(
        round(latency_ms, 4),
        util,
        idle,
        round(cost.hbm_bytes / peak_bytes, 4) if peak_bytes else 0.0,
        round(cost.ideal_matrix_cycles / wall_cycles, 4) if wall_cycles else 0.0,
    )


def phase_runs(
    chip: Chip,
    model: Model,
    batch: int,
    input_tokens: int,
    output_tokens: int,
    dtype: str = "bf16",
    scheduler: str = DEFAULT_SCHEDULER,
    cards: int = 1,
    serving: Serving = FUSED,
) -> tuple[Results, Results]:
    """The simulated prefill and last decode step, every layer, for timelines."""
    check_serving(model, serving)
    chip, model = on_cards(chip, model, cards)
    sim = PassSimulator(chip, model, batch, dtype, scheduler, exact=True, cards=cards, serving=serving)
    last = input_tokens + max(output_tokens - 2, 0)
    return sim.simulate(input_tokens, 0, sim.layers), sim.simulate(1, last, sim.layers)
