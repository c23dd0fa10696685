"""A timm backbone from an encoder config (Contract 2), random weights, optionally without timm's init."""

from __future__ import annotations

from typing import Any

from wsi_ssl.stores.encoder_dir import EncoderConfig, EncoderError


def build_timm_model(config: EncoderConfig, skip_init: bool = False) -> Any:
    """The timm backbone a config describes, random weights (``num_classes=0``: no classifier)."""
    import timm

    from wsi_ssl.encoders.timm_layers import resolve_timm_kwargs

    kwargs = resolve_timm_kwargs(config.model_kwargs)
    if skip_init and "weight_init" not in config.model_kwargs:
        # Weights are loaded over the model right after, and timm's random init of a ViT costs
        # seconds on a CPU (3-5 s for ViT-S here, 0.3 s without): ViT-family models can skip it.
        try:
            return timm.create_model(config.arch, pretrained=False, num_classes=0, weight_init="skip", **kwargs)
        except TypeError:
            pass  # this architecture has no weight_init switch: build it the ordinary way
    try:
        return timm.create_model(config.arch, pretrained=False, num_classes=0, **kwargs)
    except Exception as exc:  # timm raises RuntimeError/TypeError for unknown names or kwargs
        raise EncoderError(f"timm cannot build {config.arch!r} with {config.model_kwargs}: {exc}") from None
