"""GEMM cycles on a systolic array, exactly as SCALE-Sim 3.0.0 counts them (compute only, no memory stalls).

SCALE-Sim maps a GEMM (M x K) @ (K x N) onto an R x C array by dataflow; the operand dimensions that sit on the
array are folded over it, and each fold streams the third dimension ``T`` through:

====  ======  ======  ====
flow  S_R     S_C     T
====  ======  ======  ====
os    M       N       K
ws    K       N       M
is    K       M       N
====  ======  ======  ====

``folds = ceil(S_R / R) * ceil(S_C / C)``; total cycles are ``(R + C + T - 2) * folds - 1`` for os and
``(2R + C + T - 2) * folds - 1`` for ws and is (weights or inputs are preloaded, costing R more cycles per fold).
SCALE-Sim derives this by building cycle-accurate operand traces; the closed form gives the same integer.
"""

from __future__ import annotations

from collections.abc import Sequence

from .errors import AccelsimError

DATAFLOWS = ("os", "ws", "is")


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def systolic_cycles(M: int, K: int, N: int, rows: int, cols: int, dataflow: str) -> int:
    """Compute cycles of one (M x K) @ (K x N) GEMM on a rows x cols array, equal to SCALE-Sim 3.0.0's."""
    for label, value in (("M", M), ("K", K), ("N", N), ("rows", rows), ("cols", cols)):
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise AccelsimError(f"must be a positive integer (got {value!r})", key=label)
    if dataflow == "os":
        s_r, s_c, t, fill = M, N, K, rows + cols
    elif dataflow == "ws":
        s_r, s_c, t, fill = K, N, M, 2 * rows + cols
    elif dataflow == "is":
        s_r, s_c, t, fill = K, M, N, 2 * rows + cols
    else:
        raise AccelsimError(f"unknown dataflow {dataflow!r}; allowed: {', '.join(DATAFLOWS)}", key="dataflow")
    folds = _ceil_div(s_r, rows) * _ceil_div(s_c, cols)
    return (fill + t - 2) * folds - 1


def _folds(M: int, K: int, N: int, rows: int, cols: int, dataflow: str) -> tuple[int, int, int]:
    """(folds, stream length T, preload cycles per fold) of a GEMM in SCALE-Sim's mapping: ws and is preload an
    operand into the array's rows before each fold streams, os accumulates in place."""
    if dataflow == "os":
        return _ceil_div(M, rows) * _ceil_div(N, cols), K, 0
    if dataflow == "ws":
        return _ceil_div(K, rows) * _ceil_div(N, cols), M, rows
    if dataflow == "is":
        return _ceil_div(K, rows) * _ceil_div(M, cols), N, rows
    raise AccelsimError(f"unknown dataflow {dataflow!r}; allowed: {', '.join(DATAFLOWS)}", key="dataflow")


def pipelined_cycles(gemms: Sequence[tuple[int, int, int, int]], rows: int, cols: int, dataflow: str) -> int:
    """Cycles of batched GEMMs ``(batch, M, K, N)`` on an array whose folds overlap: the next fold streams in while
    the last drains (double-buffered accumulators; for ws and is, the next operand preloads during the current
    stream), whether it belongs to the same task or to the next one on the array. Each fold costs its stream T, or
    its preload if longer; fill and drain hide behind the neighbouring folds (a lone GEMM is R + C cycles short).
    SCALE-Sim instead pays fill and drain on every fold, which dominates small products (a decode step's
    attention: thousands of 1 x 128 by 128 x S products)."""
    total = 0
    for b, m, k, n in gemms:
        folds, t, preload = _folds(m, k, n, rows, cols, dataflow)
        total += b * folds * max(t, preload)
    return total


def split_gemm_cycles(M: int, K: int, N: int, rows: int, cols: int, dataflow: str, engines: int) -> int:
    """Cycles when a GEMM is split column-wise (along N) over ``engines`` identical arrays running in parallel.

    The slowest engine's share decides: N is cut into near-equal parts of ``ceil(N / engines)`` columns.
    """
    if engines <= 0:
        raise AccelsimError(f"must be a positive integer (got {engines!r})", key="engines")
    part = _ceil_div(N, engines)
    return systolic_cycles(M, K, part, rows, cols, dataflow)
