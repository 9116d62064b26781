"""The built-in scheduling policies, one per module; importing this package registers them by name."""

from .balanced import Balanced
from .first_free import FirstFree
from .heft import Heft
from .naive import Naive

__all__ = ["Balanced", "FirstFree", "Heft", "Naive"]
