"""The scheduler interface and its registry: a scheduler is a policy object found by name.

The registry knows no policy: each registers itself with ``@register`` when its module is imported (the built-ins
in accelsim.policies, which ``import accelsim`` loads; a user's through ``load_plugin`` or a plain import).
"""

from __future__ import annotations

import importlib
import importlib.util
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TypeVar

from .chip import Chip
from .costs import CostTable
from .errors import AccelsimError
from .graph import TaskGraph
from .schedule import Schedule


class Scheduler(ABC):
    """A scheduling policy. Subclass, set ``name``, implement ``schedule`` and decorate with ``@register``."""

    name: str = ""
    description: str = ""

    @abstractmethod
    def schedule(self, graph: TaskGraph, chip: Chip, costs: CostTable) -> Schedule:
        """Decide every task's engine instance and each engine's issue order."""


SCHEDULERS: dict[str, type[Scheduler]] = {}
#: The policy every command and function runs when none is named: the simplest list scheduler (a baseline).
DEFAULT_SCHEDULER = "first-free"
S = TypeVar("S", bound=type[Scheduler])


def register(cls: S) -> S:
    """Class decorator that makes a scheduler available by its ``name`` (CLI ``--scheduler NAME`` included)."""
    if not cls.name:
        raise AccelsimError("a scheduler class needs a non-empty `name`", key=cls.__qualname__)
    known = SCHEDULERS.get(cls.name)
    if known is not None and _definition(known) != _definition(cls):
        # a plugin must not silently replace a built-in (or another plugin's) policy; the same class run again
        # (a plugin file loaded twice, a notebook cell re-run) is the same definition and replaces itself
        raise AccelsimError(
            f"scheduler name {cls.name!r} is already registered by {_definition(known)}; choose another name",
            key=_definition(cls),
        )
    SCHEDULERS[cls.name] = cls
    return cls


def _definition(cls: type) -> str:
    """Where a class is defined, as module.qualname: what tells a re-run of one definition from another class."""
    return f"{cls.__module__}.{cls.__qualname__}"


def get_scheduler(name: str | Scheduler) -> Scheduler:
    """A scheduler instance by registered name (or the instance itself)."""
    if isinstance(name, Scheduler):
        return name
    cls = SCHEDULERS.get(name)
    if cls is None:
        raise AccelsimError(f"unknown scheduler {name!r}; registered: {', '.join(sorted(SCHEDULERS))}", key="scheduler")
    return cls()


def scheduler_names() -> list[str]:
    return sorted(SCHEDULERS)


def load_plugin(spec: str) -> None:
    """Import a module (dotted name) or a ``.py`` file so the schedulers it ``@register``s become available."""
    path = Path(spec)
    if spec.endswith(".py"):
        if not path.exists():
            raise AccelsimError("plugin file not found", source=spec)
        module_spec = importlib.util.spec_from_file_location(path.stem, path)
        if module_spec is None or module_spec.loader is None:
            raise AccelsimError("cannot load this file as a Python module", source=spec)
        try:
            module_spec.loader.exec_module(importlib.util.module_from_spec(module_spec))
        except AccelsimError as exc:  # a refused registration names the plugin it came from
            raise AccelsimError(exc.detail, source=spec, key=exc.key) from None
        return
    if not all(part.isidentifier() for part in spec.split(".")):  # "", "+8", ".x": import_module's own errors
        raise AccelsimError(f"not a module name (dotted, e.g. my.plugin) nor a .py file: {spec!r}", key="--plugin")
    try:
        importlib.import_module(spec)
    except ModuleNotFoundError as exc:
        raise AccelsimError(f"cannot import plugin module ({exc})", source=spec) from None
    except AccelsimError as exc:
        raise AccelsimError(exc.detail, source=spec, key=exc.key) from None
