"""Contract 2: the encoder directory (``model.safetensors`` + ``config.json``).

Loading needs timm and nothing of the training code: the config names the timm architecture and
its kwargs, so ``timm.create_model(arch, **kwargs)`` rebuilds the backbone and the safetensors
file fills it (``wsi_ssl.encoders.load.load_encoder``; this module holds the format only). Weights come from local files only, never from a hub, so it works on air-gapped
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
