"""Workload presets: a transformer model, a run and the lowering knobs, read from ``workloads/*.toml``.

Validated on load like chip profiles; ``--set key=value`` overrides any field by its short name or dotted path.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn

import numpy as np
from pydantic import Field, Strict
from pydantic.dataclasses import dataclass as pydantic_dataclass

from .analytic import analytic_counts
from .config import STRICT, Fraction, MlpRatio, StrictBool, WorkloadSize, build, check_nesting, read_toml
from .errors import AccelsimError
from .limits import MAX_COUNT, MAX_WORKLOAD_SIZE
from .resources import resolve
from .vocabulary import Dtype

Variant = Literal["softmax", "window", "linear", "hybrid", "flash"]
Mode = Literal["inference", "training"]
Granularity = Literal["op", "head", "tile"]
Activation = Literal["gelu", "silu", "relu"]
Norm = Literal["layernorm", "rmsnorm"]
Positions = Literal["learned", "rotary", "alibi", "none"]
Count = Annotated[int, Strict(), Field(ge=0, le=MAX_WORKLOAD_SIZE)]
#: BERT's share of masked positions (Devlin et al. 2019), run.masked_fraction's default.
MASKED_FRACTION = 0.15
#: GPT-2's MLP width as a multiple of d_model: the ratio where a model gives neither d_ff nor a ratio of its own.
DEFAULT_MLP_RATIO = 4.0


def mlp_width(d_model: int, mlp_ratio: float = DEFAULT_MLP_RATIO) -> int:
    """The MLP's hidden width a ratio gives: d_model x mlp_ratio, rounded to the nearest integer (the one rule for
    presets, a tensor-parallel shard's unsharded width and Hugging Face configs without an intermediate size)."""
    return int(round(d_model * mlp_ratio))


@pydantic_dataclass(config=STRICT)
class ModelSpec:
    """The architecture. The defaults are GPT-2's (multi-head attention, LayerNorm, a GELU MLP, learned
    positions); the other fields describe the decoders Hugging Face configs name (accelsim.hf_config)."""

    family: Literal["gpt", "vit"]
    layers: WorkloadSize
    d_model: WorkloadSize
    heads: WorkloadSize
    #: Width of one head; defaults to d_model / heads (Gemma's heads are wider: queries are heads x d_head wide).
    d_head: WorkloadSize | None = None
    #: Key/value heads: heads (multi-head), fewer (grouped-query) or 1 (multi-query); must divide heads.
    kv_heads: WorkloadSize | None = None
    mlp_ratio: MlpRatio = DEFAULT_MLP_RATIO
    d_ff: WorkloadSize | None = None  # overrides mlp_ratio (e.g. llama's 11008)
    #: "gated": act(x W_gate) * (x W_up), then W_down (SwiGLU with silu, GeGLU with gelu); "plain": act(x W_up).
    mlp: Literal["plain", "gated"] = "plain"
    activation: Activation = "gelu"
    norm: Norm = "layernorm"
    #: Attention and MLP both read the layer's normalised input and add into one residual (GPT-J, Falcon, Phi).
    parallel_block: StrictBool = False
    #: learned: a position table added to the embeddings; rotary: RoPE on queries and keys; alibi: a bias added
    #: with the causal mask; none.
    positions: Positions = "learned"
    #: gpt with learned positions: the positions its table holds (Hugging Face's max_position_embeddings or
    #: n_positions, less RoBERTa's padding offset); a longer sequence (cached positions included) is refused.
    max_positions: WorkloadSize | None = None
    #: Causal attention; default: true for gpt, false for vit (an encoder such as BERT sets false).
    causal: StrictBool | None = None
    #: Where each norm sits: "pre" (GPT-2, Llama: a norm before attention and before the MLP, one more before the
    #: head) or "post" (BERT, RoBERTa: a norm after each residual add, one on the embeddings' sum, none before the
    #: head).
    norm_position: Literal["pre", "post"] = "pre"
    #: gpt with embeddings: rows of a token-type (segment) table added to the token embeddings (BERT's
    #: type_vocab_size, 2; RoBERTa's 1); 0: none.
    token_types: Count = 0
    #: gpt with embeddings: "lm", a norm and the vocabulary product (a decoder's LM head); "mlm", BERT's masked-LM
    #: head: a d_model x d_model product, the activation, a norm, then the vocabulary product, on every position
    #: (as Hugging Face's BertForMaskedLM computes logits for all positions, masked or not).
    head: Literal["lm", "mlm"] = "lm"
    #: Sliding-window attention: a query sees at most this many keys (Mistral, Gemma 2/3's local layers).
    sliding_window: WorkloadSize | None = None
    #: With sliding_window: every window_period-th layer (1-based) attends globally, the others locally; 1: all
    #: layers local (Gemma 2 and gpt-oss: 2; Gemma 3: 6).
    window_period: WorkloadSize = 1
    #: Mixture of experts: experts per layer (0: a dense MLP), experts each token is routed to, and each
    #: expert's hidden width (the same MLP kind as a dense layer's).
    experts: Count = 0
    experts_per_token: Count = 0
    d_ff_expert: WorkloadSize | None = None
    #: An always-on shared expert's hidden width next to the routed ones (Qwen1.5-MoE); 0: none.
    d_ff_shared: Count = 0
    #: The LM head reuses the embedding table (counts once in the weights' memory).
    tied_embeddings: StrictBool = False
    vocab: WorkloadSize | None = None  # gpt: LM head size
    embeddings: StrictBool = True  # gpt: token embedding + LM head; vit: patch embedding + classifier
    image_size: WorkloadSize | None = None  # vit
    patch_size: WorkloadSize | None = None  # vit
    channels: WorkloadSize = 3  # vit
    classes: WorkloadSize | None = None  # vit
    class_token: StrictBool = True  # vit


@pydantic_dataclass(config=STRICT)
class RunSpec:
    batch: WorkloadSize
    mode: Mode = "inference"
    dtype: Dtype = "bf16"
    seq_len: WorkloadSize | None = None  # gpt: required; vit: patches (+1 class token)
    #: Inference with a KV cache: positions per sequence already cached; attention reads their keys and values
    #: from memory (a decode step: seq_len 1 after past_tokens positions).
    past_tokens: Count = 0
    #: Logits for every position ("all"), only each sequence's last ("last": inference, as generation does), or
    #: with the MLM head only the masked positions ("masked": gathered before the head, as NVIDIA's and Megatron's
    #: BERT pretraining do; Hugging Face's BertForMaskedLM computes "all").
    logits: Literal["all", "last", "masked"] = "all"
    #: logits = "masked": the share of the tokens masked (BERT's 15%); the head runs on ceil(share x tokens) rows.
    masked_fraction: Fraction = MASKED_FRACTION
    #: The dtype of the matrix products' operands when it differs from dtype: weight GEMMs and attention's matmuls
    #: (so the KV cache too), as Gaudi's fp8 recipe quantizes them; their outputs and every other op stay in dtype.
    matmul_dtype: Dtype | None = None
    #: This many cards in tensor parallel (Megatron's column and row splits): the model given is one card's shard
    #: (accelsim.parallel.shard_model); each attention and MLP all-reduces its output (and in training its input's
    #: gradient), the vocabulary-parallel embedding its rows, and generation gathers the logits.
    tensor_parallel: WorkloadSize = 1
    #: Training under tensor parallelism: Megatron's sequence parallelism, the norms and residual adds on 1/tp of
    #: the sequence, each all-reduce a reduce-scatter, and an all-gather before each column-parallel product.
    sequence_parallel: StrictBool = False
    #: Training on this many replicas: each layer's gradients (a bucket) are all-reduced as soon as its backward is
    #: done, overlapping the layers still to go (or reduce-scattered under ZeRO, below).
    data_parallel: WorkloadSize = 1
    #: DeepSpeed's ZeRO stage over the replicas: 0 none; 1 the optimizer state sharded (each bucket reduce-scattered
    #: at the step, each replica updating its 1/dp and all-gathering the parameters); 2 also the gradients (reduce-
    #: scattered after every micro-batch's backward); 3 also the parameters (each layer's all-gathered before its
    #: forward and again before its backward).
    zero: Annotated[int, Strict(), Field(ge=0, le=3)] = 0
    #: Training: recompute activations in the backward pass instead of keeping them: "selective" recomputes
    #: attention's core (Korthikanti et al. 2022), "full" each layer's whole forward pass.
    recompute: Literal["none", "selective", "full"] = "none"
    #: Pipeline parallelism: the part of a gpt model's layers this card holds runs with the embeddings ("first"),
    #: the head ("last") or neither ("middle"), receiving its input (and in training its output's gradient) from
    #: the neighbouring stage; "all": the whole model.
    pipeline_stage: Literal["all", "first", "middle", "last"] = "all"
    #: Training: end with the optimizer's update (and the replicas' gradient reduction); false: one micro-batch's
    #: forward and backward only (its gradients accumulated; reduce-scattered under ZeRO 2 and 3), as a step runs
    #: all its micro-batches but the last.
    optimizer_step: StrictBool = True
    #: Sequences per micro-batch (each replica's, as Megatron's --micro-batch-size): a pipeline's batch / micro_batch
    #: micro-batches flow through the stages (accelsim train uses it in every layout).
    micro_batch: WorkloadSize = 1
    #: Mixture of experts: experts whose weights each MoE layer reads, when known (a router trace, or a kernel that
    #: runs every expert: the number of experts); from experts_per_token to experts. Default: the expectation under
    #: uniform top-k routing of the pass's tokens (accelsim.workload.Workload.moe_routing).
    experts_used: WorkloadSize | None = None


@pydantic_dataclass(config=STRICT)
class AttentionSpec:
    variant: Variant = "softmax"
    window: WorkloadSize = 256
    chunk: WorkloadSize = 64
    #: hybrid: heads using linear attention; default half
    linear_heads: Annotated[int, Strict(), Field(ge=0, le=MAX_WORKLOAD_SIZE)] | None = None
    #: softmax, flash: how the query heads that share a key/value head (grouped- and multi-query attention) run.
    #: "stacked": as one product with their query rows stacked, reading the key/value head once (fused kernels:
    #: FlashAttention, Gaudi's FusedSDPA); "per_query_head": each query head a product of its own that reads the
    #: key/value head itself (a batched matmul broadcasting K and V over the group, as optimum-habana's eager
    #: attention runs: gaudi_llama_repeat_kv / gaudi_qwen2_repeat_kv reshape the queries to
    #: (batch, kv_heads, group, q_len, d_head) against keys of (batch, kv_heads, 1, keys, d_head)).
    query_groups: Literal["stacked", "per_query_head"] = "stacked"


@pydantic_dataclass(config=STRICT)
class LoweringSpec:
    granularity: Granularity = "op"
    tile_m: WorkloadSize = 256  # output tile rows (token rows per block) at tile granularity
    tile_n: WorkloadSize = 256  # output tile columns
    batch_split: WorkloadSize = 1  # tile granularity: attention tasks per head cover batch / batch_split sequences


@pydantic_dataclass(config=STRICT)
class WorkloadSpec:
    name: str
    model: ModelSpec
    run: RunSpec
    attention: AttentionSpec = field(default_factory=AttentionSpec)
    lowering: LoweringSpec = field(default_factory=LoweringSpec)
    description: str = ""


def _given(value: int | None, key: str) -> int:
    """A field ``_check`` requires for this family (so never None on a loaded workload)."""
    if value is None:
        raise AccelsimError("required for this model family", key=key)
    return value


@dataclass(frozen=True)
class WorkloadSummary:
    """The headline figures of a workload (``accelsim workloads``, a lowered graph's ``meta``)."""

    name: str
    family: str
    layers: int
    d_model: int
    heads: int
    d_head: int
    d_ff: int
    seq_len: int
    batch: int
    dtype: str
    mode: str
    attention: str
    granularity: str

    def to_dict(self) -> dict[str, Any]:
        """The keys and values ``accelsim workloads --json`` prints."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Workload:
    """A validated workload with its derived sizes."""

    spec: WorkloadSpec
    source: str

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def d_head(self) -> int:
        m = self.spec.model
        return m.d_head if m.d_head is not None else m.d_model // m.heads

    @property
    def kv_heads(self) -> int:
        m = self.spec.model
        return m.kv_heads if m.kv_heads is not None else m.heads

    @property
    def q_width(self) -> int:
        """Columns of the queries (and of the attention's output): heads x d_head."""
        return self.spec.model.heads * self.d_head

    @property
    def kv_width(self) -> int:
        """Columns of the keys (and of the values): kv_heads x d_head."""
        return self.kv_heads * self.d_head

    @property
    def norm_params(self) -> int:
        """Parameters of one norm: scale and shift (LayerNorm) or a scale (RMSNorm)."""
        d = self.spec.model.d_model
        return 2 * d if self.spec.model.norm == "layernorm" else d

    def local_layer(self, layer: int) -> bool:
        """Whether ``layer`` attends within the sliding window (see ModelSpec.window_period)."""
        m = self.spec.model
        if m.sliding_window is None:
            return False
        return m.window_period == 1 or (layer + 1) % m.window_period != 0

    def keys(self, layer: int) -> int:
        """Keys each query of ``layer`` attends to at most: the cached positions and the new ones, capped by the
        sliding window on a local layer."""
        total = self.spec.run.past_tokens + self.seq_len
        window = self.spec.model.sliding_window
        return min(total, window) if window is not None and self.local_layer(layer) else total

    @property
    def parameters(self) -> int:
        """Weights the model holds as this workload runs it (one card's shard under tensor parallelism; a pipeline
        stage's embeddings or head only where it runs them): matrices, experts, the layers' norms (and an encoder's
        norm of its embeddings), embedding and token-type tables, heads (an MLM head's transform and its norm);
        biases, position tables and a decoder's final norm left out."""
        return self.spec.model.layers * self.layer_parameters + self.embedding_parameters + self.head_parameters

    @property
    def layer_parameters(self) -> int:
        """One layer's weights (this card's shard): attention, MLP or experts, norms."""
        m = self.spec.model
        d = m.d_model
        gated = m.mlp == "gated"

        def mlp(width: int) -> int:
            return (3 if gated else 2) * d * width

        attention = d * (self.q_width + 2 * self.kv_width) + self.q_width * d
        if m.experts:
            ffn = m.experts * mlp(m.d_ff_expert or 0) + d * m.experts + mlp(m.d_ff_shared)
        else:
            ffn = mlp(self.d_ff)
        return attention + ffn + self.norm_params * (1 if m.parallel_block else 2)

    @property
    def embedding_parameters(self) -> int:
        """The embeddings' weights where this card runs them: a gpt's token table, a vit's patch projection."""
        m = self.spec.model
        if not m.embeddings or not self.has_embeddings:
            return 0
        if m.family == "vit":
            return self.patch_elements * m.d_model
        # the token table, the token-type table and a post-norm model's norm of the embeddings' sum
        return ((m.vocab or 0) + m.token_types) * m.d_model + self.norm_params * (m.norm_position == "post")

    @property
    def head_parameters(self) -> int:
        """The head's weights where this card runs them: a vit's classifier; a gpt's LM head, unless it is the
        embedding table itself held here (tied), and an MLM head's transform and its norm."""
        m = self.spec.model
        if not m.embeddings or not self.has_head:
            return 0
        if m.family == "vit":
            return m.d_model * self.classes
        transform = (m.d_model * m.d_model + self.norm_params) * (m.head == "mlm")
        return transform + (0 if m.tied_embeddings and self.has_embeddings else (m.vocab or 0) * m.d_model)

    def layer_kinds(self) -> dict[int, int]:
        """Keys per query -> how many layers see that many (all alike but a sliding window's local and global
        layers), in closed form."""
        layers = self.spec.model.layers
        local, global_ = self.keys(0), self.spec.run.past_tokens + self.seq_len
        period = self.spec.model.window_period
        n_local = 0 if self.spec.model.sliding_window is None else layers - (layers // period if period > 1 else 0)
        kinds: dict[int, int] = {}
        for keys, count in ((local, n_local), (global_, layers - n_local)):
            if count:
                kinds[keys] = kinds.get(keys, 0) + count
        return kinds

    @property
    def moe_routing(self) -> tuple[int, int]:
        """(experts whose weights one MoE layer reads, token rows each runs) in expectation. With T token rows
        each routed to k of E experts uniformly, E x (1 - (1 - k/E)^T) experts receive tokens (at least k, at most
        E), unless run.experts_used gives the count. The experts run as one batched product of one shape, so each
        runs as many rows as the busiest (accelsim.workload.expected_max_load): the imbalance between experts
        makes the layer no faster than its busiest expert."""
        m = self.spec.model
        rows = self.tokens
        E, k = m.experts, m.experts_per_token
        used = self.spec.run.experts_used
        if used is None:
            used = round(E * (1 - (1 - k / E) ** rows))
            used = max(min(k, E), min(E, used))
        return used, expected_max_load(rows, k, used)

    @property
    def d_ff(self) -> int:
        m = self.spec.model
        return m.d_ff if m.d_ff else mlp_width(m.d_model, m.mlp_ratio)

    @property
    def patches(self) -> int:
        """vit: patches per image; gpt: 0."""
        m = self.spec.model
        if m.family != "vit":
            return 0
        return (_given(m.image_size, "model.image_size") // _given(m.patch_size, "model.patch_size")) ** 2

    @property
    def patch_elements(self) -> int:
        """vit: input elements per patch (channels x patch_size^2)."""
        m = self.spec.model
        return m.channels * _given(m.patch_size, "model.patch_size") ** 2

    @property
    def vocab(self) -> int:
        """gpt with embeddings: the LM head's size."""
        return _given(self.spec.model.vocab, "model.vocab")

    @property
    def classes(self) -> int:
        """vit with embeddings: the classifier's size."""
        return _given(self.spec.model.classes, "model.classes")

    @property
    def seq_len(self) -> int:
        m, r = self.spec.model, self.spec.run
        if m.family == "vit":
            return self.patches + (1 if m.class_token else 0)
        return _given(r.seq_len, "run.seq_len")

    @property
    def tokens(self) -> int:
        return self.spec.run.batch * self.seq_len

    @property
    def masked_rows(self) -> int:
        """run.logits = "masked": the token rows the MLM head runs on, ceil(masked_fraction x tokens)."""
        return max(1, math.ceil(self.spec.run.masked_fraction * self.tokens))

    @property
    def linear_heads(self) -> int:
        a, h = self.spec.attention, self.spec.model.heads
        if a.variant == "linear":
            return h
        if a.variant == "hybrid":
            return a.linear_heads if a.linear_heads is not None else h // 2
        return 0

    @property
    def has_embeddings(self) -> bool:
        """This card runs the embeddings (the whole model, or a pipeline's first stage)."""
        return self.spec.model.embeddings and self.spec.run.pipeline_stage in ("all", "first")

    @property
    def has_head(self) -> bool:
        """This card runs the head (the whole model, or a pipeline's last stage)."""
        return self.spec.model.embeddings and self.spec.run.pipeline_stage in ("all", "last")

    @property
    def causal(self) -> bool:
        m = self.spec.model
        return m.causal if m.causal is not None else m.family == "gpt"

    def summary(self) -> WorkloadSummary:
        m, r, a = self.spec.model, self.spec.run, self.spec.attention
        return WorkloadSummary(
            name=self.name,
            family=m.family,
            layers=m.layers,
            d_model=m.d_model,
            heads=m.heads,
            d_head=self.d_head,
            d_ff=self.d_ff,
            seq_len=self.seq_len,
            batch=r.batch,
            dtype=r.dtype,
            mode=r.mode,
            attention=a.variant,
            granularity=self.spec.lowering.granularity,
        )


@functools.lru_cache(maxsize=4096)
def expected_max_load(tokens: int, k: int, experts: int) -> int:
    """Token rows of the busiest of ``experts`` experts when ``tokens`` rows are each routed to ``k`` of them
    uniformly, in expectation: an expert's load is Binomial(T, p = k/n) (n = ``experts``), and with the loads
    taken as independent, E[max] = sum over m >= 1 of 1 - F(m - 1)^n, F the binomial CDF (the multinomial's loads
    are slightly negatively correlated, which this ignores). Rounded to the nearest row, and never below the
    mean, T x k / n rounded up (one row per expert when T = 1: exact; every row when k = n)."""
    mean = -(-tokens * k // experts)
    p = k / experts
    if p >= 1.0:
        return tokens
    if tokens <= 1:
        return mean
    sd = math.sqrt(tokens * p * (1 - p))
    # Outside [lo, hi] the terms are 1 (F(m - 1) below 1e-30) or 0 (beyond double precision): only the rest is
    # summed, so the cost does not grow with T.
    lo = max(0, int(tokens * p - 12 * sd - 20))
    hi = min(tokens, int(tokens * p + 12 * sd + 20))
    m = np.arange(lo, hi + 1)
    log_first = (
        math.lgamma(tokens + 1)
        - math.lgamma(lo + 1)
        - math.lgamma(tokens - lo + 1)
        + lo * math.log(p)
        + (tokens - lo) * math.log1p(-p)
    )
    # log pmf(m) from log pmf(lo) by the ratios pmf(m + 1) / pmf(m) = (T - m) / (m + 1) x p / (1 - p)
    step = np.log(tokens - m[:-1]) - np.log(m[:-1] + 1) + math.log(p / (1 - p))
    log_pmf = log_first + np.concatenate(([0.0], np.cumsum(step)))
    cdf = np.minimum(np.cumsum(np.exp(log_pmf)), 1.0)  # F(lo) .. F(hi)
    expected = lo + float(np.sum(1.0 - cdf[:-1] ** experts))  # m = 1 .. lo, then m = lo + 1 .. hi
    return max(mean, round(expected))


def experts_used_problem(experts: int, k: int, used: int) -> str | None:
    """Why reading ``used`` experts per MoE layer is not allowed for ``experts`` experts routed ``k`` per token
    (None: it is): from the k a token is routed to, to all of them."""
    if not experts:
        return "only with experts > 0"
    if not k <= used <= experts:
        return f"must be from experts_per_token ({k}) to experts ({experts}), got {used}"
    return None


def _check(spec: WorkloadSpec, source: str) -> None:
    m, r, a = spec.model, spec.run, spec.attention

    def fail(key: str, msg: str) -> NoReturn:
        raise AccelsimError(msg, source=source, key=key)

    if m.d_head is None and m.d_model % m.heads:
        fail("model.d_model", f"d_model {m.d_model} is not divisible by heads {m.heads} (or give model.d_head)")
    if m.kv_heads is not None and m.heads % m.kv_heads:
        fail("model.kv_heads", f"kv_heads {m.kv_heads} must divide heads {m.heads}")
    exact = a.variant in ("softmax", "flash")  # attention over every key, not GFormer's approximations
    if (m.kv_heads not in (None, m.heads) or m.sliding_window is not None) and not exact:
        key = "model.kv_heads" if m.kv_heads not in (None, m.heads) else "model.sliding_window"
        fail(
            key,
            f'grouped-query and sliding-window attention are modelled for attention.variant = "softmax" or "flash" '
            f'only, not "{a.variant}"',
        )
    if a.variant == "flash" and r.mode != "inference":
        fail("attention.variant", '"flash" (a fused kernel) is modelled for inference only')
    if m.experts:
        if not 1 <= m.experts_per_token <= m.experts:
            fail("model.experts_per_token", f"must be from 1 to experts ({m.experts}), got {m.experts_per_token}")
        if m.d_ff_expert is None:
            fail("model.d_ff_expert", "required with experts (each expert's hidden width)")
        if r.mode == "training":
            fail("model.experts", "training a mixture-of-experts model is not modelled (inference only)")
    else:
        for k in ("experts_per_token", "d_ff_shared"):
            if getattr(m, k):
                fail(f"model.{k}", "only with experts > 0")
        if m.d_ff_expert is not None:
            fail("model.d_ff_expert", "only with experts > 0")
    if r.experts_used is not None:
        problem = experts_used_problem(m.experts, m.experts_per_token, r.experts_used)
        if problem:
            fail("run.experts_used", problem)
    if r.past_tokens:
        if r.mode != "inference" or m.family != "gpt" or not exact:
            fail("run.past_tokens", 'a KV cache is for gpt inference with attention.variant = "softmax" or "flash"')
    if r.matmul_dtype not in (None, r.dtype) and not exact:
        fail("run.matmul_dtype", 'is modelled for attention.variant = "softmax" or "flash" only')
    if r.tensor_parallel > 1 and m.family != "gpt":
        fail("run.tensor_parallel", "tensor parallelism is modelled for gpt models")
    if r.mode != "training":
        for key, value in (
            ("data_parallel", r.data_parallel > 1),
            ("zero", r.zero > 0),
            ("recompute", r.recompute != "none"),
        ):
            if value:
                fail(f"run.{key}", 'is for training (run.mode = "training")')
    if r.pipeline_stage != "all" and (m.family != "gpt" or not m.embeddings):
        fail("run.pipeline_stage", "pipeline stages are modelled for gpt models with embeddings")
    if r.sequence_parallel and (r.tensor_parallel == 1 or r.mode != "training" or m.d_model % r.tensor_parallel):
        fail(
            "run.sequence_parallel",
            f"is for training with tensor_parallel > 1 dividing d_model ({m.d_model}); got tensor_parallel "
            f"{r.tensor_parallel}, mode {r.mode}",
        )
    if r.zero and r.data_parallel == 1:
        fail("run.zero", "ZeRO shards over replicas: needs run.data_parallel > 1")
    if r.logits == "last" and (r.mode != "inference" or m.family != "gpt" or not m.embeddings):
        fail("run.logits", '"last" is for gpt inference with embeddings')
    if m.max_positions is not None:
        if m.family != "gpt" or m.positions != "learned":
            fail("model.max_positions", 'is the size of a gpt model\'s learned position table (positions = "learned")')
        if r.seq_len is not None and r.past_tokens + r.seq_len > m.max_positions:
            fail(
                "run.seq_len",
                f"{r.past_tokens + r.seq_len:,} positions (cached ones included), but the model's learned position "
                f"table holds {m.max_positions:,} (model.max_positions)",
            )
    if m.norm_position == "post" and m.parallel_block:
        fail("model.norm_position", '"post" norms follow each residual add; a parallel block has one: use "pre"')
    if (m.token_types or m.head != "lm") and (m.family != "gpt" or not m.embeddings):
        key = "model.token_types" if m.token_types else "model.head"
        fail(key, "is for gpt models with embeddings")
    if m.head == "mlm" and r.sequence_parallel:
        fail("run.sequence_parallel", 'sequence parallelism is not modelled with the MLM head (model.head = "mlm")')
    if m.head == "mlm" and r.logits == "last":
        fail("run.logits", '"last" is for generation by an LM head; the MLM head scores every position')
    if r.logits == "masked" and m.head != "mlm":
        fail("run.logits", '"masked" is for the MLM head (model.head = "mlm")')
    if r.masked_fraction != MASKED_FRACTION and r.logits != "masked":
        fail("run.masked_fraction", 'is the share of positions the MLM head scores: only with run.logits = "masked"')
    if m.d_ff is None and not 1 <= mlp_width(m.d_model, m.mlp_ratio) <= MAX_WORKLOAD_SIZE:
        fail(
            "model.mlp_ratio",
            f"d_ff = d_model x mlp_ratio = {m.d_model} x {m.mlp_ratio:g} rounds to "
            f"{mlp_width(m.d_model, m.mlp_ratio):,}; it must be from 1 to {MAX_WORKLOAD_SIZE:,}",
        )
    if m.family == "gpt":
        if r.seq_len is None:
            fail("run.seq_len", "required for a gpt model")
        if m.embeddings and m.vocab is None:
            fail(
                "model.vocab",
                "required for a gpt model with embeddings (set embeddings = false to leave out "
                "the embedding and LM head)",
            )
        for k in ("image_size", "patch_size", "classes"):
            if getattr(m, k) is not None:
                fail(f"model.{k}", "only for vit models")
    else:
        if m.image_size is None or m.patch_size is None:
            fail("model.image_size" if m.image_size is None else "model.patch_size", "required for a vit model")
        if m.image_size % m.patch_size:
            fail("model.image_size", f"image_size {m.image_size} is not divisible by patch_size {m.patch_size}")
        if m.embeddings and m.classes is None:
            fail("model.classes", "required for a vit model with embeddings")
        if r.seq_len is not None:
            fail("run.seq_len", "a vit's sequence length comes from image_size and patch_size; leave it out")
        if m.vocab is not None:
            fail("model.vocab", "only for gpt models")
    seq = Workload(spec, source).seq_len
    if a.variant in ("linear", "hybrid") and seq % a.chunk:
        fail(
            "attention.chunk",
            f"sequence length {seq} is not divisible by chunk {a.chunk} (linear attention is lowered chunk by chunk)",
        )
    if a.variant in ("window", "hybrid") and seq % a.window:
        fail(
            "attention.window",
            f"sequence length {seq} is not divisible by window {a.window} (windowed "
            "attention is lowered in blocks of window queries)",
        )
    if r.batch % spec.lowering.batch_split:
        fail("lowering.batch_split", f"batch {r.batch} is not divisible by batch_split {spec.lowering.batch_split}")
    if a.linear_heads is not None:  # used by the hybrid variant only, like window and chunk by theirs
        if not 0 <= a.linear_heads <= m.heads:
            fail("attention.linear_heads", f"must be between 0 and heads ({m.heads}), got {a.linear_heads}")


def _check_totals(wl: Workload) -> None:
    """A pass's FLOPs and bytes must stay countable in 64-bit integers (accelsim.limits.MAX_COUNT)."""
    flops, nbytes = analytic_counts(wl)
    for what, total in (("FLOPs", flops), ("bytes moved", nbytes)):
        if total > MAX_COUNT:
            raise AccelsimError(
                f"one {wl.spec.run.mode} pass would count {total:.3g} {what}, past the {MAX_COUNT:.3g} (2^62) the "
                "simulator can count; make the model or the run smaller (model.layers, model.d_model, run.batch, "
                "run.seq_len)",
                source=wl.source,
                key="model",
            )


def training_dtypes(run: dict) -> dict:
    """A run's dict with fp8 training read as the transformer engines' recipe (Intel's and NVIDIA's): ``dtype =
    "fp8"`` in training means the matrix products (forward and both backward products) in fp8 and everything else
    (embeddings, norms, softmax, residual adds, element-wise ops, the LM head) in bf16, so run.dtype becomes bf16
    and run.matmul_dtype fp8; the fp32 master weights and optimizer state are the memory model's. Any other run is
    returned as it is."""
    if run.get("mode") == "training" and run.get("dtype") == "fp8" and run.get("matmul_dtype") in (None, "fp8"):
        return {**run, "dtype": "bf16", "matmul_dtype": "fp8"}
    return run


def _refuse_old_keys(data: dict, source: str) -> None:
    run = data.get("run")
    if isinstance(run, dict) and "zero1" in run:
        raise AccelsimError(
            "run.zero1 is now run.zero, DeepSpeed's ZeRO stage 0-3 (zero1 = true is zero = 1)",
            source=source,
            key="run.zero1",
        )


def workload_from_dict(data: dict, source: str = "<dict>") -> Workload:
    _refuse_old_keys(data, source)
    if isinstance(data.get("run"), dict):
        data = {**data, "run": training_dtypes(data["run"])}
    spec = build(WorkloadSpec, data, source)
    _check(spec, source)
    wl = Workload(spec, source)
    _check_totals(wl)
    return wl


def load_workload(name_or_path: str | Path, overrides: list[str] | None = None) -> Workload:
    """Load a preset by name or path, applying ``key=value`` overrides (``seq_len=4096``, ``run.batch=4``)."""
    data, source = workload_data(name_or_path, overrides)
    return workload_from_dict(data, source)


def workload_data(name_or_path: str | Path, overrides: list[str] | None = None) -> tuple[dict, str]:
    """A preset's dict (its file as parsed, overrides applied) and its source, before validation: what a caller
    that changes it further (a parallel layout's shard) starts from."""
    path = resolve(name_or_path, "workloads")
    data = read_toml(path)
    for item in overrides or []:
        apply_override(data, item, str(path))
    return data, str(path)


_SECTIONS = {"model": ModelSpec, "run": RunSpec, "attention": AttentionSpec, "lowering": LoweringSpec}


def apply_override(data: dict, item: str, source: str) -> None:
    """Set one field from ``KEY=VALUE``; KEY is a field name or ``section.field``; VALUE is parsed as TOML."""
    import tomllib

    if "=" not in item:
        raise AccelsimError(f"expected KEY=VALUE, got {item!r}", source="--set")
    key, raw = (s.strip() for s in item.split("=", 1))
    if key in ("zero1", "run.zero1"):
        raise AccelsimError("zero1 is now zero, DeepSpeed's ZeRO stage 0-3 (zero1=true is zero=1)", source="--set")
    if "." in key:
        section, name = key.split(".", 1)
    else:
        owners = [s for s, cls in _SECTIONS.items() if name_in(cls, key)]
        if not owners:
            allowed = sorted({f.name for cls in _SECTIONS.values() for f in dataclasses.fields(cls)})
            raise AccelsimError(f"unknown key {key!r}; allowed: {', '.join(allowed)}", source="--set")
        section, name = owners[0], key
    if section not in _SECTIONS or not name_in(_SECTIONS[section], name):
        raise AccelsimError(f"unknown key {key!r}", source="--set")
    check_nesting(raw, f"--set {key}")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw  # a bare word such as training or hybrid
    data.setdefault(section, {})[name] = value


def name_in(cls: type, name: str) -> bool:
    return any(f.name == name for f in dataclasses.fields(cls))
