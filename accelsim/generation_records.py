"""Published generation throughputs (``llm_generate`` records) and their predictions: a named Hugging Face model
generating ``output_tokens`` after ``input_tokens`` for ``batch`` sequences on ``cards`` cards
(../shared/calibration/gaudi/README.md). accelsim.validation reads them with the kernel records."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field, Strict
from pydantic.dataclasses import dataclass as pydantic_dataclass

from .catalog import load_model
from .chip import Chip
from .config import STRICT, PosInt
from .errors import AccelsimError
from .generation import Generation, Serving, generate

Finite = Annotated[float, Strict(), Field(gt=0, allow_inf_nan=False)]


@pydantic_dataclass(config=STRICT, kw_only=True)
class LlmGenerateRecord:
    kind: Literal["llm_generate"]
    chip: str
    model: str
    dtype: Literal["bf16", "fp8"]
    batch: PosInt
    input_tokens: PosInt
    output_tokens: PosInt
    cards: PosInt
    tokens_per_s: Finite
    #: The attention kernel the measured run used (accelsim.generation.Serving): "fused" (FusedSDPA or
    #: FlashAttention) or "eager" (optimum-habana without --use_flash_attention).
    attention: Literal["fused", "eager"] = "fused"
    source: str = ""
    note: str = ""

    @property
    def serving(self) -> Serving:
        return Serving(attention=self.attention)

    def check(self) -> None:
        pass


def why_not_predicted(rec: LlmGenerateRecord, chip: Chip) -> str | None:
    """Why this record cannot be predicted on ``chip`` (None: it can)."""
    if rec.chip != chip.name:
        return f"measured on {rec.chip}, not on {chip.name}"
    try:
        model = load_model(rec.model)
    except AccelsimError as err:
        return f"model {rec.model!r} is not in the catalog ({err.detail})"
    if model.spec is None:
        return f"model {rec.model!r}: {model.refusal}"
    return None


@dataclass(frozen=True)
class GenerationPrediction:
    """One llm_generate record (as read, every key kept) with its predicted throughput."""

    record: Mapping[str, Any]
    measured_tokens_per_s: float
    predicted_tokens_per_s: float
    rel_error: float  # predicted / measured - 1
    generation: Generation

    @property
    def kind(self) -> str:
        """The summary's row: one card, or several (tensor parallel), kept apart."""
        return "llm_generate" if self.record.get("cards", 1) == 1 else "llm_generate, several cards"

    @property
    def counted(self) -> bool:
        """Every generation record counts in the error statistics (a whole generation is never noise-sized)."""
        return True

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.record,
            "measured_tokens_per_s": self.measured_tokens_per_s,
            "predicted_tokens_per_s": self.predicted_tokens_per_s,
            "rel_error": self.rel_error,
        }


def predict_generation(chip: Chip, rec: LlmGenerateRecord, record: Mapping[str, Any]) -> GenerationPrediction:
    """The record's generation on ``chip``: on one card, or tensor parallel over ``cards`` cards of the chip's
    one-node system (as DeepSpeed ran the published multi-card runs)."""
    model = load_model(rec.model)
    g = generate(
        chip, model, rec.batch, rec.input_tokens, rec.output_tokens, rec.dtype, cards=rec.cards, serving=rec.serving
    )
    predicted = g.tokens_per_s
    return GenerationPrediction(
        record,
        measured_tokens_per_s=rec.tokens_per_s,
        predicted_tokens_per_s=round(predicted, 3),
        rel_error=round(predicted / rec.tokens_per_s - 1, 4),
        generation=g,
    )
