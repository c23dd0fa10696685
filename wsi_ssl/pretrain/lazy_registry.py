"""A name -> ``"module:attribute"`` table, imported on first use.

The pretraining registries (methods, kNN label providers) list their entries as import paths,
not imported objects, so that validating a config (is ``method: dino`` known?) needs neither
torch nor the modules that implement the entries; an entry's module is imported when the entry
is asked for.
"""

from __future__ import annotations

import importlib
from typing import Generic, TypeVar

T = TypeVar("T")


class LazyRegistry(Generic[T]):
    """Entries by name, in registration order; ``get`` imports and returns the named attribute."""

    def __init__(self, kind: str, entries: dict[str, str] | None = None) -> None:
        self.kind = kind  # for messages: "pretraining method", "kNN label provider"
        self._targets: dict[str, str] = {}
        for name, target in (entries or {}).items():
            self.register(name, target)

    def register(self, name: str, target: str) -> None:
        """Add ``name`` -> ``"package.module:Attribute"``; a name is registered once."""
        if name in self._targets:
            raise ValueError(f"{self.kind} {name!r} is registered twice ({self._targets[name]}, {target})")
        if ":" not in target:
            raise ValueError(f"{self.kind} {name!r}: target {target!r} is not 'module:attribute'")
        self._targets[name] = target

    def names(self) -> list[str]:
        return list(self._targets)

    def __contains__(self, name: object) -> bool:
        return name in self._targets

    def get(self, name: str) -> T:
        try:
            target = self._targets[name]
        except KeyError:
            raise KeyError(f"unknown {self.kind} {name!r}; known: {', '.join(self._targets)}") from None
        module_name, _, attr = target.partition(":")
        obj: T = getattr(importlib.import_module(module_name), attr)
        return obj
