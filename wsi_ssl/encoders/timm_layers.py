"""timm kwargs that name classes (``mlp_layer``, ``act_layer``, ``embed_layer``) as plain strings.

Presets and encoder dirs (Contract 2, ``config.json``) are data, so a layer is written as a name
such as ``"SwiGLUPacked"`` and turned into the class only when the model is built. Names are
looked up in ``EXTRA_LAYERS`` first (our own, like CTransPath's ``ConvStem``), then in
``timm.layers`` and ``torch.nn``.
"""

from __future__ import annotations

from typing import Any

LAYER_KWARGS = ("mlp_layer", "act_layer", "norm_layer", "embed_layer", "block_fn")
# Layers of our own that presets name: name -> "module:Class", imported when a model is built.
EXTRA_LAYERS: dict[str, str] = {
    "ConvStem": "wsi_ssl.encoders.layers.conv_stem:ConvStem",  # CTransPath
}


def resolve_layer(name: str) -> Any:
    import importlib

    import timm.layers
    import torch.nn

    if name in EXTRA_LAYERS:
        module, _, attr = EXTRA_LAYERS[name].partition(":")
        return getattr(importlib.import_module(module), attr)
    for space in (vars(timm.layers), vars(torch.nn)):
        if name in space:
            return space[name]
    raise ValueError(
        f"unknown layer {name!r} in the timm kwargs (not in timm.layers, torch.nn or {sorted(EXTRA_LAYERS)})"
    )


def resolve_timm_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` with every layer named by a string replaced by its class."""
    out = dict(kwargs)
    for key in LAYER_KWARGS:
        if isinstance(out.get(key), str):
            out[key] = resolve_layer(out[key])
    return out
