"""Helpers shared by the serve tests: feature files and images to upload."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from wsi_ssl.stores.features import write_features

DIM = 8


def make_slide(folder: Path, slide_id: str, n: int, seed: int, dim: int = DIM, dtype: str = "float32") -> Path:
    """A Contract 3 feature file with reproducible features and a tile grid of coords."""
    rng = np.random.default_rng(seed)
    feats = rng.normal(size=(n, dim)).astype(np.float32)
    coords = np.stack([np.arange(n) * 224, np.arange(n) % 7 * 224], axis=1).astype(np.int64)
    attrs = {"slide_id": slide_id, "encoder": "tiny", "encoder_sha256": "ab" * 32, "mpp": 0.5, "tile_size": 224}
    return write_features(folder / f"{slide_id}.h5", feats, coords, attrs, dtype=dtype)


def check_error(r: Any, status: int, *words: str) -> None:
    """The response is the one JSON error shape, and its detail names the problem (case-insensitive)."""
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error", "detail"}
    for word in words:
        assert word.lower() in body["detail"].lower(), body["detail"]


def png_bytes(size: int = 32, seed: int = 0, fmt: str = "PNG") -> bytes:
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 255, size=(size, size, 3), dtype=np.uint8))
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


class LinearBagModel:
    """A stand-in for a loader plugin's predictor: ``predict_bag`` like the MIL ensemble's."""

    def __init__(self, weights: np.ndarray) -> None:
        self.weights = weights

    def predict_bag(self, features: np.ndarray) -> dict[str, np.ndarray]:
        scores = features @ self.weights
        return {"prob": 1 / (1 + np.exp(-np.array([scores.mean()]))), "scores": scores}


def load_linear_run(path: Path) -> tuple[LinearBagModel, dict[str, object]]:
    """A loader plugin (``serve_helpers:load_linear_run``): a run dir with weights.npy and meta.json."""
    import json

    meta = json.loads((Path(path) / "meta.json").read_text())
    return LinearBagModel(np.load(Path(path) / "weights.npy")), meta
