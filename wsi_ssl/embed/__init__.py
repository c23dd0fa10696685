"""Stage 3, ``wsi-ssl embed``: tile stores (Contract 1) + an encoder (Contract 2) -> feature h5s (Contract 3).

Import-light on purpose (nothing heavy at import, so ``wsi-ssl --help`` stays fast). The Python
API: ``run_embed(EmbedConfig(...))`` runs the stage; ``read_features(path)`` opens a feature
file, ours or CLAM's or TRIDENT's, as arrays plus attrs (``wsi_ssl.stores.features``).
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "EmbedConfig": "wsi_ssl.embed.config",
    "run_embed": "wsi_ssl.embed.runner",
    "EmbedSummary": "wsi_ssl.embed.runner",
    "read_features": "wsi_ssl.stores.features",
    "FeatureFile": "wsi_ssl.stores.features",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'wsi_ssl.embed' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_LAZY[name]), name)
