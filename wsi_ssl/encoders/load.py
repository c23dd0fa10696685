"""One entry point for "an encoder": an encoder dir, a zoo preset, or a timm name with local weights.

Every stage that takes ``--encoder`` (embed, serve, evaluate, the pipeline) resolves it here, so a
preset name works wherever an encoder dir does, with the preset's preprocessing, MPP and pooling.
Resolution order: an existing directory is an encoder dir (Contract 2); else a preset name
(``wsi-ssl encoders list``); else a timm architecture name, which needs ``--encoder-weights``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wsi_ssl.encoders.builders import backbone_from_config, encoder_from_config, load_preset, preset_config
from wsi_ssl.encoders.registry import get_preset, is_preset, preset_names
from wsi_ssl.encoders.timm_build import build_timm_model
from wsi_ssl.stores.encoder_dir import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    WEIGHTS_NAME,
    EncoderConfig,
    EncoderError,
    read_encoder_config,
    read_state_dict,
    sha256_file,
)


def encoder_kind(spec: str | Path) -> str:
    """``"dir"``, ``"preset"`` or ``"timm"``: how ``spec`` will be loaded."""
    if Path(spec).is_dir():
        return "dir"
    if is_preset(str(spec)):
        return "preset"
    return "timm"


def load_encoder(spec: str | Path, weights: str | Path | None = None) -> tuple[Any, EncoderConfig]:
    """``(model in eval mode, config)``; ``model(x)`` gives pooled embeddings ``[B, embed_dim]``."""
    kind = encoder_kind(spec)
    if kind == "preset":
        return load_preset(get_preset(str(spec)), weights)
    if kind == "timm" and weights is None:
        raise EncoderError(
            f"encoder {str(spec)!r} is neither an encoder directory nor a preset ({', '.join(preset_names())}); "
            "as a timm model name it needs a local weights file (--encoder-weights PATH), since weights are never downloaded"
        )
    return load_dir_or_timm(spec, weights)


def peek_config(spec: str | Path) -> EncoderConfig | None:
    """The config of an encoder dir or preset without loading weights (None for a timm name)."""
    kind = encoder_kind(spec)
    if kind == "dir":
        return read_encoder_config(spec)
    if kind == "preset":
        return preset_config(get_preset(str(spec)))
    return None


def load_dir_or_timm(
    spec: str | Path, weights: str | Path | None = None, *, verify: bool = True
) -> tuple[Any, EncoderConfig]:
    """Load an encoder as ``(timm_model_in_eval_mode, config)``.

    ``spec`` is an encoder directory (Contract 2) or a timm model name; a timm name needs
    ``weights`` (a local .safetensors/.pth/.bin file) unless it is meant to be random
    (``weights="random"``, for tests and baselines).
    """
    path = Path(spec)
    if path.is_dir():
        config = read_encoder_config(path)
        weights_path = path / WEIGHTS_NAME
        if not weights_path.is_file():
            raise EncoderError(f"{path}: no {WEIGHTS_NAME}")
        if verify and config.sha256 and sha256_file(weights_path) != config.sha256:
            raise EncoderError(
                f"{weights_path}: sha256 does not match config.json; the weights were changed or truncated"
            )
        model = build_timm_model(config, skip_init=True) if config.builder == "timm" else backbone_from_config(config)
        _load_into(model, read_state_dict(weights_path), weights_path)
        return encoder_from_config(config, model).eval(), config
    model_name = str(spec)
    base = EncoderConfig(arch=model_name, embed_dim=0, method="timm", name=model_name)
    model = build_timm_model(base, skip_init=weights is not None and str(weights) != "random")
    pcfg = getattr(model, "pretrained_cfg", {}) or {}
    input_size = pcfg.get("input_size", (3, 224, 224))[-1]
    config = base.model_copy(
        update={
            "embed_dim": int(getattr(model, "num_features", 0)),
            "input_size": int(input_size),
            "mean": tuple(pcfg.get("mean", IMAGENET_MEAN)),
            "std": tuple(pcfg.get("std", IMAGENET_STD)),
        }
    )
    if weights is None:
        raise EncoderError(
            f"{model_name!r} is not an encoder directory; as a timm name it needs a local weights file "
            "(--encoder-weights PATH), since weights are never downloaded from a hub"
        )
    if str(weights) != "random":
        wpath = Path(weights)
        if not wpath.is_file():
            raise EncoderError(f"weights file not found: {wpath}")
        _load_into(model, read_state_dict(wpath), wpath)
        config = config.model_copy(update={"sha256": sha256_file(wpath), "method": "timm"})
    else:
        config = config.model_copy(update={"method": "random"})
    return model.eval(), config


def _load_into(model: Any, state: dict[str, Any], source: Path) -> None:
    missing, unexpected = model.load_state_dict(state, strict=False)
    # A classifier head in the file is fine (we build with num_classes=0); missing backbone keys are not.
    unexpected = [k for k in unexpected if not k.startswith(("head.", "fc.", "classifier."))]
    if missing or unexpected:
        raise EncoderError(
            f"{source}: weights do not fit the architecture: missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
            f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}"
        )
