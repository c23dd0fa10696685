"""The one list of MIL aggregators: kind -> builder, plus the checks each kind puts on its config.

An aggregator module registers a builder with ``@register_aggregator("kind")``; the package
imports every module in ``wsi_ssl/mil/aggregators/`` on first import (importing this module
imports the package first, so every lookup here sees them all), so adding an aggregator is
one new file (plus its test). ``aggregator.kind`` in a MIL config is validated against
:func:`aggregator_names`, so the new kind reaches configs and ``--set aggregator.kind=...`` by
itself, and an unknown kind is an error that names the known ones.

The registry does not import :mod:`wsi_ssl.mil.config` (the config imports the registry to
validate ``kind``); builders and checks take the ``AggregatorConfig`` as their first argument.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from wsi_ssl.mil.aggregators.base import Aggregator

# (AggregatorConfig, in_dim) -> the module. ``Any``: the config type lives in mil.config, which
# imports this module; each builder annotates it precisely.
Builder = Callable[[Any, int], Aggregator]
Check = Callable[[Any], None]


@dataclass(frozen=True)
class AggregatorEntry:
    """A registered kind: how to build it, what it requires of the config, whether it attends."""

    kind: str
    build: Builder
    check: Check | None = None  # raises ValueError naming the config key when settings cannot work
    attention: bool = True  # per-instance scores worth drawing as heatmaps (mean pooling's are flat)


_ENTRIES: dict[str, AggregatorEntry] = {}


def register_aggregator(
    kind: str, *, check: Check | None = None, attention: bool = True
) -> Callable[[Builder], Builder]:
    """Decorator for a builder ``(cfg: AggregatorConfig, in_dim: int) -> Aggregator`` filed under ``kind``."""

    def add(build: Builder) -> Builder:
        if kind in _ENTRIES:
            raise ValueError(
                f"aggregator kind {kind!r} is registered twice ({_ENTRIES[kind].build.__module__} and {build.__module__})"
            )
        _ENTRIES[kind] = AggregatorEntry(kind, build, check, attention)
        return build

    return add


def aggregator_names() -> list[str]:
    """Every kind a config accepts, sorted."""
    return sorted(_ENTRIES)


def get_aggregator_entry(kind: str) -> AggregatorEntry:
    """The registered entry for ``kind``; a ValueError naming the known kinds otherwise."""
    try:
        return _ENTRIES[kind]
    except KeyError:
        raise ValueError(f"unknown aggregator kind {kind!r}; known kinds: {', '.join(sorted(_ENTRIES))}") from None


def check_aggregator_config(cfg: Any) -> None:
    """Raise ValueError when ``cfg.kind`` is unknown or its settings cannot work for that kind."""
    entry = get_aggregator_entry(cfg.kind)
    if entry.check is not None:
        entry.check(cfg)


def build_aggregator(cfg: Any, in_dim: int) -> Aggregator:
    """The aggregator ``cfg.kind`` over instances of width ``in_dim`` (after any projection)."""
    return get_aggregator_entry(cfg.kind).build(cfg, in_dim)
