"""Hugging Face ``config.json`` files read into accelsim's model description (workload.ModelSpec's fields).

A config names its architecture by ``model_type`` and gives sizes under keys that vary by family (GPT-2's
``n_embd``, ChatGLM's ``num_layers``, MPT's ``d_model``). What a config leaves unsaid (whether the MLP is gated, the
norm, how positions enter, whether attention and MLP run in parallel) is what the family's modelling code does: that
knowledge is the ``FAMILIES`` table below, as data, with keys that override it where a config can (``parallel_attn``,
``alibi``, ``rmsnorm``). An architecture the simulator cannot represent is refused with the key that shows it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import AccelsimError
from .limits import MAX_FILE_BYTES
from .workload import DEFAULT_MLP_RATIO, mlp_width, workload_from_dict


@dataclass(frozen=True)
class Family:
    """What a family's modelling code does that its config does not say."""

    mlp: str = "gated"  # "gated" (SwiGLU/GeGLU: gate and up projections) or "plain"
    norm: str = "rmsnorm"
    positions: str = "rotary"
    parallel_block: bool = False
    causal: bool = True
    family: str = "gpt"  # accelsim's lowering: "gpt" (token sequences) or "vit" (image patches)
    activation: str = "silu"  # when the config names none (ChatGLM's SwiGLU; GPT-2's family: gelu)


_PLAIN = Family(mlp="plain", norm="layernorm", activation="gelu")
#: model_type -> its family's defaults (transformers' modeling_<type>.py; the remote code for baichuan, chatglm).
FAMILIES: dict[str, Family] = {
    **{
        t: Family()
        for t in (
            "llama",
            "mistral",
            "mixtral",
            "qwen2",
            "qwen2_moe",
            "qwen3",
            "qwen3_moe",
            "gemma",
            "gemma2",
            "gemma3_text",
            "baichuan",
            "chatglm",
            "gpt_oss",
        )
    },
    "gpt2": Family(mlp="plain", norm="layernorm", activation="gelu", positions="learned"),
    "gpt_bigcode": Family(mlp="plain", norm="layernorm", activation="gelu", positions="learned"),
    "opt": Family(mlp="plain", norm="layernorm", activation="gelu", positions="learned"),
    "bert": Family(mlp="plain", norm="layernorm", activation="gelu", positions="learned", causal=False),
    "vit": Family(mlp="plain", norm="layernorm", activation="gelu", positions="learned", causal=False, family="vit"),
    "gptj": Family(mlp="plain", norm="layernorm", activation="gelu", parallel_block=True),
    "codegen": Family(mlp="plain", norm="layernorm", activation="gelu", parallel_block=True),
    "gpt_neox": Family(mlp="plain", norm="layernorm", activation="gelu", parallel_block=True),
    "phi": Family(mlp="plain", norm="layernorm", activation="gelu", parallel_block=True),
    "falcon": Family(mlp="plain", norm="layernorm", activation="gelu", parallel_block=True),
    "persimmon": _PLAIN,
    "starcoder2": _PLAIN,
    "bloom": Family(mlp="plain", norm="layernorm", activation="gelu", positions="alibi"),
    "mpt": Family(mlp="plain", norm="layernorm", activation="gelu", positions="alibi"),
}

#: Keys some configs leave to their library's defaults: transformers' Gemma3TextConfig (the gemma-3-*-it configs
#: give only the sizes that differ from them).
LIBRARY_DEFAULTS: dict[str, dict[str, Any]] = {
    "gemma3_text": {
        "vocab_size": 262208,
        "num_attention_heads": 8,
        "num_key_value_heads": 4,
        "head_dim": 256,
        "hidden_activation": "gelu_pytorch_tanh",
        "sliding_window": 4096,
        "sliding_window_pattern": 6,
        "tie_word_embeddings": True,
    },
}

#: Keys that show an architecture accelsim cannot represent, and what it is.
UNSUPPORTED_KEYS = {
    "kv_lora_rank": "multi-head latent attention (DeepSeek-V2/V3, MiniCPM3, Moonlight)",
    "q_lora_rank": "multi-head latent attention (DeepSeek-V2/V3, MiniCPM3, Moonlight)",
    "state_size": "a state-space model (Mamba)",
    "ssm_cfg": "a state-space model (Mamba)",
}
UNSUPPORTED_TYPES = {
    "mamba": "a state-space model",
    "mamba2": "a state-space model",
    "falcon_mamba": "a state-space model",
    "jamba": "a hybrid state-space model",
    "rwkv": "a recurrent model",
    "deepseek_v2": "multi-head latent attention",
    "deepseek_v3": "multi-head latent attention",
    "minicpm3": "multi-head latent attention",
}

_ACTIVATIONS = {
    "silu": "silu",
    "swish": "silu",
    "swiglu": "silu",
    "gelu": "gelu",
    "gelu_new": "gelu",
    "gelu_fast": "gelu",
    "gelu_pytorch_tanh": "gelu",
    "gelu_python": "gelu",
    "quick_gelu": "gelu",
    "relu": "relu",
    "relu2": "relu",
}


class _Config:
    """A config's keys, read with one-line errors that name the file and the key."""

    def __init__(self, data: dict[str, Any], source: str) -> None:
        self.data, self.source = data, source

    def fail(self, key: str, message: str) -> AccelsimError:
        return AccelsimError(message, source=self.source, key=key)

    def first(self, *keys: str) -> tuple[str, Any] | None:
        for key in keys:
            if self.data.get(key) is not None:
                return key, self.data[key]
        return None

    def size(self, *keys: str, required: bool = True) -> int | None:
        """The first of ``keys`` present, as a positive integer."""
        found = self.first(*keys)
        if found is None:
            if required:
                raise self.fail(keys[0], f"missing (also looked for: {', '.join(keys[1:]) or 'nothing else'})")
            return None
        key, value = found
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise self.fail(key, f"must be a positive integer, got {value!r}")
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, f"must be true or false, got {value!r}")
        return value


def read_config_file(path: Path) -> dict[str, Any]:
    """A config.json (or a catalog entry, whose ``config`` key holds one) as a dict."""
    try:
        if not path.is_file():
            raise AccelsimError("not a file (give a catalog id or a path to a config.json)", source=str(path))
        if path.stat().st_size > MAX_FILE_BYTES:
            raise AccelsimError(f"larger than {MAX_FILE_BYTES:,} bytes; not a config", source=str(path))
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise AccelsimError(f"cannot read: {err}", source=str(path)) from None
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except (json.JSONDecodeError, RecursionError, ValueError) as err:
        raise AccelsimError(f"not valid JSON: {err}", source=str(path)) from None
    if isinstance(data, dict) and isinstance(data.get("config"), dict):
        data = data["config"]
    if not isinstance(data, dict):
        raise AccelsimError("must be a JSON object of config keys", source=str(path))
    return data


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number a config may hold")


def model_spec_from_config(data: dict[str, Any], source: str) -> dict[str, Any]:
    """The ModelSpec fields (a dict, validated later with the rest of the workload) of a Hugging Face config."""
    if isinstance(data.get("text_config"), dict):  # a multimodal model: its language model generates the text
        data = {**data["text_config"], **{k: v for k, v in data.items() if k == "tie_word_embeddings"}}
    model_type = data.get("model_type")
    if not isinstance(model_type, str) and data.get("architectures"):
        model_type = None
    for key, what in UNSUPPORTED_KEYS.items():
        if key in data:
            raise AccelsimError(f"{what} is not modelled", source=source, key=key)
    if model_type in UNSUPPORTED_TYPES:
        raise AccelsimError(
            f"{model_type!r} is {UNSUPPORTED_TYPES[model_type]}, not modelled", source=source, key="model_type"
        )
    if model_type not in FAMILIES:
        raise AccelsimError(
            f"unknown model_type {model_type!r}; known: {', '.join(sorted(FAMILIES))}", source=source, key="model_type"
        )
    data = {**LIBRARY_DEFAULTS.get(model_type, {}), **data}
    c = _Config(data, source)
    fam = FAMILIES[model_type]
    d_model = c.size("hidden_size", "n_embd", "n_embed", "d_model")
    assert d_model is not None
    layers = c.size("num_hidden_layers", "n_layer", "num_layers", "n_layers")
    heads = c.size("num_attention_heads", "n_head", "n_heads")
    assert heads is not None
    d_head = c.size("head_dim", "kv_channels", required=False)
    kv_heads = c.size("num_key_value_heads", "num_kv_heads", "multi_query_group_num", required=False)
    if kv_heads is None and (c.flag("multi_query", False) and not c.flag("new_decoder_architecture", False)):
        kv_heads = 1  # Falcon-7B, StarCoder: one key/value head
    activation_key = c.first("hidden_activation", "hidden_act", "activation_function")
    activation = fam.activation
    if activation_key is not None:
        key, name = activation_key
        if name not in _ACTIVATIONS:
            raise c.fail(key, f"unknown activation {name!r}; known: {', '.join(sorted(_ACTIVATIONS))}")
        activation = _ACTIVATIONS[name]
    spec: dict[str, Any] = {
        "family": fam.family,
        "layers": layers,
        "d_model": d_model,
        "heads": heads,
        "mlp": fam.mlp,
        "activation": activation,
        "norm": "rmsnorm" if c.flag("rmsnorm", fam.norm == "rmsnorm") else "layernorm",
        "parallel_block": c.flag("parallel_attn", c.flag("use_parallel_residual", fam.parallel_block)),
        "positions": fam.positions,
        "causal": fam.causal,
    }
    if d_head is not None:
        spec["d_head"] = d_head
    elif d_model % heads:
        raise c.fail("hidden_size", f"{d_model} is not divisible by num_attention_heads {heads} and no head_dim")
    if kv_heads is not None and kv_heads != heads:
        spec["kv_heads"] = kv_heads
    if c.flag("alibi", False) or (model_type == "baichuan" and "max_position_embeddings" not in data):
        spec["positions"] = "alibi"  # Falcon's alibi key; Baichuan 13B (ALiBi) has no position limit, 7B (RoPE) has
    _mlp(c, spec, d_model)
    _sliding_window(c, spec, model_type, layers or 0)
    if fam.family == "vit":
        spec["image_size"] = c.size("image_size")
        spec["patch_size"] = c.size("patch_size")
        spec["channels"] = c.size("num_channels", required=False) or 3
        labels = data.get("id2label")
        # transformers' default when a config names no labels is 2 (PretrainedConfig.num_labels)
        spec["classes"] = c.size("num_labels", required=False) or (len(labels) if isinstance(labels, dict) else 2)
    else:
        spec["vocab"] = c.size("vocab_size", "padded_vocab_size")
        spec["tied_embeddings"] = c.flag("tie_word_embeddings", True)  # transformers' default
    return spec


def _mlp(c: _Config, spec: dict[str, Any], d_model: int) -> None:
    """The MLP's hidden width (given, or a multiple of d_model) and the experts of a mixture."""
    d_ff = c.size("intermediate_size", "ffn_hidden_size", "ffn_dim", "n_inner", required=False)
    if d_ff is None:
        ratio = c.data.get("expansion_ratio", DEFAULT_MLP_RATIO)  # MPT's; GPT-2, GPT-J, Falcon, BLOOM: 4 x d_model
        if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 < ratio <= 64:
            raise c.fail("expansion_ratio", f"must be a number from 0 to 64, got {ratio!r}")
        d_ff = mlp_width(d_model, ratio)
    experts = c.size("num_local_experts", "num_experts", "n_routed_experts", required=False)
    if experts is None:
        spec["d_ff"] = d_ff
        return
    for key, ok in (("decoder_sparse_step", 1), ("mlp_only_layers", [])):
        if key in c.data and c.data[key] != ok:
            raise c.fail(key, f"only {ok!r} (every layer a mixture of experts) is modelled, got {c.data[key]!r}")
    spec["experts"] = experts
    spec["experts_per_token"] = c.size("num_experts_per_tok", "experts_per_token")
    spec["d_ff_expert"] = c.size("moe_intermediate_size", required=False) or d_ff
    shared = c.size("shared_expert_intermediate_size", required=False)
    if shared:
        spec["d_ff_shared"] = shared


def _sliding_window(c: _Config, spec: dict[str, Any], model_type: str, layers: int) -> None:
    """A sliding window, on every layer or on all but every period-th (Gemma 2, Gemma 3, gpt-oss)."""
    window = c.size("sliding_window", required=False)
    if window is None or not c.flag("use_sliding_window", True):
        return
    spec["sliding_window"] = window
    kinds = c.data.get("layer_types")
    period = c.size("sliding_window_pattern", required=False) or (2 if model_type == "gemma2" else 1)
    if isinstance(kinds, list) and kinds:
        full = [i for i, kind in enumerate(kinds) if kind == "full_attention"]
        period = full[0] + 1 if full else 1
        expected = [i for i in range(len(kinds)) if period > 1 and (i + 1) % period == 0]
        if full != expected:
            raise c.fail("layer_types", "only a periodic pattern (every n-th layer global) is modelled")
    spec["window_period"] = period


def parameter_count(spec: dict[str, Any]) -> int:
    """Weights of a model built by ``model_spec_from_config`` (Workload.parameters of one pass of it)."""
    run = {"batch": 1} if spec.get("family") == "vit" else {"batch": 1, "seq_len": 1}
    return workload_from_dict({"name": "parameters", "model": spec, "run": run}, "<model>").parameters


def describe(spec: dict[str, Any]) -> str:
    """One line: the architecture in the words its papers use."""
    heads, kv = spec["heads"], spec.get("kv_heads", spec["heads"])
    attention = "MHA" if kv == heads else ("MQA" if kv == 1 else f"GQA {heads}/{kv}")
    mlp = (
        {"silu": "SwiGLU", "gelu": "GeGLU", "relu": "ReGLU"}[spec["activation"]]
        if spec["mlp"] == "gated"
        else (f"{spec['activation'].upper()} MLP")
    )
    parts = [f"{spec['layers']} layers", f"d_model {spec['d_model']}", attention, mlp, spec["norm"]]
    if spec.get("experts"):
        parts.append(f"MoE {spec['experts_per_token']} of {spec['experts']}")
    if spec.get("parallel_block"):
        parts.append("parallel block")
    if spec.get("sliding_window"):
        parts.append(f"window {spec['sliding_window']}")
    parts.append(f"{parameter_count(spec) / 1e9:.2f}B params")
    return ", ".join(parts)
