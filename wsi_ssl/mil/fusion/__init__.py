"""How clinical covariates and omics meet the tiles: one module per ``model.fusion.kind``.

- ``base.py``: the :class:`Fusion` interface (``instances`` before the aggregator, ``bag`` after).
- ``registry.py``: ``@register_fusion("kind")``, :func:`build_fusion`, :func:`fusion_names`.
- ``none.py``, ``late.py``, ``film.py``, ``cross_attention.py``: the kinds.

Adding a kind is one module here (plus its test); every module is imported below.
"""

from __future__ import annotations

import importlib
import pkgutil

from wsi_ssl.mil.fusion.base import Fusion
from wsi_ssl.mil.fusion.registry import build_fusion, fusion_names, register_fusion

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")
del _module

__all__ = ["Fusion", "build_fusion", "fusion_names", "register_fusion"]
