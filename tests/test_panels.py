"""A GEMM's HBM traffic under a finite SRAM (accelsim.panels): operands that fit move once; panels that outgrow the
SRAM are re-read as the blocking formula says; more SRAM never moves more; the re-reads reach the simulation as a
matrix task's HBM bytes; and the very large Gaudi 2 squares keep the error the model cannot yet explain."""

import json
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import accelsim
from accelsim.chip import load_chip
from accelsim.costs import panel_rereads, stream_bytes
from accelsim.graph import Task, TaskGraph
from accelsim.kernel_records import GemmKernelRecord, predict_kernel
from accelsim.panels import PARTIAL_BYTES, gemm_hbm_bytes, rereads

from conftest import tiny_chip_dict

KERNELS = Path(__file__).parent / "data" / "gaudi_kernels.jsonl"


@pytest.fixture(autouse=True)
def computed_afresh():
    """Each test computes its figures rather than reading those another test left in gemm_hbm_bytes's cache (a
    mutant's process inherits that cache from the unmutated run, and would otherwise hide behind it)."""
    gemm_hbm_bytes.cache_clear()


def test_a_gemm_whose_operands_fit_moves_a_b_and_c_once():
    M, K, N = 512, 256, 384
    once = 2 * (M * K + K * N + M * N)
    assert gemm_hbm_bytes(M, K, N, 2, 2, once) == once
    assert gemm_hbm_bytes(M, K, N, 2, 2, 10**9) == once
    assert rereads(((3, M, K, N),), 2, 2, 10**9) == 0


def test_panels_that_outgrow_the_sram_are_re_read_as_the_formula_says():
    """Room for 512 rows of K: 256 x 256 output blocks, each A row read N/256 times and each B column M/256 times
    (cutting K instead would add 8 bytes of partial sums per output and chunk: more, so it is not chosen)."""
    M = N = 1024
    K, e = 64, 2
    sram = 512 * K * e
    expected = e * (M * K * math.ceil(N / 256) + K * N * math.ceil(M / 256)) + e * M * N
    assert gemm_hbm_bytes(M, K, N, e, e, sram) == expected
    assert rereads(((2, M, K, N),), e, e, sram) == 2 * (expected - e * (M * K + K * N + M * N))


def test_a_long_k_is_cut_when_its_partial_sums_cost_less_than_thin_blocks():
    """K = 65,536 in bf16 with 1 MB: whole-K panels leave 7 rows (blocks of 3 x 4); four chunks of K leave 30
    (15 x 15) and pay three rounds of fp32 partial sums, fewer bytes in all; the cheapest blocking is taken."""
    M = N = 256
    K, e, sram = 65536, 2, 10**6
    whole_k = e * (M * K * math.ceil(N / 4) + K * N * math.ceil(M / 3)) + e * M * N
    four = e * (M * K * math.ceil(N / 15) + K * N * math.ceil(M / 15)) + e * M * N + 3 * M * N * 2 * PARTIAL_BYTES
    assert four < whole_k
    assert gemm_hbm_bytes(M, K, N, e, e, sram) <= four


def test_a_long_k_is_cut_into_the_fewest_chunks_whose_panels_fit_whole():
    """K = 65,536 in bf16 with 1 MiB: 64 chunks of 1,024 leave 1 MiB / 2 KiB = 512 rows, room for the A and B
    panels whole (M + N = 512), so every operand moves once and 63 rounds of fp32 partial sums are added
    (100,270,080 bytes); 32 chunks would re-read panels (150,601,728), 128 add more partial sums (133,824,512)."""
    M = N = 256
    K, e = 65536, 2
    expected = e * (M * K + K * N + M * N) + 63 * M * N * 2 * PARTIAL_BYTES
    assert expected == 100_270_080
    assert gemm_hbm_bytes(M, K, N, e, e, 1 << 20) == expected


def test_a_short_wide_gemm_takes_blocks_as_tall_as_m_and_reads_b_once():
    """M = 80, N = 4,096 with room for 128 rows of K: blocks of 80 x 48 read each B column once and each A row
    ceil(4096 / 48) = 86 times (1,404,928 operand bytes; square 64 x 64 blocks would read B twice: 1,703,936). The
    tall, narrow GEMM mirrors it with blocks as wide as N, and a part row of SRAM stages nothing."""
    M, K, N, e = 80, 64, 4096, 2
    sram = 128 * K * e
    expected = e * (M * K * 86 + K * N) + e * M * N
    assert gemm_hbm_bytes(M, K, N, e, e, sram) == expected
    assert gemm_hbm_bytes(N, K, M, e, e, sram) == expected
    assert gemm_hbm_bytes(M, K, N, e, e, sram + K * e - 1) == expected


def test_the_smallest_srams_stage_blocks_of_one_or_two_outputs():
    """M = 5, K = 8, N = 4, one byte per value. Room for three rows of K (24 bytes): 1 x 2 blocks, each A row read
    twice and each B column five times, 80 + 160 + 20 = 260 bytes. Less than two rows (2 bytes) still stages two,
    the model's floor: one output per block, every operand value read once per output, 160 + 160 + 20 = 340."""
    M, K, N = 5, 8, 4
    assert gemm_hbm_bytes(M, K, N, 1, 1, 3 * K) == M * K * 2 + K * N * 5 + M * N == 260
    assert gemm_hbm_bytes(M, K, N, 1, 1, 2) == M * K * N + K * N * M + M * N == 340


dims = st.integers(min_value=1, max_value=5000)


@given(M=dims, K=dims, N=dims, e=st.sampled_from([1, 2, 4]), small=st.integers(2, 10**7), more=st.integers(0, 10**7))
def test_more_sram_never_moves_more_bytes_and_never_less_than_once(M, K, N, e, small, more):
    once = e * (M * K + K * N + M * N)
    tight = gemm_hbm_bytes(M, K, N, e, e, small)
    roomy = gemm_hbm_bytes(M, K, N, e, e, small + more)
    assert once <= roomy <= tight


def _chip(sram_mb: float) -> accelsim.Chip:
    d = tiny_chip_dict(memory={"hbm_gb": 1, "hbm_bandwidth_gbps": 1, "sram_mb": sram_mb})  # 1 B per cycle
    return accelsim.chip_from_dict(d, "tiny.toml")


def _gemm(M: int, K: int, N: int) -> TaskGraph:
    e = 2
    task = Task(
        name="g",
        op="gemm",
        shape=(M, K, N),
        dtype="bf16",
        flops=2 * M * K * N,
        bytes_read=e * (M * K + K * N),
        bytes_written=e * M * N,
        engines=("matrix",),
    )
    return TaskGraph([task], name="one-gemm")


def test_a_matrix_task_streams_its_re_reads_and_the_run_reports_them():
    """The same GEMM on a chip whose SRAM holds its operands and on one whose SRAM does not: the second streams
    the formula's extra bytes through HBM, is memory-bound where the first is not, and reports the bytes."""
    graph = _gemm(256, 512, 256)
    task = graph.tasks[0]
    roomy, tight = _chip(1.0), _chip(0.032)  # 1 MB holds A, B and C (768 KB); 32 KB holds 32 rows of K
    assert panel_rereads(task, roomy) == 0
    extra = panel_rereads(task, tight)
    assert extra == gemm_hbm_bytes(256, 512, 256, 2, 2, 32_000) - task.bytes > 0
    assert stream_bytes(task, tight) == task.bytes + extra
    fast, slow = (accelsim.run(c, graph, "first-free") for c in (roomy, tight))
    assert int(fast.hbm_bytes.sum()) == task.bytes and int(slow.hbm_bytes.sum()) == task.bytes + extra
    # 2,097,152 cycles of MACs hide A, B and C (655,360 bytes at 1 B per cycle), not the re-reads as well
    assert slow.latency_cycles >= task.bytes + extra > fast.latency_cycles >= 256 * 512 * 256 // 16


def test_an_element_wise_op_has_no_panels():
    task = Task(name="a", op="add", shape=(1 << 20,), dtype="bf16", bytes_read=4 << 20, bytes_written=2 << 20)
    assert panel_rereads(task, _chip(1e-6)) == 0


#: The very large squares' errors (predicted rate / measured - 1) as measured with the panel model in place: the
#: Gaudi 2 compiler's best blocking in its 24 MB keeps them compute-bound, so the loss stays unexplained (README,
#: "Still not modelled"). A change that explains it must move these bounds.
LARGE_SQUARES = {(16384, "bf16"): 0.096, (32768, "bf16"): 0.144, (32768, "fp8"): 0.114}


@pytest.mark.parametrize("size, dtype", list(LARGE_SQUARES))
def test_the_very_large_gaudi2_squares_keep_their_measured_error(size, dtype):
    chip = load_chip("gaudi2")
    for line, text in enumerate(KERNELS.read_text().splitlines(), 1):
        record = json.loads(text)
        p = record.get("params", {})
        if record["kind"] != "gemm" or p.get("M") != size or p.get("K") != size or p.get("N") != size:
            continue
        rec = GemmKernelRecord(**record)
        if rec.dtype != dtype or p.get("scaling_granularity") == "rowwise":
            continue
        predicted = predict_kernel(chip, rec, record, str(KERNELS), line)
        assert predicted.rel_error == pytest.approx(LARGE_SQUARES[size, dtype], abs=0.002)
        return
    pytest.fail(f"no {size}^3 {dtype} record in {KERNELS}")
