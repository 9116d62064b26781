"""Parallel layouts: how a model is split over cards. Tensor parallelism (Megatron's column and row splits) cuts
every layer's heads, MLP width, experts' widths and the vocabulary over ``tp`` cards; each card then runs the shard,
and all-reduces the attention's and the MLP's outputs (accelsim.lowering). Pipeline and data parallelism are the
multi-card issue's next step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .errors import AccelsimError
from .limits import MAX_CARDS, MAX_WORKLOAD_SIZE


@dataclass(frozen=True)
class Layout:
    """Cards per model replica in tensor (tp) and pipeline (pp) parallelism, and replicas (dp)."""

    tp: int = 1
    pp: int = 1
    dp: int = 1

    @property
    def cards(self) -> int:
        return self.tp * self.pp * self.dp

    @staticmethod
    def of_items(items: Sequence[str], source: str = "--parallel") -> Layout:
        """The layout of ``tp=8``, ``dp=2`` items (--parallel's comma list, accelsim.options.parallel_layout): each
        key at most once, each degree plain ASCII digits (not ``+8``, ``1_000`` or ``٣``, which int() would take), and
        the cards, tp x pp x dp, at most accelsim.limits.MAX_CARDS (the largest network simulated), checked here,
        before any work, naming the option."""
        values = {"tp": 1, "pp": 1, "dp": 1}
        given: set[str] = set()
        for item in (p.strip() for p in items):
            key, _, raw = item.partition("=")
            key, raw = key.strip(), raw.strip()
            if key not in values:
                raise AccelsimError(f"unknown key {key!r}; allowed: tp, pp, dp (e.g. tp=8,pp=1,dp=2)", source=source)
            if key in given:
                raise AccelsimError(f"{key} is given twice; give each of tp, pp and dp at most once", source=source)
            given.add(key)
            value = whole_number(raw)
            if value is None:
                raise AccelsimError(f"{key} must be a whole number, got {raw!r}", source=source)
            if not 1 <= value <= MAX_WORKLOAD_SIZE:
                raise AccelsimError(f"{key} must be from 1 to {MAX_WORKLOAD_SIZE:,}, got {value}", source=source)
            values[key] = value
        layout = Layout(**values)
        if layout.cards > MAX_CARDS:
            raise AccelsimError(
                f"tp x pp x dp is {layout.cards:,} cards; at most {MAX_CARDS:,} are simulated (the largest network)",
                source=source,
            )
        return layout


def whole_number(text: str) -> int | None:
    """``text`` as a whole number when it is plain ASCII digits (int() also takes ``+8``, ``1_000`` and other
    scripts' digits, ``٣``, which no option means), else None."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 40 else None


def shard_model(spec: dict[str, Any], tp: int, source: str) -> dict[str, Any]:
    """One card's share of a model (ModelSpec fields) under tensor parallelism over ``tp`` cards: heads, the MLP's
    and each expert's hidden width and the vocabulary divided by tp; key/value heads divided too, or, where there
    are fewer than tp, each card keeping one (replicated, as Megatron and DeepSpeed do). A split that does not
    divide is one AccelsimError naming the key."""
    if tp == 1:
        return dict(spec)

    def fail(key: str, why: str) -> AccelsimError:
        return AccelsimError(f"tensor parallelism over {tp} cards: {why}", source=source, key=key)

    heads = spec["heads"]
    kv = spec.get("kv_heads", heads)
    if heads % tp:
        raise fail("heads", f"{heads} attention heads do not divide into {tp} equal shares")
    if kv % tp and tp % kv:
        raise fail("kv_heads", f"{kv} key/value heads neither divide into {tp} shares nor divide {tp}")
    out = dict(spec)
    out["d_head"] = spec.get("d_head", spec["d_model"] // heads)
    out["heads"] = heads // tp
    out["kv_heads"] = max(1, kv // tp)
    for key in ("d_ff", "d_ff_expert", "d_ff_shared"):
        if spec.get(key):
            if spec[key] % tp:
                raise fail(key, f"the MLP width {spec[key]} does not divide into {tp} equal shares")
            out[key] = spec[key] // tp
    if spec.get("vocab"):
        out["vocab"] = -(-spec["vocab"] // tp)  # padded to a multiple of tp, as Megatron pads it
    return out
