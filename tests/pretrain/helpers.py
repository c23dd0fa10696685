"""Small tile stores and tiny configs for the pretraining tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from wsi_ssl.stores.tile_store import TileArraysSpec, create_tile_arrays, mark_complete, store_path, write_tiles

TINY_BACKBONE = {
    "arch": "vit_tiny_patch16_224",
    "kwargs": {"img_size": 32, "patch_size": 8, "depth": 2, "embed_dim": 64, "num_heads": 2},
    "drop_path_rate": 0.0,
}


def patterned_tiles(n: int, size: int, seed: int) -> np.ndarray:
    """Tiles of two kinds (stripes / blobs) in random colours, so there is something to learn."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    for i in range(n):
        freq = rng.uniform(0.2, 0.6)
        pattern = np.sin(xx * freq + rng.uniform(0, 6)) if i % 2 else np.sin(xx * freq) * np.sin(yy * freq)
        colour = rng.uniform(60, 200, size=3)
        img = colour[None, None] + 50 * pattern[..., None] + rng.normal(0, 8, (size, size, 3))
        out[i] = np.clip(img, 0, 255).astype(np.uint8)
    return out


def make_store(folder: Path, slide_id: str, n: int = 24, size: int = 32, seed: int = 0, mpp: float = 1.0) -> Path:
    path = store_path(folder, slide_id)
    coords = np.stack([np.arange(n) * size, np.zeros(n)], 1).astype(np.int64)
    attrs = {
        "slide_id": slide_id,
        "source_path": f"/nowhere/{slide_id}.tiff",
        "backend": "test",
        "mpp": mpp,
        "slide_mpp": 0.5,
        "level": 0,
        "downsample": mpp / 0.5,
        "tile_size": size,
        "stride": size,
    }
    create_tile_arrays(
        path,
        TileArraysSpec(n_tiles=n, tile_size=size, shard_tiles=8, codec="png"),
        coords,
        np.ones(n, np.float32),
        attrs,
    )
    write_tiles(path, 0, patterned_tiles(n, size, seed))
    mark_complete(path)
    return path


def tiny_config(method: str = "dino", **sections: Any) -> dict[str, Any]:
    """A config dict for a tiny ViT on 32 px tiles, a few steps on CPU."""
    cfg: dict[str, Any] = {
        "method": method,
        "backbone": TINY_BACKBONE,
        "data": {"batch_size": 8, "num_workers": 0, "holdout_tiles": 8},
        "crops": {"global_size": 32, "local_size": 16, "n_local": 2},
        "dino": {"out_dim": 64, "hidden_dim": 64, "bottleneck_dim": 32, "teacher_temp_warmup_steps": 2},
        "mae": {"decoder_dim": 32, "decoder_depth": 1, "decoder_heads": 2},
        "optim": {"lr": 1e-3, "warmup_steps": 1, "scale_lr_by_batch": False},
        "trainer": {"max_steps": 4, "ckpt_every": 2, "val_every": 2, "log_every": 1, "threads": 2},
    }
    for name, values in sections.items():
        cfg[name] = {**cfg.get(name, {}), **values} if isinstance(values, dict) else values
    return cfg
