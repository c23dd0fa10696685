"""The one list of fusion kinds (``model.fusion.kind``): kind -> builder, plus its config checks.

As :mod:`wsi_ssl.mil.aggregators.registry`: a module registers a builder with
``@register_fusion("kind")``; the package imports every module on first import (importing
this module imports the package first, so every lookup here sees them all); the config
validates ``kind`` against :func:`fusion_names`, and an unknown kind names the known ones.
Builders take ``(FusionConfig, instance_width, SideEncoder | None)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from wsi_ssl.mil.fusion.base import Fusion

Builder = Callable[[Any, int, Any], Fusion]
Check = Callable[[Any], None]  # (MilConfig) -> None, raising ValueError naming the key


@dataclass(frozen=True)
class FusionEntry:
    kind: str
    build: Builder
    check: Check | None = None
    needs_side: bool = True  # the kind reads covariates/omics (``none`` does not)


_ENTRIES: dict[str, FusionEntry] = {}


def register_fusion(kind: str, *, check: Check | None = None, needs_side: bool = True) -> Callable[[Builder], Builder]:
    def add(build: Builder) -> Builder:
        if kind in _ENTRIES:
            raise ValueError(f"fusion kind {kind!r} is registered twice")
        _ENTRIES[kind] = FusionEntry(kind, build, check, needs_side)
        return build

    return add


def fusion_names() -> list[str]:
    return sorted(_ENTRIES)


def get_fusion_entry(kind: str) -> FusionEntry:
    try:
        return _ENTRIES[kind]
    except KeyError:
        raise ValueError(f"unknown fusion kind {kind!r}; known kinds: {', '.join(sorted(_ENTRIES))}") from None


def check_fusion_config(cfg: Any) -> None:
    """Raise ValueError when the kind needs covariates/omics the config does not give, or its own checks fail."""
    entry = get_fusion_entry(cfg.model.fusion.kind)
    if entry.needs_side and not cfg.data.covariates and cfg.data.omics is None:
        raise ValueError(f"model.fusion.kind: {entry.kind} needs data.covariates or data.omics")
    if entry.check is not None:
        entry.check(cfg)


def build_fusion(cfg: Any, width: int, encoder: Any) -> Fusion:
    return get_fusion_entry(cfg.kind).build(cfg, width, encoder)
