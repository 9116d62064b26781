"""Measured training steps on many cards (``train_step`` records) and their predictions: a model (a GPT's sizes or a
catalog id) trained on a system in a tensor x pipeline x data layout, one step's milliseconds. accelsim.validation
reads them with the other records."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, Strict
from pydantic.dataclasses import dataclass as pydantic_dataclass

from .catalog import model_workload_data
from .chip import Chip
from .config import STRICT, PosInt, StrictBool, WorkloadSize
from .errors import AccelsimError
from .parallel import Layout
from .system import load_system
from .training import TrainOptions, train_step
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
    #: Sequences per step: ``global_batch`` over every replica (as published configurations and Megatron's
    #: --global-batch-size write it), or the older ``batch``, each replica's (per model-parallel group); one of them.
    batch: PosInt | None = None
    global_batch: PosInt | None = None
    tp: PosInt
    pp: PosInt
    dp: PosInt
    #: Sequences per micro-batch on each replica (Megatron's --micro-batch-size); default each replica's batch.
    micro_batch: PosInt | None = None
    #: DeepSpeed's ZeRO stage (0-3).
    zero: Annotated[int, Strict(), Field(ge=0, le=3)] = 0
    sequence_parallel: StrictBool = False
    recompute: Literal["none", "selective", "full"] = "none"
    #: fp8: the transformer engines' recipe (accelsim.workload.training_dtypes).
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
        if (self.batch is None) == (self.global_batch is None):
            raise AccelsimError(
                "give one of global_batch (sequences per step, every replica) and batch (each replica's)",
                key="global_batch",
            )
        per_replica = self.per_replica_batch
        if self.global_batch is not None and self.global_batch % self.dp:
            raise AccelsimError(f"global_batch {self.global_batch} does not divide over dp {self.dp}", key="dp")
        if self.micro_batch is not None and per_replica % self.micro_batch:
            raise AccelsimError(
                f"each replica's batch {per_replica} is not a whole number of micro-batches of {self.micro_batch}",
                key="micro_batch",
            )

    @property
    def per_replica_batch(self) -> int:
        if self.global_batch is not None:
            return self.global_batch // self.dp
        return self.batch or 0


def why_not_predicted(rec: TrainStepRecord, chip: Chip | None) -> str | None:
    """Why this record cannot be predicted with ``chip`` (None: it can; with no chip, on its system's own)."""
    try:
        system = load_system(rec.system)
    except AccelsimError as err:
        return f"system {rec.system!r} does not load ({err.detail})"
    if chip is not None and system.chip.name != chip.name:
        return f"measured on {rec.system} ({system.chip.name} cards), not on {chip.name}"
    return None


def predict_train_step(rec: TrainStepRecord, source: str) -> float:
    """The record's step in milliseconds (accelsim.training): its global batch in micro-batches on its layout of its
    system, ZeRO's stage, recomputation, sequence parallelism and the precision as written."""
    if isinstance(rec.model, str):
        data, where = model_workload_data(rec.model, [])
        seq = rec.seq_len or 0
    else:
        m = rec.model
        model = {"family": "gpt", "layers": m.layers, "d_model": m.d_model, "heads": m.heads, "vocab": m.vocab}
        data, where, seq = {"name": f"gpt {m.layers} x {m.d_model}", "model": model}, source, m.seq_len
    per_replica = rec.per_replica_batch
    options = TrainOptions(
        global_batch=per_replica * rec.dp,
        micro_batch=rec.micro_batch or per_replica,
        seq_len=seq,
        dtype=rec.dtype,
        zero=rec.zero,
        recompute=rec.recompute,
        sequence_parallel=rec.sequence_parallel,
    )
    step = train_step(load_system(rec.system), Layout(rec.tp, rec.pp, rec.dp), data, where, options)
    return step.step_ms
