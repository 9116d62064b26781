"""Encoders from Hugging Face configs (BERT, RoBERTa): bidirectional attention, norms after the residual adds,
token types and learned positions, the masked-LM head; read from the catalog, lowered, counted and trained."""

import json

import pytest

from accelsim.analytic import analytic_counts
from accelsim.catalog import load_model, model_workload
from accelsim.cli import main
from accelsim.errors import AccelsimError
from accelsim.hf_config import model_spec_from_config, parameter_count
from accelsim.lowering import lower
from accelsim.ops import OPS

ENCODERS = [
    "google-bert/bert-base-uncased",
    "google-bert/bert-large-uncased",
    "FacebookAI/roberta-base",
    "FacebookAI/roberta-large",
]


@pytest.mark.parametrize(
    "model, layers, d_model, vocab, token_types",
    [
        ("google-bert/bert-base-uncased", 12, 768, 30522, 2),
        ("google-bert/bert-large-uncased", 24, 1024, 30522, 2),
        ("FacebookAI/roberta-base", 12, 768, 50265, 1),
        ("FacebookAI/roberta-large", 24, 1024, 50265, 1),
    ],
)
def test_each_encoder_in_the_catalog_reads_as_a_bidirectional_post_norm_encoder_with_an_mlm_head(
    model, layers, d_model, vocab, token_types
):
    entry = load_model(model)
    assert entry.source.startswith("https://huggingface.co/") and entry.note
    spec = entry.require()
    assert (spec["layers"], spec["d_model"], spec["vocab"], spec["token_types"]) == (
        layers,
        d_model,
        vocab,
        token_types,
    )
    assert spec["causal"] is False and spec["norm_position"] == "post" and spec["head"] == "mlm"
    assert (spec["positions"], spec["norm"], spec["mlp"], spec["activation"]) == (
        "learned",
        "layernorm",
        "plain",
        "gelu",
    )
    assert spec["d_ff"] == 4 * d_model and spec["tied_embeddings"]
    assert "encoder (bidirectional)" in entry.summary and "MLM head" in entry.summary


@pytest.mark.parametrize(
    "model, millions",
    [  # the model cards' counts; ours leaves out biases and the position table (and has no pooler: *ForMaskedLM)
        ("google-bert/bert-base-uncased", 110),
        ("google-bert/bert-large-uncased", 340),
        ("FacebookAI/roberta-base", 125),
        ("FacebookAI/roberta-large", 355),
    ],
)
def test_encoders_have_their_published_parameter_counts(model, millions):
    assert parameter_count(load_model(model).require()) / 1e6 == pytest.approx(millions, rel=0.02)


def test_an_encoders_parameters_are_its_tables_layers_and_mlm_transform():
    V, d, L, ff = 30522, 768, 12, 3072
    # word and token-type tables, the embeddings' LayerNorm; per layer QKV, projection, MLP and two LayerNorms;
    # the MLM head's dense and LayerNorm (its decoder is the word table, tied)
    expected = V * d + 2 * d + 2 * d + L * (4 * d * d + 2 * d * ff + 2 * 2 * d) + d * d + 2 * d
    assert parameter_count(load_model("google-bert/bert-base-uncased").require()) == expected


def _flash_flops(causal: bool, S: int = 128) -> int:
    wl = model_workload(
        "google-bert/bert-base-uncased",
        ["layers=1", "batch=2", f"seq_len={S}", "variant=flash", f"causal={str(causal).lower()}"],
    )
    return sum(t.flops for t in lower(wl).tasks if t.op == "flash_attn")


def test_bidirectional_attention_scores_every_query_against_every_key():
    B, H, S, D = 2, 12, 128, 64
    full, causal = _flash_flops(False, S), _flash_flops(True, S)
    assert full == 2 * 2 * B * H * S * S * D  # QK^T and x V over the full S x S
    assert causal == 2 * 2 * B * H * S * (S - (S - 1) // 2) * D  # each query its keys so far, on average
    assert full / causal == pytest.approx(2, abs=4 / S)  # S / (S/2 + 1)
    # unfused, both compute all S x S scores; only the causal one masks them
    for causal_flag, masks in ((False, 0), (True, B * H * S * S)):
        wl = model_workload(
            "google-bert/bert-base-uncased", ["layers=1", "batch=2", f"causal={str(causal_flag).lower()}"]
        )
        tasks = lower(wl).tasks
        assert sum(t.shape[0] for t in tasks if t.op == "mask") == masks
        assert sum(t.shape[0] for t in tasks if t.op == "softmax") == B * H * S * S


def test_post_norm_places_each_norm_after_its_residual_add():
    graph = lower(model_workload("FacebookAI/roberta-base", ["layers=2"]))
    deps = {t.name: t.deps for t in graph.tasks}
    assert deps["embed.ln"] == ("embed.pos",) and deps["embed.pos"] == ("embed.types",)
    assert deps["L0.qkv"] == ("embed.ln",)  # the layer reads the normalised embeddings directly
    assert set(deps["L0.res1"]) == {"L0.proj", "embed.ln"}
    assert deps["L0.ln1"] == ("L0.res1",) and deps["L0.mlp_up"] == ("L0.ln1",)
    assert set(deps["L0.res2"]) == {"L0.mlp_down", "L0.ln1"} and deps["L0.ln2"] == ("L0.res2",)
    assert deps["L1.qkv"] == ("L0.ln2",) and deps["head.dense"] == ("L1.ln2",)
    pre = {t.name: t.deps for t in lower(model_workload("FacebookAI/roberta-base", ["norm_position=pre"])).tasks}
    assert pre["L0.qkv"] == ("L0.ln1",) and pre["L0.ln2"] == ("L0.res1",)  # GPT-2's order, for contrast


def test_the_mlm_heads_flops_are_its_closed_form():
    T, d, V = 2 * 128, 768, 30522
    wl = model_workload("google-bert/bert-base-uncased", ["layers=1", "batch=2"])
    head = [t for t in lower(wl).tasks if t.group == "head"]
    per_element = OPS["gelu"].flops_per_element + OPS["layernorm"].flops_per_element
    # dense d x d, GELU, LayerNorm, decoder to the vocabulary: on all T positions, as BertForMaskedLM computes them
    assert sum(t.flops for t in head) == 2 * T * d * d + per_element * T * d + 2 * T * d * V
    trained = lower(model_workload("google-bert/bert-base-uncased", ["layers=1", "batch=2", "mode=training"]))
    matrix = [t for t in trained.tasks if t.group == "head" and OPS[t.op].category == "matrix"]
    # each product three times: forward, its input's gradient and its weight's gradient
    assert sum(t.flops for t in matrix) == 3 * (2 * T * d * d + 2 * T * d * V)
    names = {t.name for t in trained.tasks}
    assert {"head.dense.dW.adam", "head.ln.adam", "embed.types.adam", "embed.ln.adam", "L0.ln.adam"} <= names


def test_the_mlm_head_can_run_on_the_masked_positions_only():
    T, d, V = 2 * 128, 768, 30522
    M = 39  # ceil(15% of 256)
    sets = ["layers=1", "batch=2", "logits=masked"]
    wl = model_workload("google-bert/bert-base-uncased", sets)
    assert wl.masked_rows == M
    head = [t for t in lower(wl).tasks if t.group == "head"]
    per_element = OPS["gelu"].flops_per_element + OPS["layernorm"].flops_per_element
    assert sum(t.flops for t in head) == 2 * M * d * d + per_element * M * d + 2 * M * d * V
    trained = lower(model_workload("google-bert/bert-base-uncased", [*sets, "mode=training"]))
    matrix = [t for t in trained.tasks if t.group == "head" and OPS[t.op].category == "matrix"]
    assert sum(t.flops for t in matrix) == 3 * (2 * M * d * d + 2 * M * d * V)
    scatter = [t for t in trained.tasks if t.name == "head.scatter"]  # the gradient back into every token row
    assert len(scatter) == 1 and scatter[0].shape == (T * d,)
    everything = model_workload(
        "google-bert/bert-base-uncased", ["layers=1", "batch=2", "logits=masked", "masked_fraction=1.0"]
    )
    assert everything.masked_rows == T


@pytest.mark.parametrize(
    "sets",
    [
        ["mode=inference"],
        ["mode=inference", "logits=masked", "tensor_parallel=2"],
        ["mode=training", "logits=masked", "masked_fraction=0.5", "granularity=tile", "tile_m=32", "tile_n=512"],
        ["mode=training", "logits=masked", "tensor_parallel=2", "data_parallel=2", "zero=1"],
        ["mode=training"],
        ["mode=training", "granularity=tile", "tile_m=32", "tile_n=512"],
        ["mode=training", "granularity=head", "recompute=full"],
        ["mode=training", "recompute=selective", "data_parallel=2", "zero=1"],
        ["mode=training", "tensor_parallel=2", "data_parallel=2"],
        ["mode=training", "tensor_parallel=2", "head=lm", "sequence_parallel=true"],
        ["mode=training", "pipeline_stage=first", "optimizer_step=false"],
        ["mode=training", "pipeline_stage=last"],
    ],
)
def test_an_encoders_lowering_agrees_with_the_closed_form_counts(sets):
    wl = model_workload("FacebookAI/roberta-base", ["layers=2", "seq_len=64", "batch=2", *sets])
    graph = lower(wl)
    assert (graph.total_flops, graph.total_bytes) == analytic_counts(wl)


def test_an_encoder_trains_on_a_chip_and_on_a_system_and_generation_refuses_it(capsys):
    base = ["--model", "FacebookAI/roberta-base", "--set", "layers=2", "--json"]
    assert main(["run", "--chip", "gaudi2", *base]) == 0
    inference = json.loads(capsys.readouterr().out)
    assert main(["run", "--chip", "gaudi2", *base, "--set", "mode=training"]) == 0
    training = json.loads(capsys.readouterr().out)
    assert training["latency_cycles"] > 2 * inference["latency_cycles"]
    parallel = ["--system", "hls-gaudi2", "--parallel", "tp=2,dp=4"]
    assert main(["run", *parallel, *base, "--set", "mode=training"]) == 0
    step = json.loads(capsys.readouterr().out)
    assert step["communication"]["step_ms"] > 0
    tokens = ["--batch", "1", "--input-tokens", "16", "--output-tokens", "4"]
    assert main(["generate", "--chip", "gaudi2", "--model", "FacebookAI/roberta-base", *tokens]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "causal decoder" in err


@pytest.mark.parametrize(
    "sets, key",
    [
        (["parallel_block=true"], "model.norm_position"),
        (["embeddings=false"], "model.token_types"),
        (["token_types=0", "embeddings=false"], "model.head"),
        (["mode=training", "tensor_parallel=2", "sequence_parallel=true"], "run.sequence_parallel"),
        (["logits=last"], "run.logits"),
        (["norm_position=middle"], "norm_position"),
        (["head=classifier"], "head"),
        (["token_types=-1"], "token_types"),
        (["seq_len=513"], "run.seq_len"),  # BERT's table holds 512 positions
        (["positions=rotary"], "model.max_positions"),
        (["head=lm", "logits=masked"], "run.logits"),
        (["masked_fraction=0.2"], "run.masked_fraction"),
        (["logits=masked", "masked_fraction=0"], "masked_fraction"),
        (["logits=masked", "masked_fraction=1.5"], "masked_fraction"),
    ],
)
def test_encoder_settings_that_do_not_fit_are_one_line_naming_the_key(sets, key):
    with pytest.raises(AccelsimError) as err:
        model_workload("google-bert/bert-base-uncased", sets)
    assert key in str(err.value) and "\n" not in str(err.value)


def test_relative_position_encoders_are_refused_naming_the_key():
    entry = load_model("google-bert/bert-base-uncased")  # reads; a relative-position variant of its config does not
    raw = json.loads(open(entry.path, encoding="utf-8").read())["config"]
    with pytest.raises(AccelsimError, match="position_embedding_type") as err:
        model_spec_from_config({**raw, "position_embedding_type": "relative_key_query"}, "config.json")
    assert str(err.value).startswith("config.json: position_embedding_type")


def test_a_learned_position_table_bounds_the_sequence():
    # RoBERTa's max_position_embeddings of 514 counts its padding offset of 2: 512 positions, as BERT's 512
    for model in ("FacebookAI/roberta-base", "google-bert/bert-base-uncased"):
        assert load_model(model).require()["max_positions"] == 512
        assert model_workload(model, ["layers=1", "seq_len=512"]).seq_len == 512
        with pytest.raises(AccelsimError, match="holds 512"):
            model_workload(model, ["layers=1", "seq_len=513"])
    assert load_model("gpt2-xl").require()["max_positions"] == 1024  # n_positions; decoders with learned tables too
    assert "max_positions" not in load_model("meta-llama/Llama-2-7b-hf").require()  # rotary: no table
    raw = json.loads(open(load_model("FacebookAI/roberta-base").path, encoding="utf-8").read())["config"]
    with pytest.raises(AccelsimError, match="max_position_embeddings"):
        model_spec_from_config({**raw, "max_position_embeddings": 2}, "config.json")
