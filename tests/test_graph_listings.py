"""The task graphs small workloads lower to, task by task, against listings kept in tests/data/graphs/.

The other lowering tests check what a graph adds up to (FLOPs, bytes, counts against closed forms); these pin its
structure: every task's name, op, shape, dtype, work, traffic, engines, group, sequences and dependencies, which
traces, reports and the compiler read. Each case covers a part of the lowering the others do not (an encoder's
post-norm layers and MLM head, a classifier head, experts with and without shared ones, tensor and data
parallelism with ZeRO and recomputation, per-tile attention). A change that means to alter a graph rewrites the
listings (``python tests/test_graph_listings.py``) and the diff shows what moved.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from accelsim.catalog import model_workload
from accelsim.graph import TaskGraph
from accelsim.lowering import lower
from accelsim.workload import Workload, load_workload

LISTINGS = Path(__file__).parent / "data" / "graphs"

SMALL_ENCODER = ["layers=1", "batch=2", "seq_len=8", "d_model=64", "heads=2", "d_ff=128", "vocab=100"]
#: One training layer of GFormer's hybrid attention, two heads: one windowed, one linear (two units of each).
SMALL_GFORMER = [
    *["layers=1", "batch=2", "seq_len=128", "window=64", "chunk=64", "mode=training"],
    *["d_model=128", "heads=2", "linear_heads=1"],
]

#: name -> (a shipped preset or a catalog model, its settings)
CASES: dict[str, tuple[str, list[str]]] = {
    "bert-mlm-training": ("google-bert/bert-base-uncased", [*SMALL_ENCODER, "mode=training"]),
    "bert-mlm-masked-tensor-parallel-inference": (
        "google-bert/bert-base-uncased",
        [*SMALL_ENCODER, "logits=masked", "tensor_parallel=2"],
    ),
    "bert-mlm-masked-tile-training": (
        "google-bert/bert-base-uncased",
        [*SMALL_ENCODER, "mode=training", "logits=masked", "granularity=tile", "tile_m=8", "tile_n=64"],
    ),
    "bert-mlm-fp8-tensor-parallel-training": (
        "google-bert/bert-base-uncased",
        [*SMALL_ENCODER, "mode=training", "logits=masked", "matmul_dtype=fp8", "tensor_parallel=2"],
    ),
    "bert-mlm-inference": ("google-bert/bert-base-uncased", [*SMALL_ENCODER, "logits=masked"]),
    "vit-training": ("vit-b16", ["layers=1", "batch=2", "mode=training"]),
    "qwen-moe-shared-experts": ("Qwen/Qwen1.5-MoE-A2.7B", ["layers=1", "batch=2", "seq_len=8"]),
    "mixtral-experts-tensor-parallel": (
        "mistralai/Mixtral-8x7B-v0.1",
        ["layers=1", "batch=2", "seq_len=8", "tensor_parallel=2"],
    ),
    "gpt2-tp2-zero3-selective-recompute": (
        "gpt2-small",
        [
            "layers=1",
            "batch=2",
            "seq_len=8",
            "mode=training",
            "tensor_parallel=2",
            "data_parallel=2",
            "zero=3",
            "recompute=selective",
        ],
    ),
    "gpt2-sequence-parallel-zero1-full-recompute": (
        "gpt2-small",
        [
            "layers=1",
            "batch=2",
            "seq_len=8",
            "mode=training",
            "tensor_parallel=2",
            "sequence_parallel=true",
            "data_parallel=2",
            "zero=1",
            "recompute=full",
        ],
    ),
    "gpt2-post-norm-rotary-gqa-sequence-parallel-training": (
        "gpt2-small",
        [
            "layers=1",
            "batch=2",
            "seq_len=8",
            "mode=training",
            "norm_position=post",
            "positions=rotary",
            "kv_heads=4",
            "tensor_parallel=2",
            "sequence_parallel=true",
            "recompute=selective",
        ],
    ),
    "mixtral-fp8": ("mistralai/Mixtral-8x7B-v0.1", ["layers=1", "batch=2", "seq_len=8", "matmul_dtype=fp8"]),
    "gpt2-decode-last-logits": ("gpt2-small", ["layers=1", "batch=2", "seq_len=1", "past_tokens=7", "logits=last"]),
    "gpt2-prefill-last-logits-tensor-parallel": (
        "gpt2-small",
        ["layers=1", "batch=2", "seq_len=4", "logits=last", "tensor_parallel=2"],
    ),
    "gformer-head-training": ("gformer-gpt", [*SMALL_GFORMER, "granularity=head"]),
    "gformer-tile-training": (
        "gformer-gpt",
        [*SMALL_GFORMER, "granularity=tile", "vocab=256", "tile_m=64", "tile_n=128", "batch_split=2"],
    ),
    "llama-gqa-flash-tile": (
        "llama-7b-like",
        [
            "layers=1",
            "batch=1",
            "seq_len=256",
            "kv_heads=8",
            "variant=flash",
            "granularity=tile",
            "tile_m=128",
            "tile_n=8192",
        ],
    ),
}


def workload(case: str) -> Workload:
    source, sets = CASES[case]
    return model_workload(source, sets) if "/" in source else load_workload(source, sets)


def listing(graph: TaskGraph) -> list[str]:
    """One line per task, in the graph's order: every field the lowering sets."""
    lines = []
    for t in graph.tasks:
        fields = [
            t.name,
            t.op,
            str(t.shape),
            t.dtype,
            f"flops={t.flops}",
            f"read={t.bytes_read}",
            f"written={t.bytes_written}",
            "on=" + "|".join(t.engines),
            f"group={t.group}",
            f"sequences={t.sequences}",
        ]
        lines.append(" ".join(fields) + (" <- " + " ".join(t.deps) if t.deps else ""))
    return lines


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_small_workload_lowers_to_its_listed_graph(case):
    expected = (LISTINGS / f"{case}.txt").read_text().splitlines()
    assert listing(lower(workload(case))) == expected


def test_every_listing_is_a_case():
    assert sorted(p.stem for p in LISTINGS.glob("*.txt")) == sorted(CASES)


if __name__ == "__main__":  # rewrite the listings from the current lowering
    LISTINGS.mkdir(parents=True, exist_ok=True)
    for name in CASES:
        graph = lower(workload(name))
        (LISTINGS / f"{name}.txt").write_text("\n".join(listing(graph)) + "\n")
        print(f"{name}: {len(graph)} tasks", file=sys.stderr)
