"""Embedding uploaded tiles with the lab's encoder (Contract 2), with the checks uploads need.

Uploaded bytes are untrusted: the byte size is checked before decoding, the format must be
PNG or JPEG (by content, not by file name or declared type), and the pixel count is checked
from the header before any pixel is decoded, so a decompression bomb is refused cheaply.
Tiles are preprocessed from the encoder's config (Contract 2) with the same operations the
embed stage uses (bilinear antialiased resize to ``input_size`` in torch, then per-channel
mean/std), so an uploaded tile gets the embedding it would get in a feature cache.
"""

from __future__ import annotations

import io
import threading
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from wsi_ssl.encoders.load import load_encoder
from wsi_ssl.serve.errors import ApiError
from wsi_ssl.stores.encoder_dir import EncoderConfig

ACCEPTED_FORMATS = ("PNG", "JPEG")


def decode_tile(data: bytes, filename: str, max_bytes: int, max_pixels: int) -> Image.Image:
    """Decode one uploaded PNG/JPEG tile as RGB, or raise a 4xx ApiError naming the file and the problem."""
    if len(data) > max_bytes:
        raise ApiError(413, f"file {filename!r} is {len(data)} bytes; the limit is {max_bytes} bytes per image")
    if not data:
        raise ApiError(400, f"file {filename!r} is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            if img.format not in ACCEPTED_FORMATS:
                raise ApiError(
                    415,
                    f"file {filename!r} is {img.format or 'an unknown format'}; only PNG and JPEG tiles are accepted",
                )
            width, height = img.size
            if width * height > max_pixels:
                raise ApiError(
                    413, f"file {filename!r} is {width}x{height} pixels; the limit is {max_pixels} pixels per image"
                )
            img.load()
    except ApiError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ApiError(415, f"file {filename!r} is not a PNG or JPEG image ({type(exc).__name__})") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ApiError(400, f"file {filename!r} is a damaged image: {exc}") from None
    return img.convert("RGB")


@dataclass
class TileEncoder:
    """A loaded encoder plus its preprocessing; ``embed`` is safe to call from many threads."""

    model: Any
    config: EncoderConfig
    device: str = "cpu"
    batch_size: int = 32
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def load(cls, spec: str, weights: str | None = None, device: str = "cpu", batch_size: int = 32) -> TileEncoder:
        model, config = load_encoder(spec, weights)
        return cls(model=model.to(device), config=config, device=device, batch_size=batch_size)

    @property
    def name(self) -> str:
        return self.config.name or self.config.arch

    def _tensor(self, images: list[Image.Image]) -> Any:
        """A normalised float32 batch [B, 3, S, S]; each tile resized on its own (sizes may differ)."""
        import torch
        import torch.nn.functional as F

        size = self.config.input_size
        tiles = []
        for img in images:
            x = torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1)[None].float()
            if x.shape[-2:] != (size, size):
                x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
            tiles.append(x)
        batch = torch.cat(tiles)
        mean = torch.tensor(self.config.mean, dtype=torch.float32).view(1, 3, 1, 1) * 255.0
        std = torch.tensor(self.config.std, dtype=torch.float32).view(1, 3, 1, 1) * 255.0
        return (batch - mean) / std

    def embed(self, images: list[Image.Image]) -> np.ndarray:
        """Embeddings ``[len(images), embed_dim]`` as float32."""
        import torch

        outputs = []
        for start in range(0, len(images), self.batch_size):
            with self._lock, torch.inference_mode():
                x = self._tensor(images[start : start + self.batch_size]).to(self.device)
                y = self.model(x)
            outputs.append(y.float().cpu().numpy().reshape(len(x), -1))
        if not outputs:
            return np.zeros((0, self.config.embed_dim), dtype=np.float32)
        return np.concatenate(outputs).astype(np.float32)
