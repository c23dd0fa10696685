"""The encoder zoo: the field's public tile encoders as named presets, loaded from local files only.

``wsi-ssl encoders list`` shows them; ``--encoder NAME`` takes one anywhere an encoder dir is
accepted. A preset (``preset.py``) is a declarative record with the source of every number;
``zoo/`` holds one module per model family; ``builders.py`` turns a record into a model;
``weights.py`` finds its weights in the Hugging Face cache or at a given path; ``pooling.py``
names the ways tokens become one embedding. Import-light: nothing heavy until used.
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "EncoderPreset": "wsi_ssl.encoders.preset",
    "get_preset": "wsi_ssl.encoders.registry",
    "preset_names": "wsi_ssl.encoders.registry",
    "is_preset": "wsi_ssl.encoders.registry",
    "register": "wsi_ssl.encoders.registry",
    "load_encoder": "wsi_ssl.encoders.load",
    "peek_config": "wsi_ssl.encoders.load",
    "build_encoder": "wsi_ssl.encoders.builders",
    "load_preset": "wsi_ssl.encoders.builders",
    "find_weights": "wsi_ssl.encoders.weights",
    "PooledEncoder": "wsi_ssl.encoders.model",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'wsi_ssl.encoders' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_LAZY[name]), name)
