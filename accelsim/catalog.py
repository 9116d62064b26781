"""The model catalog: Hugging Face configs shipped with accelsim (``models/*.json``), found by their Hugging Face id.

Each entry is the config's architecture keys, verbatim, with where they were read (``source``) and any caveat
(``note``); ``--model`` takes a catalog id or a path to a config.json.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import AccelsimError
from .hf_config import config_of, context_length, describe, model_spec_from_config, parameter_count, read_json
from .places import shipped_dir
from .workload import Workload, apply_override, workload_from_dict


@dataclass(frozen=True)
class Model:
    """A model's architecture as ModelSpec fields, or why accelsim cannot represent it."""

    id: str
    path: str
    source: str
    note: str
    spec: dict[str, Any] | None
    refusal: str | None  # the one-line error when spec is None
    #: (config key, value) of the most positions the model takes (hf_config.context_length), None: no limit given.
    context: tuple[str, int] | None = None

    def require(self) -> dict[str, Any]:
        """The spec, or the refusal raised as the error it is."""
        if self.spec is None:
            raise AccelsimError(self.refusal or "not modelled", source=self.path)
        return self.spec

    @property
    def summary(self) -> str:
        return describe(self.spec) if self.spec is not None else f"not modelled: {self.refusal}"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "source": self.source, "note": self.note}
        if self.spec is not None:
            out["architecture"] = self.spec
            out["parameters"] = parameter_count(self.spec)
        else:
            out["refused"] = self.refusal
        return out


def _file_name(model_id: str) -> str:
    return model_id.replace("/", "--") + ".json"


def catalog_ids() -> list[str]:
    """Every shipped model's Hugging Face id, sorted case-insensitively."""
    folder = shipped_dir("models")
    ids = []
    for path in folder.glob("*.json"):
        try:
            ids.append(str(json.loads(path.read_text(encoding="utf-8"))["id"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return sorted(ids, key=str.lower)


def _exists(path: Path) -> bool:
    """Whether anything is there (a name too long or otherwise impossible is not: read_json refuses the rest)."""
    try:
        path.stat()
    except (OSError, ValueError):
        return False
    return True


def _shown(text: str, limit: int = 80) -> str:
    """An id or path for a message: quoted when empty, cut short when long."""
    return repr(text) if not text else text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def load_model(id_or_path: str) -> Model:
    """A catalog id (``meta-llama/Llama-2-7b-hf``) or a path to a config.json or catalog entry."""
    path = shipped_dir("models") / _file_name(id_or_path)
    if not _exists(path):
        path = Path(id_or_path)
        if not id_or_path or not _exists(path):
            raise AccelsimError(
                "not a catalog id nor a config.json; `accelsim models` lists the catalog",
                source=_shown(id_or_path),
            )
    parsed = read_json(path)
    config = config_of(parsed, str(path))
    data = parsed if isinstance(parsed, dict) and parsed.get("config") is config else {}
    model_id = data.get("id") if isinstance(data.get("id"), str) else id_or_path
    try:
        spec: dict[str, Any] | None = model_spec_from_config(config, str(path))
        refusal = None
    except AccelsimError as err:
        spec, refusal = None, ": ".join(p for p in (err.key, err.detail) if p)
    return Model(
        id=str(model_id),
        path=str(path),
        source=str(data.get("source", "")),
        note=str(data.get("note", "")),
        spec=spec,
        refusal=refusal,
        context=context_length(config),
    )


def model_workload(id_or_path: str, overrides: list[str] | None = None) -> Workload:
    """A workload of a catalog model (one inference pass of batch 1 x 128 tokens, or one image, unless ``overrides``
    say otherwise: ``seq_len=1024``, ``mode=training``), validated as a workload file is."""
    data, source = model_workload_data(id_or_path, overrides)
    return workload_from_dict(data, source)


def model_workload_data(id_or_path: str, overrides: list[str] | None = None) -> tuple[dict[str, Any], str]:
    """model_workload's dict and source, before validation."""
    model = load_model(id_or_path)
    spec = dict(model.require())
    run: dict[str, Any] = {"batch": 1} if spec["family"] == "vit" else {"batch": 1, "seq_len": 128}
    data: dict[str, Any] = {"name": model.id, "model": spec, "run": run}
    for item in overrides or []:
        apply_override(data, item, model.path)
    return data, model.path
