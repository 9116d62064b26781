"""Measured training steps on many cards (``train_step`` records) and their predictions: a model (a GPT's sizes or a
catalog id) trained on a system in a tensor x pipeline x data layout, one step's milliseconds. accelsim.validation
reads them with the other records."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field, Strict
from pydantic.dataclasses import dataclass as pydantic_dataclass

from .catalog import model_workload_data
from .chip import Chip
from .config import STRICT, PosInt, WorkloadSize
from .errors import AccelsimError
from .lowering import lower
from .parallel import Layout
from .runner import run
from .system import load_system
from .system_run import pipeline_step, place
from .vocabulary import Dtype

Finite = Annotated[float, Strict(), Field(gt=0, allow_inf_nan=False)]


@pydantic_dataclass(config=STRICT, kw_only=True)
class GptSizes:
    family: Literal["gpt"]
    layers: WorkloadSize
    d_model: WorkloadSize
    heads: WorkloadSize
    seq_len: WorkloadSize
    vocab: WorkloadSize


@pydantic_dataclass(config=STRICT, kw_only=True)
class TrainStepRecord:
    kind: Literal["train_step"]
    system: str
    cards: PosInt
    #: A GPT's sizes, or a catalog id (then ``seq_len`` is the record's own key).
    model: GptSizes | str
    batch: PosInt  # sequences per model-parallel group per step
    tp: PosInt
    pp: PosInt
    dp: PosInt
    recompute: Literal["none", "selective", "full"] = "none"
    dtype: Dtype = "bf16"
    ms: Finite
    seq_len: WorkloadSize | None = None
    source: str = ""
    note: str = ""

    def check(self) -> None:
        if self.tp * self.pp * self.dp != self.cards:
            raise AccelsimError(
                f"tp x pp x dp = {self.tp * self.pp * self.dp}, not the record's {self.cards}", key="cards"
            )
        if isinstance(self.model, str) and self.seq_len is None:
            raise AccelsimError("a catalog model's record gives seq_len", key="seq_len")


def why_not_predicted(rec: TrainStepRecord, chip: Chip) -> str | None:
    """Why this record cannot be predicted with ``chip`` (None: it can)."""
    try:
        system = load_system(rec.system)
    except AccelsimError as err:
        return f"system {rec.system!r} does not load ({err.detail})"
    if system.chip.name != chip.name:
        return f"measured on {rec.system} ({system.chip.name} cards), not on {chip.name}"
    return None


@dataclass(frozen=True)
class TrainStepPrediction:
    """One train_step record (as read, every key kept) with its predicted step time."""

    record: Mapping[str, Any]
    measured_ms: float
    predicted_ms: float
    rel_error: float  # predicted / measured - 1

    @property
    def kind(self) -> str:
        return "train_step"

    @property
    def counted(self) -> bool:
        return True

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.record,
            "measured_ms": self.measured_ms,
            "predicted_ms": self.predicted_ms,
            "rel_error": self.rel_error,
        }


def predict_train_step(rec: TrainStepRecord, record: Mapping[str, Any], source: str) -> TrainStepPrediction:
    """One card of the record's layout on its system, simulated for the step."""
    settings = ["mode=training", f"batch={rec.batch}", f"recompute={rec.recompute}", f"dtype={rec.dtype}"]
    if isinstance(rec.model, str):
        data, where = model_workload_data(rec.model, [*settings, f"seq_len={rec.seq_len}"])
    else:
        m = rec.model
        data = {
            "name": f"gpt {m.layers} x {m.d_model}",
            "model": {"family": "gpt", "layers": m.layers, "d_model": m.d_model, "heads": m.heads, "vocab": m.vocab},
            "run": {
                "batch": rec.batch,
                "seq_len": m.seq_len,
                "mode": "training",
                "dtype": rec.dtype,
                "recompute": rec.recompute,
            },
        }
        where = source
    system, layout = load_system(rec.system), Layout(rec.tp, rec.pp, rec.dp)
    nodes = max(1, rec.cards // system.spec.cards_per_node)
    if layout.pp > 1:
        ms = pipeline_step(system, layout, data, where, "first-free", nodes).step_ms
    else:
        placement = place(system, layout, data, where, nodes=nodes)
        ms = run(placement.chip, lower(placement.workload)).latency_us / 1e3
    return TrainStepPrediction(record, rec.ms, round(ms, 4), round(ms / rec.ms - 1, 4))
