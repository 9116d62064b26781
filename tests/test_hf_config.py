"""Hugging Face configs read into architectures: each family's conventions, the catalog, and one-line refusals."""

import json

import pytest

from accelsim.catalog import catalog_ids, load_model, model_workload
from accelsim.errors import AccelsimError
from accelsim.hf_config import model_spec_from_config, parameter_count
from accelsim.lowering import lower

LLAMA = {
    "model_type": "llama",
    "hidden_size": 4096,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "intermediate_size": 14336,
    "vocab_size": 128256,
    "hidden_act": "silu",
    "rms_norm_eps": 1e-5,
    "tie_word_embeddings": False,
}


def spec(**changes):
    return model_spec_from_config({**LLAMA, **changes}, "config.json")


def test_a_llama_config_is_a_gated_rmsnorm_rotary_decoder_with_grouped_query_attention():
    s = spec()
    assert (s["mlp"], s["activation"], s["norm"], s["positions"]) == ("gated", "silu", "rmsnorm", "rotary")
    assert (s["heads"], s["kv_heads"], s["d_ff"], s["vocab"]) == (32, 8, 14336, 128256)
    assert not s["parallel_block"] and s["causal"]


@pytest.mark.parametrize(
    "model, billions",
    [
        # Parameter counts the model cards publish (biases, which we leave out, are under 0.1%).
        ("meta-llama/Llama-2-7b-hf", 6.74),
        ("meta-llama/Llama-2-70b-hf", 68.98),
        ("meta-llama/Llama-2-13b-hf", 13.02),  # its config omits tie_word_embeddings: LlamaConfig's False applies
        ("meta-llama/Llama-3.1-8B", 8.03),
        ("mistralai/Mixtral-8x7B-v0.1", 46.70),
        ("tiiuae/falcon-7b", 6.92),
        ("EleutherAI/gpt-j-6b", 6.05),
        ("Qwen/Qwen3-30B-A3B", 30.5),
    ],
)
def test_catalog_models_have_their_published_parameter_counts(model, billions):
    assert parameter_count(load_model(model).require()) / 1e9 == pytest.approx(billions, rel=0.005)


def test_a_config_that_omits_tie_word_embeddings_takes_its_library_class_default():
    """transformers fills a missing key from the model type's config class: LlamaConfig unties the LM head,
    GPT2Config (PretrainedConfig) ties it."""
    assert load_model("meta-llama/Llama-2-13b-hf").require()["tied_embeddings"] is False
    assert load_model("gpt2-xl").require()["tied_embeddings"] is True


def test_older_key_names_and_family_conventions():
    falcon = load_model("tiiuae/falcon-7b").require()  # n_head, multi_query, parallel_attn, FFN = 4 x d_model
    assert (falcon["heads"], falcon["kv_heads"], falcon["d_ff"], falcon["parallel_block"]) == (71, 1, 4 * 4544, True)
    gpt2 = load_model("gpt2-xl").require()  # n_embd / n_layer / n_head, learned positions, tied embeddings
    assert (gpt2["d_model"], gpt2["layers"], gpt2["positions"], gpt2["tied_embeddings"]) == (1600, 48, "learned", True)
    glm = load_model("THUDM/chatglm2-6b").require()  # num_layers, multi_query_group_num, kv_channels, SwiGLU
    assert (glm["layers"], glm["kv_heads"], glm["d_head"], glm["activation"]) == (28, 2, 128, "silu")
    bloom = load_model("bigscience/bloomz-7b1").require()
    assert bloom["positions"] == "alibi" and bloom["d_model"] == 4096


def test_sliding_windows_every_layer_or_every_other():
    mistral = load_model("mistralai/Mistral-7B-v0.1").require()
    assert (mistral["sliding_window"], mistral["window_period"]) == (4096, 1)
    gemma2 = load_model("google/gemma-2-9b").require()  # local, global, local, ...
    assert (gemma2["sliding_window"], gemma2["window_period"]) == (4096, 2)
    oss = load_model("openai/gpt-oss-20b").require()  # from layer_types
    assert (oss["sliding_window"], oss["window_period"]) == (128, 2)
    gemma3 = load_model("google/gemma-3-4b-it").require()  # text_config, with the library's defaults
    assert (gemma3["sliding_window"], gemma3["window_period"], gemma3["kv_heads"]) == (1024, 6, 4)
    assert "sliding_window" not in load_model("Qwen/Qwen2-7B").require()  # use_sliding_window false


def test_mixtures_of_experts():
    qwen = load_model("Qwen/Qwen1.5-MoE-A2.7B").require()
    assert (qwen["experts"], qwen["experts_per_token"], qwen["d_ff_expert"], qwen["d_ff_shared"]) == (60, 4, 1408, 5632)
    mixtral = load_model("mistralai/Mixtral-8x7B-v0.1").require()
    assert (mixtral["experts"], mixtral["experts_per_token"], mixtral["d_ff_expert"]) == (8, 2, 14336)


@pytest.mark.parametrize(
    "model, key",
    [
        ("state-spaces/mamba-130m-hf", "state_size"),
        ("deepseek-ai/DeepSeek-V2-Lite", "kv_lora_rank"),
        ("openbmb/MiniCPM3-4B", "kv_lora_rank"),
    ],
)
def test_architectures_accelsim_cannot_represent_are_refused_naming_the_key(model, key):
    m = load_model(model)
    assert m.spec is None and m.refusal.startswith(key)
    with pytest.raises(AccelsimError, match=key):
        m.require()


@pytest.mark.parametrize(
    "changes, key, words",
    [
        ({"hidden_size": -4}, "hidden_size", "positive integer"),
        ({"hidden_size": 4096.5}, "hidden_size", "positive integer"),
        ({"model_type": "transformer-xl"}, "model_type", "unknown model_type"),
        ({"hidden_act": "tanh"}, "hidden_act", "unknown activation"),
        ({"num_attention_heads": None}, "num_attention_heads", "missing"),
        ({"layer_types": ["full_attention", "sliding_attention"], "sliding_window": 8}, "layer_types", "periodic"),
    ],
)
def test_malformed_configs_are_one_line_naming_the_key(changes, key, words):
    with pytest.raises(AccelsimError) as err:
        spec(**changes)
    assert str(err.value).startswith("config.json: " + key) and words in str(err.value)


def test_a_config_json_path_works_like_a_catalog_id(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**LLAMA, "num_hidden_layers": 2}))
    assert load_model(str(path)).require()["layers"] == 2
    path.write_text('{"hidden_size": NaN}')
    with pytest.raises(AccelsimError, match="not valid JSON"):
        load_model(str(path))
    with pytest.raises(AccelsimError, match="not a catalog id"):
        load_model("meta-llama/Llama-9-1b")


def test_the_catalog_holds_every_model_the_issue_names():
    ids = set(catalog_ids())
    for model in (
        "meta-llama/Llama-3.1-405B",
        "Qwen/Qwen3-8B",
        "google-bert/bert-large-uncased",
        "google/vit-base-patch16-224",
        "tiiuae/falcon-180B",
        "bigcode/starcoder2-3b",
    ):
        assert model in ids


def test_a_catalog_model_can_be_trained():
    wl = model_workload("Qwen/Qwen2-7B", ["layers=2", "seq_len=64", "mode=training"])
    graph = lower(wl)
    assert any(t.name.endswith(".adam") for t in graph.tasks) and wl.kv_heads == 4
    vit = model_workload("google/vit-base-patch16-224", ["layers=1"])
    assert vit.spec.model.family == "vit" and vit.seq_len == 14 * 14 + 1
