"""The bounds every input is checked against on load, in one place, with the reasons they are what they are.

Numbers in chip profiles, workloads and task graphs must be finite and within physical ranges (an accelerator's
clock is between 10 MHz and 100 GHz, not 1e-300 GHz); sizes must keep every count the simulator forms (FLOPs,
bytes, cycles) inside 64-bit integers; and a run must fit this machine (the task graph is held in memory, a few
hundred bytes per task and more per dependency). Everything past a bound is an AccelsimError that says the bound.
"""

from __future__ import annotations

#: Input files: at most this many bytes (the largest shipped file is a few kB), and brackets or dotted keys nested
#: at most this deep (the shipped files nest 3 deep). Both are checked on the text, before the TOML parser runs.
MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_NESTING = 32
#: A sweep's results file read back (sweep-plot): at most this many bytes (a million points of a few hundred bytes).
MAX_RESULTS_BYTES = 512 * 1024 * 1024

#: Engines in a group, and on a whole chip (the largest real chips have a few hundred cores; each instance is a
#: simulated resource with its own queue).
MAX_ENGINES = 100_000
#: Clocks, GHz: from 10 MHz to 100 GHz.
MIN_CLOCK_GHZ = 0.01
MAX_CLOCK_GHZ = 100.0
#: Bandwidths (HBM, SRAM), GB/s: from 1 MB/s up to 1e9 GB/s, far past any memory (1 PB/s would do physically),
#: so that a study or a test can make memory never bind.
MIN_BANDWIDTH_GBPS = 0.001
MAX_BANDWIDTH_GBPS = 1e9
#: A DMA engine's bytes per cycle.
MAX_BYTES_PER_CYCLE = 1e6
#: Capacities: HBM in GB, SRAM in MB, an engine's local memory in kB.
MAX_CAPACITY = 1e9
#: Geometry (array rows and columns, SIMD lanes, SMs, tiles, MACs per cycle, instructions issued per cycle).
MAX_GEOMETRY = 1_000_000_000
#: Fixed costs in cycles (dispatch overhead, launch gap, pipeline latency, wave overhead): up to 1e12 cycles,
#: 1000 s at 1 GHz.
MAX_CYCLES = 10**12
#: Vector instructions per element an op may be given (the shipped ops need at most 17).
MAX_INSTRUCTIONS_PER_ELEMENT = 1e6
#: An efficiency (a fraction of a peak reached) at least this: a hundredth of the peak.
MIN_EFFICIENCY = 0.01

#: Systems of many cards (accelsim.system) and the networks built of them (accelsim.network): cards in a node,
#: nodes in a system and the whole system at most this, the largest network simulated (a fabric with a link per
#: ordered pair of cards has n(n-1) links, a million at 1,024 cards). A system file, and a layout (--parallel),
#: are checked against it on load, so that nothing past it is refused only once the network is built.
MAX_CARDS = 1024
#: Links per card pair or per card to a switch, and network ports per card (real cards have at most a few dozen).
MAX_LINKS = 1024
#: A message's fixed latency on a fabric, microseconds: up to one second (real fabrics take about 1 to 10 us).
MAX_LATENCY_US = 1e6

#: Workload sizes: a layer count, a model width, a sequence length or a batch each at most this (2^31 - 1).
MAX_WORKLOAD_SIZE = 2**31 - 1
#: A workload's width multiplier (d_ff = d_model x mlp_ratio).
MAX_MLP_RATIO = 1000.0

#: A model read from a config (accelsim.hf_config), checked before anything is built of it: at most this many
#: layers (the deepest published language models have a few hundred; each layer is some twenty tasks, and
#: generation's memory estimate visits each), experts per layer (the most published have a few hundred; each is
#: its own tasks), and parameters (the largest published models have about 2 x 10^12; past 10^13 the weights
#: alone would take more memory than any system simulated holds).
MAX_MODEL_LAYERS = 10_000
MAX_MODEL_EXPERTS = 10_000
MAX_MODEL_PARAMETERS = 10**13


def model_size_refusal(layers: int, experts: int, parameters: int | None) -> tuple[str, str] | None:
    """(the size refused, ``layers``, ``experts`` or ``parameters``, and why) for a model past the bounds above,
    else None. ``parameters`` None: not counted yet (checked once layers and experts are known to be in bounds)."""
    if layers > MAX_MODEL_LAYERS:
        return "layers", f"{layers:,} layers; a model may have at most {MAX_MODEL_LAYERS:,}"
    if experts > MAX_MODEL_EXPERTS:
        return "experts", f"{experts:,} experts per layer; a model may have at most {MAX_MODEL_EXPERTS:,}"
    if parameters is not None and parameters > MAX_MODEL_PARAMETERS:
        return "parameters", (
            f"the model would have {parameters:.3g} parameters; at most {MAX_MODEL_PARAMETERS:.0e} are simulated "
            "(the largest published models have about 2e+12)"
        )
    return None


#: One task's FLOPs or bytes, and a whole graph's, at most this: 2^62, half the range of the 64-bit integers the
#: simulator counts in, so that sums of them cannot overflow. A task shape's dimensions are bounded the same way.
MAX_COUNT = 2**62

#: Tasks a run may have, before or after the chip's compiler cuts its ops into parts. The simulator holds every task
#: with its dependencies, costs and placement (about 2 kB each through a run, measured on the shipped workloads),
#: so 5 million tasks take about 10 GB of this 24 GB, 2-core machine, and minutes of simulation.
MAX_TASKS = 5_000_000
#: Bytes per task a run takes, for the estimate the refusal quotes.
BYTES_PER_TASK = 2_000


def describe_tasks(tasks: int, at_least: bool = False) -> str:
    """``about 1.2e+09 tasks (about 2.4 TB)``: a task count and the memory a run of that many would take;
    ``at_least``: ``at least 5,000,001 tasks (about 10 GB)``, a count its builder reached before it stopped."""
    count = f"at least {tasks:,}" if at_least else f"about {tasks:.2g}"
    return f"{count} tasks ({_size(tasks * BYTES_PER_TASK)})"


def _size(nbytes: float) -> str:
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if nbytes >= scale:
            return f"about {nbytes / scale:.3g} {unit}"
    return f"about {nbytes / 1e3:.3g} kB"


def too_many_tasks(tasks: int, what: str, at_least: bool = False) -> str | None:
    """The refusal for a run of ``tasks`` tasks (``at_least``: or more), or None where it fits."""
    if tasks <= MAX_TASKS:
        return None
    return (
        f"{what} would have {describe_tasks(tasks, at_least)}; at most {MAX_TASKS:,} tasks fit this machine "
        f"({_size(MAX_TASKS * BYTES_PER_TASK)})"
    )
