"""Tiny encoders and generated tile stores for the embed tests (CPU, seconds)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from wsi_ssl.stores.encoder_dir import EncoderConfig, save_encoder
from wsi_ssl.stores.tile_store import TileArraysSpec, create_tile_arrays, mark_complete, store_path

TINY_VIT = {"img_size": 32, "patch_size": 8, "depth": 2, "embed_dim": 64, "num_heads": 2}


def build_tiny_vit(seed: int = 0) -> Any:
    import timm
    import torch

    torch.manual_seed(seed)
    return timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0, **TINY_VIT).eval()


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An encoder dir (Contract 2): a random 2-block ViT on 32-px input, trained 'at' 0.5 um/px."""
    out = tmp_path_factory.mktemp("enc") / "tiny-vit"
    cfg = EncoderConfig(
        arch="vit_tiny_patch16_224",
        model_kwargs=TINY_VIT,
        embed_dim=64,
        input_size=32,
        mean=(0.7, 0.5, 0.6),
        std=(0.2, 0.25, 0.3),
        mpp=0.5,
        method="random",
    )
    save_encoder(build_tiny_vit(), out, cfg)
    return out


def make_store(
    folder: Path,
    slide_id: str,
    n: int,
    *,
    tile_size: int = 32,
    mpp: float = 0.5,
    complete: bool = True,
    seed: int = 0,
    shard_tiles: int = 16,
) -> np.ndarray:
    """Write a JPEG tile store of ``n`` smooth random tiles; returns its coords."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=(n, tile_size // 4, tile_size // 4, 3), dtype=np.uint8)
    tiles = np.repeat(np.repeat(base, 4, axis=1), 4, axis=2)  # blocky tiles JPEG keeps close
    coords = np.stack([np.arange(n) * tile_size, np.arange(n) % 7 * tile_size], axis=1).astype(np.int64)
    path = store_path(folder, slide_id)
    attrs = {
        "slide_id": slide_id,
        "source_path": f"/slides/{slide_id}.svs",
        "backend": "test",
        "mpp": mpp,
        "slide_mpp": mpp,
        "level": 0,
        "downsample": 1.0,
        "tile_size": tile_size,
        "stride": tile_size,
    }
    create_tile_arrays(
        path, TileArraysSpec(n, tile_size, shard_tiles=shard_tiles), coords, np.ones(n, np.float32), attrs
    )
    if n:
        for start in range(0, n, shard_tiles):
            from wsi_ssl.stores.tile_store import write_tiles

            write_tiles(path, start, tiles[start : start + shard_tiles])
    if complete:
        mark_complete(path)
    return coords


@pytest.fixture
def store_factory(tmp_path: Path) -> Callable[..., np.ndarray]:
    tiles = tmp_path / "tiles"
    tiles.mkdir()
    return lambda slide_id, n, **kw: make_store(tiles, slide_id, n, **kw)
