"""Finding shipped chip and workload files by name, installed or from a source checkout."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from .errors import AccelsimError

_SOURCE_ROOT = Path(__file__).resolve().parent.parent


def shipped_dir(kind: str) -> Path:
    """The folder holding the shipped ``chips`` or ``workloads`` files."""
    try:
        path = Path(str(resources.files(f"accelsim.data.{kind}")))
        if path.is_dir():
            return path
    except ModuleNotFoundError:
        pass
    return _SOURCE_ROOT / kind


def shipped_names(kind: str) -> list[str]:
    """Names (file stems) of the shipped files of one kind, sorted."""
    folder = shipped_dir(kind)
    return sorted(p.stem for p in folder.glob("*.toml")) if folder.is_dir() else []


def resolve(name_or_path: str | Path, kind: str) -> Path:
    """A path that exists is used as is; otherwise a shipped file's name (with or without ``.toml``)."""
    path = Path(name_or_path)
    if path.exists() or path.suffix == ".toml" and len(path.parts) > 1:
        return path
    stem = path.name.removesuffix(".toml")
    candidate = shipped_dir(kind) / f"{stem}.toml"
    if candidate.exists():
        return candidate
    names = ", ".join(shipped_names(kind)) or "none"
    raise AccelsimError(
        f"no such file, and no shipped {kind[:-1]} of that name; shipped {kind}: {names}",
        source=str(name_or_path),
    )
