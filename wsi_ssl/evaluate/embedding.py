"""Embed (or read from the cache) the patches of a PatchSet with one encoder, clean or shifted.

Pixels go through :func:`wsi_ssl.evaluate.pixels.to_encoder_pixels` (the encoder's MPP and field
of view), then an optional shift (robustness) and stain normalisation, then the encoder's own
``Preprocess`` from ``embed``, so features are made exactly as ``wsi-ssl embed`` makes them.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from wsi_ssl.evaluate.cache import cache_path, read_cached, write_cached
from wsi_ssl.evaluate.datasets.base import PatchSet
from wsi_ssl.evaluate.encoders import LoadedEncoder
from wsi_ssl.evaluate.pixels import to_encoder_pixels

log = logging.getLogger(__name__)
ImageFn = Callable[[np.ndarray], np.ndarray]


class PatchEmbedder:
    """Features of one encoder on one PatchSet, cached under ``cache_dir``."""

    def __init__(
        self,
        encoder: LoadedEncoder,
        patches: PatchSet,
        cache_dir: Path,
        *,
        batch_size: int = 64,
        device: str = "auto",
        workers: int = 2,
        stain_norm: tuple[str, ImageFn | None] = ("none", None),
        progress: bool = True,
    ) -> None:
        from wsi_ssl.embed.preprocess import Preprocess

        self.encoder, self.patches, self.cache_dir = encoder, patches, cache_dir
        self.batch_size, self.workers, self.progress = batch_size, workers, progress
        self.device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device)
        self.preprocess = Preprocess.from_encoder_config(encoder.config)
        self.stain_name, self.stain_fn = stain_norm
        self._fingerprint = patches.fingerprint()
        self.model = encoder.model.to(self.device).eval()

    def key_parts(self, index: np.ndarray, shift: str) -> dict[str, object]:
        c = self.encoder.config
        return {
            "encoder_sha256": self.encoder.sha256,
            "preprocess": {"input_size": c.input_size, "mean": list(c.mean), "std": list(c.std), "mpp": c.mpp},
            "dataset": self._fingerprint,
            "patches": hashlib.sha256(np.asarray(index, dtype=np.int64).tobytes()).hexdigest(),
            "shift": shift,
            "stain_norm": self.stain_name,
        }

    def pixels(self, index: np.ndarray) -> np.ndarray:
        """uint8 ``[N, S, S, 3]`` at the encoder's scale (before shift and normalisation)."""
        cfg = self.encoder.config

        def one(i: int) -> np.ndarray:
            return to_encoder_pixels(self.patches.reader.read(int(i)), self.patches.mpp, cfg.mpp, cfg.input_size)

        with ThreadPoolExecutor(max(1, self.workers)) as pool:
            return _stack(list(pool.map(one, index)), cfg.input_size)

    def features(self, index: np.ndarray, shift: str = "clean", shift_fn: ImageFn | None = None) -> np.ndarray:
        parts = self.key_parts(index, shift)
        path = cache_path(self.cache_dir, parts)
        cached = read_cached(path, index)
        if cached is not None:
            return cached
        out: list[np.ndarray] = []
        steps = range(0, len(index), self.batch_size)
        bar = tqdm(
            steps, desc=f"embed {self.encoder.name} {shift}", unit="batch", disable=not self.progress, leave=False
        )
        for start in bar:
            images = self.pixels(index[start : start + self.batch_size])
            if shift_fn is not None:
                images = shift_fn(images)
            if self.stain_fn is not None:
                images = self.stain_fn(images)
            out.append(self.forward(images))
        feats = np.concatenate(out) if out else np.zeros((0, self.encoder.config.embed_dim), np.float32)
        write_cached(path, index, feats, parts)
        return feats

    @torch.no_grad()
    def forward(self, images: np.ndarray) -> np.ndarray:
        x = self.preprocess(torch.from_numpy(images).to(self.device))
        return self.model(x).float().cpu().numpy()


def _stack(images: list[np.ndarray], size: int) -> np.ndarray:
    """One array; patches of different sides (rare: mixed-size folders) are resized to ``size`` first."""
    import cv2

    if len({im.shape for im in images}) > 1:
        images = [cv2.resize(im, (size, size), interpolation=cv2.INTER_LINEAR) for im in images]
    return np.stack(images)
