"""One entry point for "an encoder": an encoder dir, a zoo preset, or a timm name with local weights.

Every stage that takes ``--encoder`` (embed, serve, evaluate, the pipeline) resolves it here, so a
preset name works wherever an encoder dir does, with the preset's preprocessing, MPP and pooling.
Resolution order: an existing directory is an encoder dir (Contract 2); else a preset name
(``wsi-ssl encoders list``); else a timm architecture name, which needs ``--encoder-weights``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wsi_ssl.stores import encoder_dir
from wsi_ssl.stores.encoder_dir import EncoderConfig, EncoderError


def encoder_kind(spec: str | Path) -> str:
    """``"dir"``, ``"preset"`` or ``"timm"``: how ``spec`` will be loaded."""
    from wsi_ssl.encoders.registry import is_preset

    if Path(spec).is_dir():
        return "dir"
    if is_preset(str(spec)):
        return "preset"
    return "timm"


def load_encoder(spec: str | Path, weights: str | Path | None = None) -> tuple[Any, EncoderConfig]:
    """``(model in eval mode, config)``; ``model(x)`` gives pooled embeddings ``[B, embed_dim]``."""
    kind = encoder_kind(spec)
    if kind == "preset":
        from wsi_ssl.encoders.builders import load_preset
        from wsi_ssl.encoders.registry import get_preset

        return load_preset(get_preset(str(spec)), weights)
    if kind == "timm" and weights is None:
        from wsi_ssl.encoders.registry import preset_names

        raise EncoderError(
            f"encoder {str(spec)!r} is neither an encoder directory nor a preset ({', '.join(preset_names())}); "
            "as a timm model name it needs a local weights file (--encoder-weights PATH), since weights are never downloaded"
        )
    return encoder_dir.load_encoder(spec, weights)


def peek_config(spec: str | Path) -> EncoderConfig | None:
    """The config of an encoder dir or preset without loading weights (None for a timm name)."""
    kind = encoder_kind(spec)
    if kind == "dir":
        return encoder_dir.read_encoder_config(spec)
    if kind == "preset":
        from wsi_ssl.encoders.builders import preset_config
        from wsi_ssl.encoders.registry import get_preset

        return preset_config(get_preset(str(spec)))
    return None
