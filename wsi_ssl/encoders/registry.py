"""The zoo's registry: preset name -> ``EncoderPreset``.

The presets live in ``zoo/``, one module per model family (as eva and timm arrange theirs); the
registry collects them on first use, so ``wsi-ssl --help`` does not pay for it. ``register`` adds
a preset from elsewhere (a lab's own plugin module).
"""

from __future__ import annotations

from wsi_ssl.encoders.preset import EncoderPreset

_PRESETS: dict[str, EncoderPreset] = {}


def register(preset: EncoderPreset) -> EncoderPreset:
    if preset.name in _PRESETS:
        raise ValueError(f"encoder preset {preset.name!r} is registered twice")
    _PRESETS[preset.name] = preset
    return preset


_LOADED = False


def _ensure_loaded() -> None:
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    from wsi_ssl.encoders.zoo import all_presets

    for preset in all_presets():
        register(preset)


def preset_names() -> list[str]:
    _ensure_loaded()
    return sorted(_PRESETS)


def is_preset(name: str) -> bool:
    _ensure_loaded()
    return name in _PRESETS


def get_preset(name: str) -> EncoderPreset:
    _ensure_loaded()
    try:
        return _PRESETS[name]
    except KeyError:
        raise KeyError(f"no encoder preset {name!r}; known presets: {', '.join(sorted(_PRESETS))}") from None
