"""Reading TOML files into validated dataclasses, with one-line errors that name file, key and what is allowed.

Validation itself is pydantic's (strict mode, unknown keys forbidden); this module only turns its errors into
messages a user can act on.
"""

from __future__ import annotations

import tomllib
import types
import typing
from pathlib import Path
from typing import Annotated, Any, TypeVar

import pydantic
from pydantic import ConfigDict, Field, Strict, Tag, TypeAdapter
from pydantic_core import ErrorDetails

from .errors import AccelsimError

T = TypeVar("T")

#: The pydantic settings every file-backed dataclass uses: no unknown keys, immutable. Numbers use the strict
#: types below, so "3" or true is never taken for a number (an int is accepted where a float is expected).
STRICT = ConfigDict(extra="forbid", frozen=True)
PosInt = Annotated[int, Strict(), Field(gt=0)]
NonNegInt = Annotated[int, Strict(), Field(ge=0)]
PosFloat = Annotated[float, Strict(), Field(gt=0)]
NonNegFloat = Annotated[float, Strict(), Field(ge=0)]


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file; a missing, empty or malformed file is an AccelsimError naming the file."""
    if not path.exists():
        raise AccelsimError("file not found", source=str(path))
    if path.is_dir():
        raise AccelsimError("is a directory, expected a TOML file", source=str(path))
    text = path.read_text(encoding="utf-8", errors="replace")
    if not text.strip():
        raise AccelsimError("file is empty, expected TOML", source=str(path))
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise AccelsimError(f"not valid TOML ({exc})", source=str(path)) from None


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
        if current is not None and _is_union(current):
            current = _step(current, part)
            continue
        out.append(part)
        current = _step(current, part) if current is not None else None
    return tuple(out)


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
    shown = f" (got {got!r})" if not isinstance(got, dict | list) else ""
    return f"{error['msg']}{shown}"


def _allowed_keys(model: Any, loc: tuple[str | int, ...]) -> list[str]:
    """Walk the dataclass types along ``loc`` to list the keys allowed at that place."""
    current: Any = model
    for part in loc:
        current = _step(current, part)
        if current is None:
            return []
    return list(_field_types(current))


def _step(tp: Any, part: str | int) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Annotated:
        return _step(args[0], part)
    if origin in (typing.Union, types.UnionType):
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
