"""Finding shipped chip, workload and system files by name, installed or from a source checkout."""

from __future__ import annotations

from pathlib import Path

from .errors import AccelsimError
from .places import shipped_dir


def shipped_names(kind: str) -> list[str]:
    """Names (file stems) of the shipped files of one kind, sorted."""
    folder = shipped_dir(kind)
    return sorted(p.stem for p in folder.glob("*.toml")) if folder.is_dir() else []


def resolve(name_or_path: str | Path, kind: str) -> Path:
    """A path that exists is used as is; otherwise a shipped file's name (with or without ``.toml``). An empty
    name is neither (Path('') would be the current folder)."""
    if not str(name_or_path).strip():
        raise AccelsimError(
            f"an empty name; give a shipped {kind[:-1]} ({', '.join(shipped_names(kind)) or 'none'}) or a path",
            source=repr(str(name_or_path)),
        )
    path = Path(name_or_path)
    try:
        exists = path.exists()
    except (OSError, ValueError):  # a parent that cannot be searched, a NUL byte: read_toml says which
        return path
    if exists or path.suffix == ".toml" and len(path.parts) > 1:
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
