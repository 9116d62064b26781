"""Attention variants as tables of per-unit ops, the way they run on a Gaudi-class chip.

A *unit* is a block of query positions (a chunk of causal linear attention, a window block, a tile of query
rows) for ``G`` (batch x head) sequences. Each op says its shape and traffic for one unit, which units have it and
what it depends on: the same op one unit before (-1) or after (+1), in the same unit (0), in every unit ("all"),
or the attention's input ("input"). The lowering either emits one task per unit or merges all units of an op into
one task (coarse granularity). Pure data: nothing here knows of engines or time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

Size = tuple[tuple[int, ...], int, int]  # (task shape, elements read, elements written)


@dataclass(frozen=True)
class UnitOp:
    name: str
    op: str
    size: Callable[[int, int, int], Size]  # (G, unit, units) -> size of that unit's task
    deps: tuple[tuple[str, int | str], ...]
    exists: Callable[[int, int], bool] = lambda i, n: True
    final: bool = False  # its output leaves the attention (feeds the next op)
    engines: tuple[str, ...] | None = None  # default: the op's
    reach: int | str = 0  # a final op's output covers its own unit, this many units before it too, or "all"
    #: (elements read, written) once per head group however many units: operands every unit shares (the keys and
    #: values all query blocks read, a gradient they all accumulate into), kept in SRAM between units.
    shared: Callable[[int, int], tuple[int, int]] = lambda G, n: (0, 0)


def _after_first(i: int, n: int) -> bool:
    return i >= 1


def _before_last(i: int, n: int) -> bool:
    return i <= n - 2


def _once_at_end(i: int, n: int) -> bool:
    return i == n - 1 and n > 1


def softmax_ops(q: int, S: int, D: int, causal: bool, backward: bool) -> list[UnitOp]:
    """Unfused softmax attention for ``q`` query rows against all ``S`` keys: QK^T, scale, mask, softmax, x V."""

    def e(G: int) -> int:  # scores per unit
        return G * q * S

    if not backward:
        ops = [
            UnitOp(
                "qk",
                "bmm",
                lambda G, i, n: ((G, q, D, S), G * q * D, e(G)),
                (("input", "input"),),
                shared=lambda G, n: (G * S * D, 0),
            ),
            UnitOp("scale", "scale", lambda G, i, n: ((e(G),), e(G), e(G)), (("qk", 0),)),
        ]
        last = "scale"
        if causal:
            ops.append(UnitOp("mask", "mask", lambda G, i, n: ((e(G),), e(G), e(G)), (("scale", 0),)))
            last = "mask"
        ops += [
            UnitOp("softmax", "softmax", lambda G, i, n: ((e(G),), e(G), e(G)), ((last, 0),)),
            UnitOp(
                "pv",
                "bmm",
                lambda G, i, n: ((G, q, S, D), G * q * S, G * q * D),
                (("softmax", 0),),
                final=True,
                shared=lambda G, n: (G * S * D, 0),
            ),
        ]
        return ops
    ops = [
        UnitOp(
            "g_dp",
            "bmm",
            lambda G, i, n: ((G, q, D, S), G * q * D, e(G)),
            (("input", "input"),),
            shared=lambda G, n: (G * S * D, 0),
        ),
        UnitOp(
            "g_dv",
            "bmm",
            lambda G, i, n: ((G, S, q, D), G * (S * q + q * D), 0),
            (("input", "input"),),
            final=True,
            reach="all",
            shared=lambda G, n: (0, G * S * D),
        ),
        UnitOp("g_softmax", "softmax_grad", lambda G, i, n: ((e(G),), 2 * e(G), e(G)), (("g_dp", 0),)),
    ]
    last = "g_softmax"
    if causal:
        ops.append(UnitOp("g_mask", "mask", lambda G, i, n: ((e(G),), e(G), e(G)), ((last, 0),)))
        last = "g_mask"
    ops += [
        UnitOp("g_scale", "scale", lambda G, i, n: ((e(G),), e(G), e(G)), ((last, 0),)),
        UnitOp(
            "g_dq",
            "bmm",
            lambda G, i, n: ((G, q, S, D), G * q * S, G * q * D),
            (("g_scale", 0),),
            final=True,
            shared=lambda G, n: (G * S * D, 0),
        ),
        UnitOp(
            "g_dk",
            "bmm",
            lambda G, i, n: ((G, S, q, D), G * (S * q + q * D), 0),
            (("g_scale", 0),),
            final=True,
            reach="all",
            shared=lambda G, n: (0, G * S * D),
        ),
    ]
    return ops


def flash_keys(queries: int, keys: int, causal: bool, capped: bool) -> int:
    """Keys a query attends to on average, rounded up: the last ``queries`` positions of ``keys`` under a causal
    mask see from ``keys - queries + 1`` to ``keys``; a sliding window (``capped``) lets each see ``keys``."""
    if not causal or capped:
        return keys
    return keys - (queries - 1) // 2


def flash_unit_keys(unit: int, units: int, positions: int, keys: int, causal: bool, capped: bool) -> int:
    """Keys a query of block ``unit`` (of ``units`` blocks of ``positions`` queries, the last positions of
    ``keys``) attends to on average: under a causal mask a block early in the sequence sees fewer than the last.
    Each block gets its exact query-key pairs plus its share of what ``flash_keys`` rounds the whole sequence up
    by, rounded to whole keys cumulatively, so the blocks add up to exactly the count of all the queries together
    (tiling changes the tasks, not the work) and each is its exact average or at most one key more."""
    if not causal or capped:
        return keys
    rows = units * positions
    whole = rows * flash_keys(rows, keys, causal, capped)

    def exact(blocks: int) -> int:  # the first ``blocks`` blocks' pairs: r queries ending at key ``end``
        r, end = blocks * positions, keys - (units - blocks) * positions
        return r * end - r * (r - 1) // 2

    def pairs(blocks: int) -> int:  # their exact pairs and their share of the rounding, in whole keys per query
        share = units * exact(blocks) + blocks * (whole - exact(units))
        return positions * -(-share // (units * positions))

    return (pairs(unit + 1) - pairs(unit)) // positions


def flash_ops(positions: int, rep: int, keys: int, D: int, causal: bool, capped: bool) -> list[UnitOp]:
    """Fused attention (FlashAttention, Gaudi's FusedSDPA) for blocks of ``positions`` query positions, ``rep``
    query rows each (the query heads sharing a key/value head), against ``keys`` keys, each block seeing its own
    causal share of them: QK^T, softmax and x V in one kernel whose scores never leave the chip, so it reads the
    queries and the keys and values once and writes the output. Inference only."""
    rows = positions * rep

    def size(G: int, i: int, n: int) -> Size:
        seen = flash_unit_keys(i, n, positions, keys, causal, capped)
        return (G, rows, seen, D), G * rows * D, G * rows * D

    return [
        UnitOp(
            "flash",
            "flash_attn",
            size,
            (("input", "input"),),
            final=True,
            shared=lambda G, n: (2 * G * keys * D, 0),
        )
    ]


def window_ops(w: int, D: int, backward: bool) -> list[UnitOp]:
    """GFormer's local-context attention on the vector cores: each query against its ``w`` most recent keys."""
    if not backward:
        return [
            UnitOp(
                "window",
                "window_attn",
                lambda G, i, n: ((G, w, w, D), 3 * G * w * D, G * w * D),
                (("input", "input"),),
                final=True,
            )
        ]
    return [
        UnitOp(
            "g_window",
            "window_attn_grad",
            lambda G, i, n: ((G, w, w, D), 6 * G * w * D, 2 * G * w * D),
            (("input", "input"),),
            final=True,
            reach=1,
        )
    ]


def linear_ops(c: int, D: int, causal: bool, backward: bool) -> list[UnitOp]:
    """Linear attention with feature map elu(x)+1, in chunks of ``c``: per chunk the k^T v outer-product sum (the
    work GFormer splits between matrix engine and vector cores), a running prefix of those sums as the state,
    the intra-chunk masked products, and the normaliser."""
    dual = ("matrix", "vector")

    def cd(G: int) -> int:  # elements of one of q, k, v per unit
        return G * c * D

    if not backward and causal:
        return [
            UnitOp("phi", "elu1", lambda G, i, n: ((2 * cd(G),), 2 * cd(G), 2 * cd(G)), (("input", "input"),)),
            UnitOp(
                "kv", "outer_acc", lambda G, i, n: ((G, c, D, D), 2 * cd(G), G * D * D), (("phi", 0),), engines=dual
            ),
            UnitOp(
                "state",
                "add",
                lambda G, i, n: ((G * D * D,), 2 * G * D * D, G * D * D),
                (("state", -1), ("kv", -1)),
                exists=_after_first,
            ),
            UnitOp(
                "inter", "bmm", lambda G, i, n: ((G, c, D, D), cd(G) + G * D * D, cd(G)), (("phi", 0), ("state", 0))
            ),
            UnitOp("scores", "bmm", lambda G, i, n: ((G, c, D, c), 2 * cd(G), G * c * c), (("phi", 0),)),
            UnitOp("mask", "mask", lambda G, i, n: ((G * c * c,), G * c * c, G * c * c), (("scores", 0),)),
            UnitOp("intra", "bmm", lambda G, i, n: ((G, c, c, D), G * c * c + cd(G), cd(G)), (("mask", 0),)),
            UnitOp("ksum", "reduce", lambda G, i, n: ((cd(G),), cd(G), G * D), (("phi", 0),)),
            UnitOp(
                "kprefix",
                "add",
                lambda G, i, n: ((G * D,), 2 * G * D, G * D),
                (("kprefix", -1), ("ksum", -1)),
                exists=_after_first,
            ),
            UnitOp(
                "denom",
                "reduce",
                lambda G, i, n: ((G * c * (D + c),), G * c * (D + c) + G * D, G * c),
                (("phi", 0), ("kprefix", 0), ("mask", 0)),
            ),
            UnitOp("numer", "add", lambda G, i, n: ((cd(G),), 2 * cd(G), cd(G)), (("inter", 0), ("intra", 0))),
            UnitOp(
                "out",
                "divide",
                lambda G, i, n: ((cd(G),), cd(G) + G * c, cd(G)),
                (("numer", 0), ("denom", 0)),
                final=True,
            ),
        ]
    if not backward:  # bidirectional (ViT): one global state
        return [
            UnitOp("phi", "elu1", lambda G, i, n: ((2 * cd(G),), 2 * cd(G), 2 * cd(G)), (("input", "input"),)),
            UnitOp(
                "kv", "outer_acc", lambda G, i, n: ((G, c, D, D), 2 * cd(G), G * D * D), (("phi", 0),), engines=dual
            ),
            UnitOp(
                "state",
                "add",
                lambda G, i, n: ((G * D * D * (n - 1),), 2 * G * D * D * (n - 1), G * D * D),
                (("kv", "all"),),
                exists=_once_at_end,
            ),
            UnitOp(
                "inter",
                "bmm",
                lambda G, i, n: ((G, c, D, D), cd(G), cd(G)),
                (("phi", 0), ("state", "all"), ("kv", "all")),
                shared=lambda G, n: (G * D * D, 0),
            ),
            UnitOp("ksum", "reduce", lambda G, i, n: ((cd(G),), cd(G), G * D), (("phi", 0),)),
            UnitOp(
                "ktotal",
                "add",
                lambda G, i, n: ((G * D * (n - 1),), 2 * G * D * (n - 1), G * D),
                (("ksum", "all"),),
                exists=_once_at_end,
            ),
            UnitOp(
                "denom",
                "reduce",
                lambda G, i, n: ((cd(G),), cd(G), G * c),
                (("phi", 0), ("ktotal", "all"), ("ksum", "all")),
                shared=lambda G, n: (G * D, 0),
            ),
            UnitOp(
                "out",
                "divide",
                lambda G, i, n: ((cd(G),), cd(G) + G * c, cd(G)),
                (("inter", 0), ("denom", 0)),
                final=True,
            ),
        ]
    if causal:
        return [
            UnitOp(
                "g_out",
                "divide",
                lambda G, i, n: ((2 * cd(G),), 2 * cd(G) + G * c, cd(G) + G * c),
                (("input", "input"),),
            ),
            UnitOp("g_dq_inter", "bmm", lambda G, i, n: ((G, c, D, D), cd(G) + G * D * D, cd(G)), (("g_out", 0),)),
            UnitOp(
                "g_dstate",
                "outer_acc",
                lambda G, i, n: ((G, c, D, D), 2 * cd(G), G * D * D),
                (("g_out", 0),),
                engines=dual,
            ),
            UnitOp(
                "g_state",
                "add",
                lambda G, i, n: ((G * D * D,), 2 * G * D * D, G * D * D),
                (("g_state", 1), ("g_dstate", 1)),
                exists=_before_last,
            ),
            UnitOp(
                "g_dk_kv",
                "bmm",
                lambda G, i, n: ((G, c, D, D), cd(G) + G * D * D, cd(G)),
                (("g_state", 0),),
                exists=_before_last,
            ),
            UnitOp(
                "g_dv_kv",
                "bmm",
                lambda G, i, n: ((G, c, D, D), cd(G) + G * D * D, cd(G)),
                (("g_state", 0),),
                exists=_before_last,
                final=True,
            ),
            UnitOp("g_dp_intra", "bmm", lambda G, i, n: ((G, c, D, c), 2 * cd(G), G * c * c), (("g_out", 0),)),
            UnitOp(
                "g_dv_intra",
                "bmm",
                lambda G, i, n: ((G, c, c, D), G * c * c + cd(G), cd(G)),
                (("g_out", 0),),
                final=True,
            ),
            UnitOp("g_mask", "mask", lambda G, i, n: ((G * c * c,), G * c * c, G * c * c), (("g_dp_intra", 0),)),
            UnitOp("g_dq_intra", "bmm", lambda G, i, n: ((G, c, c, D), G * c * c + cd(G), cd(G)), (("g_mask", 0),)),
            UnitOp("g_dk_intra", "bmm", lambda G, i, n: ((G, c, c, D), G * c * c + cd(G), cd(G)), (("g_mask", 0),)),
            UnitOp(
                "g_denom",
                "mul",
                lambda G, i, n: ((G * c * (D + c),), G * c * (D + c) + G * c, G * c * (D + c)),
                (("g_out", 0),),
            ),
            UnitOp(
                "g_kprefix",
                "add",
                lambda G, i, n: ((G * D,), 2 * G * D, G * D),
                (("g_kprefix", 1), ("g_denom", 1)),
                exists=_before_last,
            ),
            UnitOp(
                "g_phi",
                "elu1_grad",
                lambda G, i, n: ((2 * cd(G),), 4 * cd(G), 2 * cd(G)),
                (
                    ("g_dq_inter", 0),
                    ("g_dk_kv", 0),
                    ("g_dq_intra", 0),
                    ("g_dk_intra", 0),
                    ("g_denom", 0),
                    ("g_kprefix", 0),
                ),
                final=True,
            ),
        ]
    return [
        UnitOp(
            "g_out", "divide", lambda G, i, n: ((2 * cd(G),), 2 * cd(G) + G * c, cd(G) + G * c), (("input", "input"),)
        ),
        UnitOp(
            "g_dq_inter",
            "bmm",
            lambda G, i, n: ((G, c, D, D), cd(G), cd(G)),
            (("g_out", 0),),
            shared=lambda G, n: (G * D * D, 0),
        ),
        UnitOp(
            "g_dstate", "outer_acc", lambda G, i, n: ((G, c, D, D), 2 * cd(G), G * D * D), (("g_out", 0),), engines=dual
        ),
        UnitOp(
            "g_state",
            "add",
            lambda G, i, n: ((G * D * D * (n - 1),), 2 * G * D * D * (n - 1), G * D * D),
            (("g_dstate", "all"),),
            exists=_once_at_end,
        ),
        UnitOp(
            "g_dk_kv",
            "bmm",
            lambda G, i, n: ((G, c, D, D), cd(G), cd(G)),
            (("g_state", "all"), ("g_dstate", "all")),
            shared=lambda G, n: (G * D * D, 0),
        ),
        UnitOp(
            "g_dv_kv",
            "bmm",
            lambda G, i, n: ((G, c, D, D), cd(G), cd(G)),
            (("g_state", "all"), ("g_dstate", "all")),
            final=True,
            shared=lambda G, n: (G * D * D, 0),
        ),
        UnitOp("g_denom", "mul", lambda G, i, n: ((cd(G),), cd(G) + G * c, cd(G)), (("g_out", 0),)),
        UnitOp(
            "g_ktotal",
            "add",
            lambda G, i, n: ((G * D * (n - 1),), 2 * G * D * (n - 1), G * D),
            (("g_denom", "all"),),
            exists=_once_at_end,
        ),
        UnitOp(
            "g_phi",
            "elu1_grad",
            lambda G, i, n: ((2 * cd(G),), 4 * cd(G), 2 * cd(G)),
            (("g_dq_inter", 0), ("g_dk_kv", 0), ("g_ktotal", "all"), ("g_denom", "all")),
            final=True,
        ),
    ]
