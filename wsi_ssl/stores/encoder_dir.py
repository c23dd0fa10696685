"""Contract 2: the encoder directory (``model.safetensors`` + ``config.json``).

Loading needs timm and nothing of the training code: the config names the timm architecture and
its kwargs, so ``timm.create_model(arch, **kwargs)`` rebuilds the backbone and the safetensors
file fills it. Weights come from local files only, never from a hub, so it works on air-gapped
clusters. A plain timm model name with a local weights file is an encoder too.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from wsi_ssl.stores.atomic import atomic_output

ENCODER_FORMAT_VERSION = 1
WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class EncoderError(ValueError):
    """An encoder directory or weights file that cannot be loaded."""


class EncoderConfig(BaseModel):
    """What ``config.json`` holds: enough to rebuild, preprocess for and trust the encoder."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())

    format_version: int = ENCODER_FORMAT_VERSION
    arch: str
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    embed_dim: int
    input_size: int = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    mpp: float | None = None  # tile MPP it was trained at; None if unknown
    method: str = "unknown"  # dino, mae, random, timm ...
    steps: int = 0
    sha256: str = ""
    name: str = ""
    builder: str = "timm"  # timm, or transformers for a zoo preset published in that format
    pooling: str | None = None  # a name in wsi_ssl.encoders.pooling; None = the timm model's own head
    preset: str = ""  # the zoo preset these weights are (wsi-ssl encoders list), if any
    revision: str = ""  # the preset's Hub commit the weights came from
    source: str = ""  # the preset's Hub repository
    init_from: str = ""  # what pretraining started from (a preset name or a weights file), if not random


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_encoder(model: Any, out_dir: str | Path, config: EncoderConfig) -> EncoderConfig:
    """Write the backbone's weights and config atomically; returns the config with its sha256."""
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    with atomic_output(out_dir) as tmp:
        tmp.mkdir(parents=True)
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(tmp / WEIGHTS_NAME), metadata={"arch": config.arch})
        config = config.model_copy(update={"sha256": sha256_file(tmp / WEIGHTS_NAME)})
        if not config.name:
            config = config.model_copy(update={"name": out_dir.name})
        (tmp / CONFIG_NAME).write_text(json.dumps(config.model_dump(mode="json"), indent=2))
    return config


def read_encoder_config(encoder_dir: str | Path) -> EncoderConfig:
    path = Path(encoder_dir) / CONFIG_NAME
    if not path.is_file():
        raise EncoderError(f"{encoder_dir}: no {CONFIG_NAME}; an encoder dir holds {WEIGHTS_NAME} and {CONFIG_NAME}")
    try:
        return EncoderConfig.model_validate(json.loads(path.read_text()))
    except (json.JSONDecodeError, ValueError) as exc:
        raise EncoderError(f"{path}: not a valid encoder config: {exc}") from None


def read_state_dict(weights: Path) -> dict[str, Any]:
    import torch

    if weights.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(weights))
    state: Any = torch.load(str(weights), map_location="cpu", weights_only=True)
    for key in ("teacher", "model", "state_dict"):
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
    if not isinstance(state, dict):
        raise EncoderError(f"{weights}: not a state dict (a {type(state).__name__})")
    return state


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


def load_encoder(
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
            raise EncoderError(f"{weights_path}: sha256 does not match config.json; the weights were changed or truncated")
        from wsi_ssl.encoders.builders import backbone_from_config, encoder_from_config

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

