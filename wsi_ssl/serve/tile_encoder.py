"""Embedding uploaded tiles with the lab's encoder (Contract 2), with the checks uploads need.

Uploaded bytes are untrusted: the byte size is checked before decoding, the format must be
PNG or JPEG (by content, not by file name or declared type), and the pixel size is checked
from the header before any pixel is decoded, so a decompression bomb is refused cheaply.
Uploads are tiles: an image more than ``max_image_scale`` times the encoder's input on a side
is refused (a 4096x4096 PNG of one colour is 30 KB on the wire and 50 MB decoded, 200 MB as a
float tensor). Tiles are decoded one at a time straight into the batch tensor
(:meth:`TileEncoder.embed_stream`), under the encoder's lock, so the server holds one batch of
decoded pixels at a time whatever the number of concurrent uploads.
Tiles are preprocessed from the encoder's config (Contract 2) with the same operations the
embed stage uses (bilinear antialiased resize to ``input_size`` in torch, then per-channel
mean/std), so an uploaded tile gets the embedding it would get in a feature cache.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import io
import threading
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
from PIL import Image, UnidentifiedImageError

from wsi_ssl.encoders.load import load_encoder
from wsi_ssl.serve.errors import ApiError
from wsi_ssl.stores.encoder_dir import EncoderConfig

ACCEPTED_FORMATS = ("PNG", "JPEG")


class TileLimits(NamedTuple):
    """The per-image bounds of one upload, resolved against the loaded encoder."""

    max_bytes: int
    max_pixels: int
    max_side: int  # pixels on the longer side
    input_size: int  # the encoder's, named in the 413 message

    @property
    def scale(self) -> float:
        return self.max_side / self.input_size


def _open_checked(data: bytes, filename: str, limits: TileLimits) -> Image.Image:
    """The image opened lazily (header read, no pixels decoded), its size and format checked."""
    if len(data) > limits.max_bytes:
        raise ApiError(413, f"file {filename!r} is {len(data)} bytes; the limit is {limits.max_bytes} bytes per image")
    if not data:
        raise ApiError(400, f"file {filename!r} is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ApiError(415, f"file {filename!r} is not a PNG or JPEG image ({type(exc).__name__})") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ApiError(400, f"file {filename!r} is a damaged image: {exc}") from None
    if img.format not in ACCEPTED_FORMATS:
        raise ApiError(
            415, f"file {filename!r} is {img.format or 'an unknown format'}; only PNG and JPEG tiles are accepted"
        )
    width, height = img.size
    if max(width, height) > limits.max_side:
        raise ApiError(
            413,
            f"file {filename!r} is {width}x{height} pixels; tiles may be at most {limits.max_side}x{limits.max_side} "
            f"pixels ({limits.scale:g}x the encoder's {limits.input_size}-pixel input): send tiles, not slides",
        )
    if width * height > limits.max_pixels:
        raise ApiError(
            413, f"file {filename!r} is {width}x{height} pixels; the limit is {limits.max_pixels} pixels per image"
        )
    return img


def tile_pixels(data: bytes, filename: str, limits: TileLimits) -> int:
    """The pixel count of an uploaded tile, read from its header; a 4xx ApiError if it is refused."""
    width, height = _open_checked(data, filename, limits).size
    return width * height


def decode_tile(data: bytes, filename: str, limits: TileLimits) -> Image.Image:
    """Decode one uploaded PNG/JPEG tile as RGB, or raise a 4xx ApiError naming the file and the problem."""
    img = _open_checked(data, filename, limits)
    try:
        img.load()
    except (OSError, SyntaxError, ValueError) as exc:
        raise ApiError(400, f"file {filename!r} is a damaged image: {exc}") from None
    return img.convert("RGB")


_LIBC = ctypes.util.find_library("c")


def release_memory() -> None:
    """Hand freed heap pages back to the OS (glibc keeps them otherwise, and the RSS stays high)."""
    if _LIBC is None:
        return
    try:
        trim = ctypes.CDLL(_LIBC).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return
    trim(0)


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

    def limits(self, max_bytes: int, max_pixels: int, max_scale: float) -> TileLimits:
        size = int(self.config.input_size)
        return TileLimits(max_bytes, max_pixels, int(max_scale * size), size)

    def _tile(self, img: Image.Image) -> Any:
        """One tile as float32 [3, S, S], resized on its own (sizes may differ), not yet normalised."""
        import torch
        import torch.nn.functional as F

        size = self.config.input_size
        x = torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1)[None].float()
        if x.shape[-2:] != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        return x[0]

    def embed(self, images: list[Image.Image]) -> np.ndarray:
        """Embeddings ``[len(images), embed_dim]`` as float32."""
        return self.embed_stream(images, len(images))

    def embed_stream(self, images: Iterable[Image.Image], n: int) -> np.ndarray:
        """Embeddings of the ``n`` images ``images`` yields, taken one at a time into the batch.

        ``images`` may decode lazily (a generator): each image is copied into the batch tensor
        and dropped before the next is asked for, so at most one decoded image and one batch
        exist at a time. Batches run under the encoder's lock, decoding included.
        """
        import torch

        size = self.config.input_size
        mean = torch.tensor(self.config.mean, dtype=torch.float32).view(1, 3, 1, 1) * 255.0
        std = torch.tensor(self.config.std, dtype=torch.float32).view(1, 3, 1, 1) * 255.0
        outputs = []
        source = iter(images)
        for start in range(0, n, self.batch_size):
            count = min(self.batch_size, n - start)
            with self._lock, torch.inference_mode():
                batch = torch.empty((count, 3, size, size), dtype=torch.float32)
                for j in range(count):
                    img = next(source)
                    batch[j] = self._tile(img)
                    del img  # before the next image is decoded
                y = self.model(((batch - mean) / std).to(self.device))
                del batch
            outputs.append(y.float().cpu().numpy().reshape(count, -1))
        if not outputs:
            return np.zeros((0, self.config.embed_dim), dtype=np.float32)
        return np.concatenate(outputs).astype(np.float32, copy=False)
