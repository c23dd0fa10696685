"""Helpers for the zoo tests: manifests, random checkpoints in upstream layouts, a fake Hugging Face cache."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

MANIFESTS = Path(__file__).parent / "manifests"


def manifest(name: str) -> dict[str, Any]:
    return json.loads((MANIFESTS / f"{name}.json").read_text())


def expand(man: dict[str, Any], blocks: int | None = None) -> dict[str, tuple[int, ...]]:
    """Every key -> shape of a manifest; ``blocks`` keeps only the first N repeated blocks."""
    out = {k: tuple(v) for k, v in man["keys"].items()}
    for group in man["repeated"]:
        for i in range(group["count"] if blocks is None else min(blocks, group["count"])):
            prefix = group["prefix"].format(i=i)
            out.update({prefix + k: tuple(v) for k, v in group["keys"].items()})
    return out


def random_state(shapes: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, torch.Tensor]:
    """Random float32 tensors of the given shapes (small values, so a forward stays finite)."""
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(shape, generator=g) * 0.02 for k, shape in shapes.items()}


def write_hf_snapshot(
    cache: Path, repo_id: str, files: dict[str, Any], revision: str = "0" * 40, ref: str | None = "main"
) -> Path:
    """Lay out ``cache/models--ORG--NAME/snapshots/<revision>/`` as ``hf download`` does.

    ``files`` maps a file name to a state dict (written as safetensors or torch pickle by suffix)
    or to a dict/str written as JSON/text. ``ref`` names the branch file pointing at the snapshot.
    """
    from safetensors.torch import save_file

    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snap = repo / "snapshots" / revision
    snap.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = snap / name
        if name.endswith(".safetensors"):
            save_file({k: v.contiguous() for k, v in content.items()}, str(path))
        elif name.endswith((".bin", ".pth")):
            torch.save(content, path)
        elif isinstance(content, (dict, list)):
            path.write_text(json.dumps(content))
        else:
            path.write_text(str(content))
    if ref is not None:
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / ref).write_text(revision)
    return snap


def write_tile_store(folder: Path, slide_id: str, n: int, tile_size: int = 64, mpp: float = 0.5, seed: int = 0) -> Any:
    """A complete tile store (Contract 1) of ``n`` random tiles; returns the uint8 tiles [n, T, T, 3]."""
    import numpy as np

    from wsi_ssl.stores.tile_store import TileArraysSpec, create_tile_arrays, mark_complete, store_path, write_tiles

    rng = np.random.default_rng(seed)
    tiles = rng.integers(0, 256, size=(n, tile_size, tile_size, 3), dtype=np.uint8)
    coords = np.stack([np.arange(n) * tile_size, np.zeros(n)], axis=1).astype(np.int64)
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
    spec = TileArraysSpec(n, tile_size, shard_tiles=max(n, 1), codec="png")  # lossless: exact pixels back
    create_tile_arrays(path, spec, coords, np.ones(n, np.float32), attrs)
    write_tiles(path, 0, tiles)
    mark_complete(path)
    return tiles
