"""Reading TOML files into validated dataclasses, with one-line errors that name file, key and what is allowed.

Validation itself is pydantic's (strict mode, unknown keys forbidden); this module only turns its errors into
messages a user can act on.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
import types
import typing
from pathlib import Path
from typing import Annotated, Any, TypeVar

import pydantic
from pydantic import ConfigDict, Field, Strict, Tag, TypeAdapter
from pydantic_core import ErrorDetails

from .errors import AccelsimError
from .limits import (
    MAX_BANDWIDTH_GBPS,
    MAX_BYTES_PER_CYCLE,
    MAX_CAPACITY,
    MAX_CLOCK_GHZ,
    MAX_COUNT,
    MAX_CYCLES,
    MAX_ENGINES,
    MAX_FILE_BYTES,
    MAX_GEOMETRY,
    MAX_INSTRUCTIONS_PER_ELEMENT,
    MAX_MLP_RATIO,
    MAX_NESTING,
    MAX_WORKLOAD_SIZE,
    MIN_BANDWIDTH_GBPS,
    MIN_CLOCK_GHZ,
    MIN_EFFICIENCY,
)

T = TypeVar("T")

#: The pydantic settings every file-backed dataclass uses: no unknown keys, immutable. Numbers use the strict
#: types below, so "3" or true is never taken for a number (an int is accepted where a float is expected).
STRICT = ConfigDict(extra="forbid", frozen=True)
#: Every number is finite and bounded (accelsim.limits says why each bound is what it is); the generic types are
#: bounded by MAX_COUNT (2^62), so that counts stay inside 64-bit integers. An error names the range allowed.
PosInt = Annotated[int, Strict(), Field(ge=1, le=MAX_COUNT)]
NonNegInt = Annotated[int, Strict(), Field(ge=0, le=MAX_COUNT)]
PosFloat = Annotated[float, Strict(), Field(gt=0, le=MAX_COUNT, allow_inf_nan=False)]
NonNegFloat = Annotated[float, Strict(), Field(ge=0, le=MAX_COUNT, allow_inf_nan=False)]
StrictBool = Annotated[bool, Strict()]
#: Engines in a group.
GroupSize = Annotated[int, Strict(), Field(ge=1, le=MAX_ENGINES)]
#: Array rows and columns, SIMD lanes, SMs, tiles, MACs or instructions per cycle.
Geometry = Annotated[int, Strict(), Field(ge=1, le=MAX_GEOMETRY)]
#: Fixed costs in cycles.
Cycles = Annotated[int, Strict(), Field(ge=0, le=MAX_CYCLES)]
ClockGhz = Annotated[float, Strict(), Field(ge=MIN_CLOCK_GHZ, le=MAX_CLOCK_GHZ, allow_inf_nan=False)]
BandwidthGbps = Annotated[float, Strict(), Field(ge=MIN_BANDWIDTH_GBPS, le=MAX_BANDWIDTH_GBPS, allow_inf_nan=False)]
BytesPerCycle = Annotated[float, Strict(), Field(gt=0, le=MAX_BYTES_PER_CYCLE, allow_inf_nan=False)]
Capacity = Annotated[float, Strict(), Field(gt=0, le=MAX_CAPACITY, allow_inf_nan=False)]
Efficiency = Annotated[float, Strict(), Field(ge=MIN_EFFICIENCY, le=1, allow_inf_nan=False)]
Fraction = Annotated[float, Strict(), Field(gt=0, le=1, allow_inf_nan=False)]
InstructionsPerElement = Annotated[float, Strict(), Field(gt=0, le=MAX_INSTRUCTIONS_PER_ELEMENT, allow_inf_nan=False)]
#: A workload's sizes (layers, widths, heads, sequence length, batch, tiles).
WorkloadSize = Annotated[int, Strict(), Field(ge=1, le=MAX_WORKLOAD_SIZE)]
#: Microseconds of host time per generation step: 0 up to one second.
StepOverheadUs = Annotated[float, Field(ge=0, le=1e6, allow_inf_nan=False)]
MlpRatio = Annotated[float, Strict(), Field(gt=0, le=MAX_MLP_RATIO, allow_inf_nan=False)]


def check_nesting(text: str, source: str) -> None:
    """Refuse TOML text (a file's, or a value given on the command line) nested deeper than MAX_NESTING."""
    _check_nesting(text, source)


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file; a missing, empty, unreadable, oversized, too deeply nested or malformed file is an
    AccelsimError naming the file. Only regular files are read (never a FIFO, a device or a directory), and at
    most MAX_FILE_BYTES of them; a UTF-8 byte order mark is skipped."""
    text = _read_text(path)
    if not text.strip():
        raise AccelsimError("file is empty, expected TOML", source=str(path))
    _check_nesting(text, str(path))
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise AccelsimError(f"not valid TOML ({exc})", source=str(path)) from None
    except RecursionError:  # the nesting check keeps this out of reach; kept as a last line of defence
        raise AccelsimError(f"nested too deeply (at most {MAX_NESTING} levels)", source=str(path)) from None


def _read_text(path: Path) -> str:
    return read_input(path, "a TOML file").decode("utf-8", errors="replace").removeprefix("\ufeff")


def read_input(path: str | Path, expected: str, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of an input file (``expected`` says what it should be, for the messages): the one reader of every
    file accelsim takes, so each refuses alike, in one line naming the file, what is missing, a directory, not a
    regular file (a FIFO, which would block for ever, or a device such as /dev/zero, which never ends) and what is
    larger than ``limit`` bytes (read no further than that, so a file that grows is still cut short)."""
    source = str(path)
    if not source:
        raise AccelsimError(f"an empty path; expected {expected}", source="''")
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise AccelsimError("file not found", source=source) from None
    except PermissionError:
        raise AccelsimError("cannot read it: permission denied", source=source) from None
    except (OSError, ValueError) as exc:
        raise AccelsimError(f"cannot read it ({_reason(exc)})", source=source) from None
    if stat.S_ISDIR(st.st_mode):
        raise AccelsimError(f"is a directory, expected {expected}", source=source)
    if not stat.S_ISREG(st.st_mode):
        raise AccelsimError(f"is not a regular file (a FIFO, a device or a socket), expected {expected}", source=source)
    most = "an input file" if limit == MAX_FILE_BYTES else expected
    too_big = f"is larger than {limit:,} bytes, the most {most} may be"
    if st.st_size > limit:
        raise AccelsimError(too_big, source=source)
    try:
        with open(path, "rb") as f:
            raw = f.read(limit + 1)  # a file that grows (or lies about its size) is still cut short
    except PermissionError:
        raise AccelsimError("cannot read it: permission denied", source=source) from None
    except OSError as exc:
        raise AccelsimError(f"cannot read it ({_reason(exc)})", source=source) from None
    if len(raw) > limit:
        raise AccelsimError(too_big, source=source)
    return raw


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or type(exc).__name__


#: Strings and comments, whose brackets and dots do not nest anything (multi-line forms first). Each form, once
#: opened, matches up to its end or, unterminated, to the end of its line (of the text, for multi-line forms),
#: without backtracking: the scan stays linear in the text whatever its quotes (the parser says what is amiss).
_NOT_CODE = re.compile(
    r'"""(?:[^"\\]++|\\.|"(?!""))*+(?:"""|\Z)'  # multi-line basic string
    r"|'''.*?(?:'''|\Z)"  # multi-line literal string
    r'|"(?:[^"\\\n]++|\\.)*+"?'  # basic string
    r"|'[^'\n]*+'?"  # literal string
    r"|#[^\n]*+",  # comment
    re.DOTALL,
)
#: A key of more than MAX_NESTING dotted parts (bare words, or strings already replaced by "").
_KEY_PART = r'(?:[A-Za-z0-9_-]++|"")'
_DEEP_KEY = re.compile(rf"(?<![A-Za-z0-9_-]){_KEY_PART}(?:[ \t]*+\.[ \t]*+{_KEY_PART}){{{MAX_NESTING},}}")
_BRACKETS = re.compile(r"[\[\]{}]")


def _check_nesting(text: str, source: str) -> None:
    """Refuse text nested deeper than MAX_NESTING, cheaply and before parsing: arrays and inline tables opened
    inside each other, or a dotted key of more parts (TOML's parser recurses on the first and takes memory growing
    with the square of the depth on the second)."""
    code = _NOT_CODE.sub(lambda m: '""' if m.group()[0] in "\"'" else "", text)
    depth = deepest = 0
    for m in _BRACKETS.finditer(code):
        depth += 1 if m.group() in "[{" else -1
        deepest = max(deepest, depth)
        if deepest > MAX_NESTING:
            raise AccelsimError(
                f"arrays or tables nested more than {MAX_NESTING} deep; at most {MAX_NESTING} levels are allowed",
                source=source,
            )
    if _DEEP_KEY.search(code):
        raise AccelsimError(
            f"a dotted key of more than {MAX_NESTING} parts; at most {MAX_NESTING} levels are allowed", source=source
        )


def build(model: type[T], data: Any, source: str, prefix: tuple[str | int, ...] = ()) -> T:
    """Validate ``data`` as ``model``; on failure raise one AccelsimError for the first problem found."""
    try:
        return TypeAdapter(model).validate_python(data)
    except pydantic.ValidationError as exc:
        # A typo shows up twice (the unknown key, and the real key now missing): report the typo first.
        errors = sorted(exc.errors(include_url=False), key=lambda e: e["type"] not in _UNKNOWN_KEY)
        first = errors[0]
        loc = prefix + _without_tags(model, tuple(first["loc"]))
        message = _describe(model, first)
        more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
        raise AccelsimError(message + more, source=source, key=key_path(loc) or "(top level)") from None


def _without_tags(model: Any, loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """Drop the tag pydantic inserts for a tagged union (``engines.mme.matrix.rows`` -> ``engines.mme.rows``)."""
    out: list[str | int] = []
    current: Any = model
    for part in loc:
        current = _optional_member(current)
        if current is not None and _is_union(current):
            current = _step(current, part)
            continue
        out.append(part)
        current = _step(current, part) if current is not None else None
    return tuple(out)


def _optional_member(tp: Any) -> Any:
    """``X | None`` -> ``X`` (pydantic reports no tag for an optional field); any other type as it is."""
    if tp is None or not _is_union(tp):
        return tp
    base = typing.get_args(tp)[0] if typing.get_origin(tp) is typing.Annotated else tp
    members = [a for a in typing.get_args(base) if a is not type(None)]
    return members[0] if len(members) == 1 else tp


def _is_union(tp: Any) -> bool:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _is_union(typing.get_args(tp)[0])
    return origin in (typing.Union, types.UnionType)


def key_path(loc: tuple[str | int, ...]) -> str:
    """``('engines', 'mme', 'count')`` -> ``engines.mme.count``; list positions become ``[i]``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


_UNKNOWN_KEY = ("extra_forbidden", "unexpected_keyword_argument")


def _describe(model: type, error: ErrorDetails) -> str:
    kind = error["type"]
    if kind in _UNKNOWN_KEY:
        allowed = _allowed_keys(model, tuple(error["loc"])[:-1])
        hint = f"; allowed keys here: {', '.join(allowed)}" if allowed else ""
        return f"unknown key {error['loc'][-1]!r} (a typo?){hint}"
    if kind == "union_tag_invalid":
        ctx = error["ctx"]
        # A field discriminator is named as the field ('kind'); a callable one by its function ('engine_model()').
        name = ctx["discriminator"].strip("'").removesuffix("()").replace("_", " ")
        return f"unknown {name} {ctx['tag']!r}; allowed: {ctx['expected_tags']}"
    if kind == "union_tag_not_found":
        return f"required key {error['ctx']['discriminator']} is missing"
    if kind == "missing":
        return "required key is missing"
    got = error.get("input")
    if kind in _NUMBER_ERRORS:
        bounds = _allowed_range(_type_at(model, tuple(error["loc"])))
        if bounds and kind.endswith(("_type", "_parsing", "_from_float")):  # the wrong type: say so, then the range
            return f"{error['msg']}: {bounds} (got {_shown(got)})"
        if bounds:
            return f"must be {bounds} (got {_shown(got)})"
    if kind == "bool_type":
        return f"must be true or false (got {_shown(got)})"
    shown = f" (got {_shown(got)})" if not isinstance(got, dict | list) else ""
    return f"{error['msg']}{shown}"


def _shown(value: Any, limit: int = 80) -> str:
    """A value as the message quotes it, cut short past ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


_NUMBER_ERRORS = (
    "int_type",
    "int_parsing",
    "int_from_float",
    "float_type",
    "float_parsing",
    "finite_number",
    "greater_than",
    "greater_than_equal",
    "less_than",
    "less_than_equal",
)


def _type_at(model: Any, loc: tuple[str | int, ...]) -> Any:
    """The declared type at ``loc`` (tags of tagged unions included, as pydantic reports them), or None."""
    current: Any = model
    for part in loc:
        current = _step(current, part)
        if current is None:
            return None
    return current


def _allowed_range(tp: Any) -> str | None:
    """``an integer greater than 0 and at most 100,000``: the bounds on a (possibly optional) number type, or None."""
    if _is_union(tp):  # ``X | None``: the number's bounds
        numbers = [a for a in typing.get_args(tp) if a is not type(None)]
        return _allowed_range(numbers[0]) if len(numbers) == 1 else None
    if typing.get_origin(tp) is not typing.Annotated:
        return None
    base, *metadata = typing.get_args(tp)
    if base not in (int, float):
        return None
    bounds: dict[str, Any] = {}
    for m in metadata:
        for item in getattr(m, "metadata", [m]):  # a Field(...) carries its bounds in .metadata
            for name in ("gt", "ge", "lt", "le"):
                value = getattr(item, name, None)
                if value is not None:
                    bounds[name] = value
    if base is int and bounds.get("ge") == 1:
        bounds = {"gt": 0, **{k: v for k, v in bounds.items() if k != "ge"}}  # "greater than 0" reads best
    words = {"gt": "greater than", "ge": "at least", "lt": "less than", "le": "at most"}
    limits = " and ".join(f"{words[k]} {_number(v)}" for k, v in bounds.items())
    return ("an integer" if base is int else "a finite number") + (f" {limits}" if limits else "")


def _number(x: float) -> str:
    if isinstance(x, int) and x >= 2**40:
        return f"2^{x.bit_length() - 1}" if x & (x - 1) == 0 else f"{x:.3g}"
    return f"{x:,}" if isinstance(x, int) else f"{x:g}"


def _allowed_keys(model: Any, loc: tuple[str | int, ...]) -> list[str]:
    """Walk the dataclass types along ``loc`` to list the keys allowed at that place."""
    current: Any = model
    for part in loc:
        current = _step(current, part)
        if current is None:
            return []
    return list(_field_types(_optional_member(current)))


def _step(tp: Any, part: str | int) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Annotated:
        return _step(args[0], part)
    if origin in (typing.Union, types.UnionType):
        member = _optional_member(tp)
        if member is not tp:  # ``X | None``: pydantic's loc goes straight into X
            return _step(member, part)
        # A tagged union: loc holds the tag value, e.g. 'matrix' (the ``kind`` field) or 'tiled' (a Tag).
        return next((arg for arg in args if _has_tag(arg, part)), None)
    if origin in (dict, typing.Mapping):
        return args[1] if isinstance(part, str) else None
    if origin in (list, tuple):
        return args[0] if args else None
    return _field_types(tp).get(part) if isinstance(part, str) else None


def _has_tag(tp: Any, part: str | int) -> bool:
    """Whether a member of a tagged union answers to the tag ``part``: by a pydantic Tag on it, or by the values
    its ``kind`` field allows (a member that is itself a union answers to its members' kinds)."""
    if typing.get_origin(tp) is typing.Annotated:
        base, *metadata = typing.get_args(tp)
        return any(isinstance(m, Tag) and m.tag == part for m in metadata) or _has_tag(base, part)
    if _is_union(tp):
        return any(_has_tag(arg, part) for arg in typing.get_args(tp))
    tag = _field_types(tp).get("kind")
    return tag is not None and part in typing.get_args(tag)


def _field_types(tp: Any) -> dict[str, Any]:
    """A dataclass's resolved field types (annotations may be strings under ``from __future__``)."""
    if typing.get_origin(tp) is typing.Annotated:
        return _field_types(typing.get_args(tp)[0])
    if not hasattr(tp, "__dataclass_fields__"):
        return {}
    hints = typing.get_type_hints(tp, include_extras=True)
    return {name: hints[name] for name in tp.__dataclass_fields__}
