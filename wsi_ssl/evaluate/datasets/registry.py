"""``--dataset KIND`` -> the loader that reads that dataset's published layout.

A loader is a function ``(root, mpp) -> PatchSet``; ``mpp`` is the user's ``--mpp`` (required by
``csv`` and ``folder``, which cannot know it; an override for the others). Adding a dataset is
one module with a ``@register_dataset("name")`` function, listed in ``_MODULES``, and a test that
builds its layout.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

from wsi_ssl.evaluate.datasets.base import PatchSet

Loader = Callable[[Path, "float | None"], PatchSet]

_LOADERS: dict[str, Loader] = {}
_MODULES = ("wsi_ssl.evaluate.datasets.public", "wsi_ssl.evaluate.datasets.generic")


def register_dataset(name: str) -> Callable[[Loader], Loader]:
    def add(fn: Loader) -> Loader:
        if name in _LOADERS:
            raise ValueError(f"dataset kind {name!r} is registered twice")
        _LOADERS[name] = fn
        return fn

    return add


def _load_modules() -> None:
    for module in _MODULES:
        importlib.import_module(module)


def dataset_kinds() -> list[str]:
    _load_modules()
    return sorted(_LOADERS)


def load_dataset(kind: str, root: str | Path, mpp: float | None = None) -> PatchSet:
    """The patch set of ``root`` read as ``kind``; a DatasetError names what is missing."""
    _load_modules()
    if kind not in _LOADERS:
        raise KeyError(f"unknown dataset kind {kind!r}; known: {', '.join(sorted(_LOADERS))}")
    return _LOADERS[kind](Path(root).expanduser(), mpp)
