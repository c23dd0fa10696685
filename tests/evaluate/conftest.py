"""Generated patch sets in each dataset's published layout, and tiny encoders (CPU, seconds)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from wsi_ssl.stores.encoder_dir import EncoderConfig, save_encoder

TINY_VIT = {"img_size": 32, "patch_size": 8, "depth": 1, "embed_dim": 32, "num_heads": 2}


def _write_image(path: Path, rng: np.random.Generator, size: tuple[int, int] = (24, 24), tint: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    px = rng.integers(0, 200, size=(*size, 3), dtype=np.uint8)
    px[..., tint % 3] = 230
    Image.fromarray(px).save(path)


def tiny_encoder_dir(out: Path, seed: int = 0, mpp: float = 0.5) -> Path:
    import timm
    import torch

    torch.manual_seed(seed)
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0, **TINY_VIT).eval()
    cfg = EncoderConfig(
        arch="vit_tiny_patch16_224", model_kwargs=TINY_VIT, embed_dim=32, input_size=32, mpp=mpp, method="random"
    )
    save_encoder(model, out, cfg)
    return out


@pytest.fixture(scope="session")
def encoders(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("encoders")
    return [tiny_encoder_dir(root / "enc_a", 0, 1.0), tiny_encoder_dir(root / "enc_b", 1, 1.0)]


@pytest.fixture(scope="session")
def demo_patches(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from wsi_ssl.synthetic.patches import make_patch_set

    return make_patch_set(tmp_path_factory.mktemp("demo") / "patches", per_class=10, size=32, mpp=1.0)


@pytest.fixture
def write_image() -> Callable[..., None]:
    """``write_image(path, rng, size=(24, 24))``: a random RGB image file."""
    return _write_image


FAST = [
    "--set",
    "linear.max_steps=100",
    "--set",
    "linear.min_check_steps=10",
    "--set",
    "fewshot.shots=[1, 4]",
    "--set",
    "robustness.shifts=[hed_strong, jpeg_q50]",
    "--no-progress",
]


@pytest.fixture
def fast() -> list[str]:
    """Config overrides that keep an end-to-end run to seconds."""
    return list(FAST)
