"""A GEMM's HBM traffic under a finite SRAM: the memory model's part of a matrix op (SCALE-Sim's split of compute,
memory and orchestration; /work/shared/reference/method.md). Pure functions of the shape, the dtype's bytes and
the SRAM the GEMM may stage its operands in.

An output-stationary engine finishes an Mb x Nb block of outputs over the whole common dimension before writing it:
the A panel (Mb x K) and the B panel (K x Nb) it reads are staged in SRAM, so each A row is read from HBM once per
block column and each B column once per block row:

    bytes = e * (M*K*ceil(N/Nb) + K*N*ceil(M/Mb)) + M*N*e      (Mb + Nb rows of K fit the SRAM share)

Where the panels of the whole K leave only thin blocks, the compiler may instead cut K into ``c`` chunks of Kb and
add each chunk's fp32 partial sums into the output (written and read back once per chunk after the first):
``+ (c - 1) * M*N * 2 * PARTIAL_BYTES``. The blocking chosen is the one that moves the fewest bytes. When A, B and
C fit together, every operand moves once (the formula's floor, ``e * (M*K + K*N + M*N)``).
"""

from __future__ import annotations

from functools import lru_cache

#: Bytes of one partial sum a K-chunked block adds into its output: fp32 accumulators.
PARTIAL_BYTES = 4


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _blocked(M: int, K: int, N: int, e: int, rows: int) -> int:
    """Operand bytes (A and B, re-reads included) of output blocks whose panels hold ``rows`` rows of K in all:
    the fewest of a square-ish block, a block as tall as M (B once) and one as wide as N (A once)."""
    if M + N <= rows:
        return e * (M * K + K * N)
    mb = min(M, max(1, rows // 2))
    options = [(mb, min(N, max(1, rows - mb)))]
    if rows > M:
        options.append((M, min(N, rows - M)))
    if rows > N:
        options.append((min(M, rows - N), N))
    return min(e * (M * K * _ceil_div(N, nb) + K * N * _ceil_div(M, mb)) for mb, nb in options)


def _fewest_bytes(M: int, K: int, N: int, in_bytes: int, out_bytes: int, sram: int) -> int:
    """HBM bytes of one (M x K) @ (K x N) GEMM whose operand panels share ``sram`` bytes of SRAM, under the
    blocking (block shape, K chunks) that moves the fewest; never less than every operand once."""
    once = in_bytes * (M * K + K * N) + out_bytes * M * N
    best: int | None = None
    chunks = 1
    while True:
        kb = _ceil_div(K, chunks)
        rows = max(2, sram // (kb * in_bytes))
        moved = _blocked(M, K, N, in_bytes, rows) + out_bytes * M * N
        moved += (chunks - 1) * M * N * 2 * PARTIAL_BYTES
        best = moved if best is None else min(best, moved)
        if best == once or kb == 1:
            return best
        chunks *= 2


#: ``_fewest_bytes``, remembered per shape (a graph repeats a layer's GEMMs); wrapped here rather than decorated so
#: that mutation testing, which leaves decorated functions alone, mutates its body too.
gemm_hbm_bytes = lru_cache(maxsize=4096)(_fewest_bytes)


def rereads(gemms: tuple[tuple[int, int, int, int], ...], in_bytes: int, out_bytes: int, sram: int) -> int:
    """HBM bytes batched GEMMs ``(batch, M, K, N)`` move beyond each operand once: their re-read panels (and
    partial sums) when the panels outgrow ``sram``."""
    return sum(
        b * (gemm_hbm_bytes(m, k, n, in_bytes, out_bytes, sram) - in_bytes * (m * k + k * n) - out_bytes * m * n)
        for b, m, k, n in gemms
    )
