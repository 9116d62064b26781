"""Hugging Face ``config.json`` files read into accelsim's model description (workload.ModelSpec's fields).

A config names its architecture by ``model_type`` and gives sizes under keys that vary by family (GPT-2's
``n_embd``, ChatGLM's ``num_layers``, MPT's ``d_model``). What a config leaves unsaid (whether the MLP is gated, the
norm, how positions enter, whether attention and MLP run in parallel) is what the family's modelling code does: that
knowledge is the ``FAMILIES`` table below, as data, with keys that override it where a config can (``parallel_attn``,
``alibi``, ``rmsnorm``). An architecture the simulator cannot represent is refused with the key that shows it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import read_input
from .errors import AccelsimError
from .limits import model_size_refusal
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
    norm_position: str = "pre"  # "post": a norm after each residual add and on the embeddings (BERT, RoBERTa)
    head: str = "lm"  # "mlm": BERT's masked-LM head (transform, norm, tied decoder), as *ForMaskedLM runs it
    token_types: bool = False  # a token-type table of type_vocab_size rows added to the embeddings
    #: Rows of a learned position table that no token position uses (RoBERTa numbers positions from
    #: pad_token_id + 1 = 2, so its max_position_embeddings of 514 holds 512 positions).
    position_offset: int = 0


#: BERT and RoBERTa (transformers' modeling_bert.py, modeling_roberta.py): bidirectional, post-norm encoders with
#: learned absolute positions, token types and the masked-LM head. RoBERTa's max_position_embeddings (514) counts
#: its padding offset (positions start after pad_token_id), not longer sequences: both read 512 tokens at most.
_ENCODER = Family(
    mlp="plain",
    norm="layernorm",
    activation="gelu",
    positions="learned",
    causal=False,
    norm_position="post",
    head="mlm",
    token_types=True,
)


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
    "bert": _ENCODER,
    "roberta": dataclasses.replace(_ENCODER, position_offset=2),
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

#: The config key of the longest sequence a family's model takes (positions a learned table or RoPE was built
#: for): ``max_position_embeddings`` unless named here; None where the family has no such limit (BLOOM's ALiBi:
#: its ``seq_length`` is the training length, not a limit). A config without the key sets no limit.
CONTEXT_KEYS: dict[str, str | None] = {
    "gpt2": "n_positions",
    "gpt_bigcode": "n_positions",
    "gptj": "n_positions",
    "codegen": "n_positions",
    "chatglm": "seq_length",
    "mpt": "max_seq_len",
    "bloom": None,
}


def context_length(data: dict[str, Any]) -> tuple[str, int] | None:
    """(key, value) of the most positions a config's model takes (CONTEXT_KEYS), or None where it says none."""
    if isinstance(data.get("text_config"), dict):
        data = data["text_config"]
    model_type = data.get("model_type")
    key = CONTEXT_KEYS.get(model_type, "max_position_embeddings") if isinstance(model_type, str) else None
    if key is None:
        return None
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return None
    return key, value


#: Keys some configs leave to their library's defaults: transformers' Gemma3TextConfig (the gemma-3-*-it configs
#: give only the sizes that differ from them); LlamaConfig's untied LM head (``tie_word_embeddings: bool = False``;
#: meta-llama's Llama-2-13b/70b configs do not say, and PretrainedConfig's True would tie them).
LIBRARY_DEFAULTS: dict[str, dict[str, Any]] = {
    "llama": {"tie_word_embeddings": False},
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


def read_json(path: Path) -> Any:
    """A JSON file (a config.json or a catalog entry) parsed, read by the one reader of input files
    (config.read_input: no FIFO, device or file past MAX_FILE_BYTES); not UTF-8, not JSON, a NaN or nested past
    what the parser can follow is one AccelsimError naming the file."""
    raw = read_input(path, "a config.json")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise AccelsimError(f"not UTF-8 text (byte {err.start + 1})", source=str(path)) from None
    try:
        return json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise AccelsimError("not valid JSON: nested too deeply", source=str(path)) from None
    except ValueError as err:  # json.JSONDecodeError is one
        raise AccelsimError(f"not valid JSON: {err}", source=str(path)) from None


def config_of(data: Any, source: str) -> dict[str, Any]:
    """The config keys of a parsed config.json, or of a catalog entry (whose ``config`` key holds one)."""
    if isinstance(data, dict) and isinstance(data.get("config"), dict):
        data = data["config"]
    if not isinstance(data, dict):
        raise AccelsimError("must be a JSON object of config keys", source=source)
    return data


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number a config may hold")


def model_spec_from_config(data: dict[str, Any], source: str) -> dict[str, Any]:
    """The ModelSpec fields (a dict, validated later with the rest of the workload) of a Hugging Face config."""
    if isinstance(data.get("text_config"), dict):  # a multimodal model: its language model generates the text
        data = {**data["text_config"], **{k: v for k, v in data.items() if k == "tie_word_embeddings"}}
    given_type = data.get("model_type")
    model_type = given_type if isinstance(given_type, str) else None  # (a list or a table names no family)
    for key, what in UNSUPPORTED_KEYS.items():
        if key in data:
            raise AccelsimError(f"{what} is not modelled", source=source, key=key)
    if model_type in UNSUPPORTED_TYPES:
        raise AccelsimError(
            f"{model_type!r} is {UNSUPPORTED_TYPES[model_type]}, not modelled", source=source, key="model_type"
        )
    if model_type not in FAMILIES:
        raise AccelsimError(
            f"unknown model_type {given_type!r}; known: {', '.join(sorted(FAMILIES))}", source=source, key="model_type"
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
        if not isinstance(name, str) or name not in _ACTIVATIONS:
            raise c.fail(key, f"unknown activation {name!r}; known: {', '.join(sorted(_ACTIVATIONS))}")
        activation = _ACTIVATIONS[name]
    position_type = data.get("position_embedding_type", "absolute")
    if position_type != "absolute":  # BERT's relative_key(_query) variants add a distance embedding to the scores
        raise c.fail("position_embedding_type", f'only "absolute" positions are modelled, got {position_type!r}')
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
    if fam.norm_position != "pre":
        spec["norm_position"] = fam.norm_position
    if fam.head != "lm":
        spec["head"] = fam.head
    if fam.token_types:
        spec["token_types"] = c.size("type_vocab_size", required=False) or 2  # BertConfig's default
    if d_head is not None:
        spec["d_head"] = d_head
    elif d_model % heads:
        raise c.fail("hidden_size", f"{d_model} is not divisible by num_attention_heads {heads} and no head_dim")
    if kv_heads is not None and kv_heads != heads:
        spec["kv_heads"] = kv_heads
    if c.flag("alibi", False) or (model_type == "baichuan" and "max_position_embeddings" not in data):
        spec["positions"] = "alibi"  # Falcon's alibi key; Baichuan 13B (ALiBi) has no position limit, 7B (RoPE) has
    if fam.family == "gpt" and spec["positions"] == "learned":
        limit_key = CONTEXT_KEYS.get(model_type or "", "max_position_embeddings")  # the one rule of which key limits it
        table = c.size(limit_key, required=False) if limit_key else None
        if limit_key and table is not None:
            if table <= fam.position_offset:
                raise c.fail(limit_key, f"must be more than {fam.position_offset}, got {table}")
            spec["max_positions"] = table - fam.position_offset
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
    _check_size(c, spec)
    return spec


#: The config keys of the sizes a model's parameters grow with, each with its aliases (as read above).
_SIZE_KEYS = (
    ("num_hidden_layers", "n_layer", "num_layers", "n_layers"),
    ("hidden_size", "n_embd", "n_embed", "d_model"),
    ("num_attention_heads", "n_head", "n_heads"),
    ("head_dim", "kv_channels"),
    ("num_key_value_heads", "num_kv_heads", "multi_query_group_num"),
    ("intermediate_size", "ffn_hidden_size", "ffn_dim", "n_inner"),
    ("num_local_experts", "num_experts", "n_routed_experts"),
    ("moe_intermediate_size",),
    ("shared_expert_intermediate_size",),
    ("vocab_size", "padded_vocab_size"),
    ("image_size",),
)


def _check_size(c: _Config, spec: dict[str, Any]) -> None:
    """The model's size within accelsim.limits' bounds, checked here, where a config becomes a model, so that
    every path (run --model, generate, models) refuses it before any work, naming the config's key: the layer
    or expert count itself, or, for the parameters, the largest of the sizes they grow with."""
    found = {aliases[0]: c.first(*aliases) for aliases in _SIZE_KEYS}
    refusal = model_size_refusal(spec["layers"], spec.get("experts", 0), None)
    if refusal is None:
        refusal = model_size_refusal(spec["layers"], spec.get("experts", 0), parameter_count(spec, c.source))
    if refusal is None:
        return
    what, message = refusal
    if what == "layers":
        key = found["num_hidden_layers"]
    elif what == "experts":
        key = found["num_local_experts"]
    else:
        given = [f for f in found.values() if f is not None and isinstance(f[1], int) and not isinstance(f[1], bool)]
        key = max(given, key=lambda f: f[1], default=None)
    raise c.fail(key[0] if key else "config", message)


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


def parameter_count(spec: dict[str, Any], source: str = "<model>") -> int:
    """Weights of a model built by ``model_spec_from_config`` (Workload.parameters of one pass of it); a spec that
    is not a valid model is an AccelsimError naming ``source``."""
    run = {"batch": 1} if spec.get("family") == "vit" else {"batch": 1, "seq_len": 1}
    return workload_from_dict({"name": "parameters", "model": spec, "run": run}, source).parameters


def describe(spec: dict[str, Any]) -> str:
    """One line: the architecture in the words its papers use."""
    heads, kv = spec["heads"], spec.get("kv_heads", spec["heads"])
    attention = "MHA" if kv == heads else ("MQA" if kv == 1 else f"GQA {heads}/{kv}")
    mlp = (
        {"silu": "SwiGLU", "gelu": "GeGLU", "relu": "ReGLU"}[spec["activation"]]
        if spec["mlp"] == "gated"
        else (f"{spec['activation'].upper()} MLP")
    )
    norm = spec["norm"] if spec.get("norm_position", "pre") == "pre" else f"post-{spec['norm']}"
    parts = [f"{spec['layers']} layers", f"d_model {spec['d_model']}", attention, mlp, norm]
    if spec["family"] == "gpt" and not spec.get("causal", True):
        parts.insert(0, "encoder (bidirectional)")
    if spec.get("head") == "mlm":
        parts.append("MLM head")
    if spec.get("experts"):
        parts.append(f"MoE {spec['experts_per_token']} of {spec['experts']}")
    if spec.get("parallel_block"):
        parts.append("parallel block")
    if spec.get("sliding_window"):
        parts.append(f"window {spec['sliding_window']}")
    parts.append(f"{parameter_count(spec) / 1e9:.2f}B params")
    return ", ".join(parts)
