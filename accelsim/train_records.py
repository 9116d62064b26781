"""Measured training steps on many cards (``train_step`` records) and their predictions: a model (a GPT's sizes or a
catalog id) trained on a system in a tensor x pipeline x data layout, one step's milliseconds. accelsim.validation
reads them with the other records."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, Strict
from pydantic.dataclasses import dataclass as pydantic_dataclass

from .catalog import model_workload_data
from .chip import Chip
from .config import STRICT, PosInt, WorkloadSize
from .errors import AccelsimError
from .lowering import lower
from .parallel import Layout
from .registry import DEFAULT_SCHEDULER
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


def predict_train_step(rec: TrainStepRecord, source: str) -> float:
    """The record's step in milliseconds: one card of its layout on its system simulated (a pipeline's stages and
    their 1F1B order where pp > 1)."""
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
        ms = pipeline_step(system, layout, data, where, DEFAULT_SCHEDULER, nodes).step_ms
    else:
        placement = place(system, layout, data, where, nodes=nodes)
        ms = run(placement.chip, lower(placement.workload)).latency_us / 1e3
    return ms
