"""What one card holds in HBM at a step's peak: weights, gradients, optimizer state, activations and a KV cache.

One owner for every fit: a generation (accelsim.generation: weights and the KV cache at its longest), a run on a
system (accelsim.system_run) and a training step (accelsim.training) ask ``card_memory`` and hold the total to
Chip.hbm_bytes. Pure arithmetic on a workload and its layout: it knows nothing of the simulation.
"""

from __future__ import annotations

from dataclasses import dataclass

from .parallel import Layout
from .vocabulary import DTYPE_BYTES
from .workload import Workload

#: Bytes per parameter a mixed-precision Adam step keeps: bf16 weights (2), bf16 gradients (2), fp32 master weights
#: and two moments (4 + 4 + 4). ZeRO divides the optimizer's over the replicas from stage 1, the gradients' from
#: stage 2, the weights' from stage 3.
TRAINING_BYTES_PER_PARAMETER = (2, 2, 12)


@dataclass(frozen=True)
class CardMemory:
    """Bytes one card holds at a step's peak: parameters, gradients, optimizer state (mixed-precision Adam, sharded
    by ZeRO's stage), activations and, generating, the KV cache."""

    parameters: float
    gradients: float
    optimizer: float
    activations: float
    kv_cache: float = 0.0

    @property
    def state(self) -> float:
        """Parameters, gradients and optimizer state: what a step keeps whatever its batch."""
        return self.parameters + self.gradients + self.optimizer

    @property
    def total(self) -> float:
        return self.parameters + self.gradients + self.optimizer + self.activations + self.kv_cache

    def to_dict(self) -> dict[str, float]:
        """A training step's figures in 10^9 bytes (``train --json``; a generation reports its own, Memory)."""
        return {
            "parameters_gb": round(self.parameters / 1e9, 3),
            "gradients_gb": round(self.gradients / 1e9, 3),
            "optimizer_gb": round(self.optimizer / 1e9, 3),
            "activations_gb": round(self.activations / 1e9, 3),
            "total_gb": round(self.total / 1e9, 3),
        }


def card_memory(wl: Workload, layout: Layout, in_flight: int = 1, cached_tokens: int = 0) -> CardMemory:
    """What a card of ``layout`` running ``wl`` (one micro-batch of its shard) holds. Training: the state of
    TRAINING_BYTES_PER_PARAMETER, ZeRO's stage dividing the optimizer's (stage 1 up), the gradients' (2 up) and the
    weights' (3) bytes over the replicas (the working copy of a ZeRO-3 layer's gathered parameters left out), and
    ``in_flight`` micro-batches' activations (a pipeline's first stage holds min(pp, micro-batches) under 1F1B).
    Inference: the weights (``weight_bytes``) and the KV cache of ``cached_tokens`` positions per sequence."""
    r = wl.spec.run
    params = wl.parameters
    if r.mode != "training":
        return CardMemory(weight_bytes(wl), 0.0, 0.0, 0.0, kv_cache_bytes(wl, cached_tokens))
    weights, grads, optimizer = TRAINING_BYTES_PER_PARAMETER
    dp, zero = layout.dp, r.zero

    def share(stage: int) -> int:
        return dp if zero >= stage else 1

    return CardMemory(
        params * weights / share(3),
        params * grads / share(2),
        params * optimizer / share(1),
        activation_bytes(wl, layout) * in_flight,
    )


def weight_bytes(wl: Workload) -> int:
    """The weights as inference keeps them: the matrices in the products' dtype (run.matmul_dtype: fp8 under
    Gaudi's fp8 recipe), the token embeddings and an untied LM head in run.dtype."""
    m, r = wl.spec.model, wl.spec.run
    embeddings = (m.vocab or 0) * m.d_model * (1 if m.tied_embeddings else 2)
    products = DTYPE_BYTES[r.matmul_dtype or r.dtype]
    return (wl.parameters - embeddings) * products + embeddings * DTYPE_BYTES[r.dtype]


def kv_cache_bytes(wl: Workload, tokens: int) -> int:
    """Keys and values of ``tokens`` positions for each of run.batch sequences (a local layer keeps only its
    window), in the products' dtype: a bf16 cache could not have held the published fp8 runs (Llama-2-7B, batch
    1230 x 256 positions: 165 GB in bf16 on a 96 GB card)."""
    m, r = wl.spec.model, wl.spec.run
    cached = sum(
        min(tokens, m.sliding_window) if wl.local_layer(i) and m.sliding_window else tokens for i in range(m.layers)
    )
    return 2 * r.batch * wl.kv_width * cached * DTYPE_BYTES[r.matmul_dtype or r.dtype]


def activation_bytes(wl: Workload, layout: Layout) -> float:
    """Bytes of activations one card keeps for the backward pass of one micro-batch. Per layer, Korthikanti et al.
    2022 for tensor parallelism t: s b h (10 + 24/t + 5 a s / (h t)) bytes without recomputation, s b h (10 + 24/t)
    with selective, 2 s b h with full (the layer's input only); with sequence parallelism 34/t for 10 + 24/t, and
    the full recomputation's input sharded too."""
    m, r = wl.spec.model, wl.spec.run
    s, b, t = wl.seq_len, r.batch, layout.tp
    h, a = m.d_model, m.heads * t  # the whole model's heads
    kept = 34 / t if r.sequence_parallel else 10 + 24 / t  # sequence parallelism shards the norms' and dropouts'
    per_layer = {
        "none": s * b * h * (kept + 5 * a * s / (h * t)),
        "selective": s * b * h * kept,
        "full": 2 * s * b * h / (t if r.sequence_parallel else 1),
    }[r.recompute]
    return per_layer * m.layers
