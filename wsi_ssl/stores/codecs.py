"""Tile codecs for the zarr v3 tile store.

Each tile is one zarr chunk; chunks are grouped into shard files (zarr's ShardingCodec), and the
inner chunk codec is one of:

- ``jpeg`` (default): libjpeg-turbo through imagecodecs, quality 90, 4:4:4 chroma. Tiles come
  from slides that are JPEG-compressed already; see docs/tile.md and docs/benchmarks.md for the measurement
  behind the default (bytes per tile against the source slide's, and decode speed).
- ``png``: lossless, PNG through imagecodecs (zlib level 1, to keep encoding cheap).
- ``raw``: lossless, uncompressed bytes plus zstd; the fastest to decode, the largest.

The JPEG and PNG codecs are registered with zarr under ``wsi_ssl.jpeg`` / ``wsi_ssl.png`` (also as
``zarr.codecs`` entry points), so any zarr 3 reader with wsi_ssl installed opens the stores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import imagecodecs
import numpy as np
from zarr.abc.codec import ArrayBytesCodec
from zarr.core.array_spec import ArraySpec
from zarr.core.buffer import Buffer, NDBuffer
from zarr.registry import register_codec

TileCodecName = Literal["jpeg", "png", "raw"]


def _as_image(chunk: np.ndarray) -> np.ndarray:
    # A chunk is [1, T, T, 3]: one tile. Encoders want [T, T, 3].
    return chunk.reshape(chunk.shape[-3:]) if chunk.ndim == 4 else chunk


@dataclass(frozen=True)
class _ImageCodec(ArrayBytesCodec):
    """Shared plumbing: one RGB uint8 tile per chunk in, one image file's bytes out."""

    level: int

    codec_name = ""
    is_fixed_size = False

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> _ImageCodec:
        config = data.get("configuration") or {}
        return cls(level=int(config.get("level", cls.default_level())))

    @classmethod
    def default_level(cls) -> int:
        return 90

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.codec_name, "configuration": {"level": self.level}}

    def encode_image(self, image: np.ndarray) -> bytes:
        raise NotImplementedError

    def decode_image(self, data: bytes) -> np.ndarray:
        raise NotImplementedError

    def _decode_sync(self, chunk_bytes: Buffer, chunk_spec: ArraySpec) -> NDBuffer:
        image = self.decode_image(chunk_bytes.as_numpy_array().tobytes())
        return chunk_spec.prototype.nd_buffer.from_ndarray_like(image.reshape(chunk_spec.shape))  # type: ignore[arg-type]  # numpy's stubs are stricter than zarr's protocol

    def _encode_sync(self, chunk_array: NDBuffer, chunk_spec: ArraySpec) -> Buffer | None:
        image = np.ascontiguousarray(_as_image(chunk_array.as_numpy_array()))
        encoded = np.frombuffer(self.encode_image(image), dtype=np.uint8)
        return chunk_spec.prototype.buffer.from_array_like(encoded)

    async def _decode_single(self, chunk_bytes: Buffer, chunk_spec: ArraySpec) -> NDBuffer:
        return self._decode_sync(chunk_bytes, chunk_spec)

    async def _encode_single(self, chunk_array: NDBuffer, chunk_spec: ArraySpec) -> Buffer | None:
        return self._encode_sync(chunk_array, chunk_spec)

    def compute_encoded_size(self, input_byte_length: int, _chunk_spec: ArraySpec) -> int:
        raise NotImplementedError("image codecs have variable encoded size")


@dataclass(frozen=True)
class JpegCodec(_ImageCodec):
    """Baseline JPEG, 4:4:4 (no chroma subsampling: nuclei edges and eosin hues survive)."""

    level: int = 90
    codec_name = "wsi_ssl.jpeg"

    def encode_image(self, image: np.ndarray) -> bytes:
        return bytes(imagecodecs.jpeg8_encode(image, level=self.level, subsampling="444"))

    def decode_image(self, data: bytes) -> np.ndarray:
        return imagecodecs.jpeg8_decode(data)


@dataclass(frozen=True)
class PngCodec(_ImageCodec):
    """Lossless PNG; ``level`` is the zlib level (1 keeps encoding fast)."""

    level: int = 1
    codec_name = "wsi_ssl.png"

    @classmethod
    def default_level(cls) -> int:
        return 1

    def encode_image(self, image: np.ndarray) -> bytes:
        return bytes(imagecodecs.png_encode(image, level=self.level))

    def decode_image(self, data: bytes) -> np.ndarray:
        return imagecodecs.png_decode(data)


register_codec(JpegCodec.codec_name, JpegCodec)
register_codec(PngCodec.codec_name, PngCodec)


def tile_codec_kwargs(name: TileCodecName, quality: int = 90) -> dict[str, Any]:
    """zarr.create_array keyword arguments (serializer/compressors) for a tile codec name."""
    from zarr.codecs import BytesCodec, ZstdCodec

    if name == "jpeg":
        if not 1 <= quality <= 100:
            raise ValueError(f"jpeg quality must be in 1..100, got {quality}")
        return {"serializer": JpegCodec(level=quality), "compressors": None}
    if name == "png":
        return {"serializer": PngCodec(level=1), "compressors": None}
    if name == "raw":
        return {"serializer": BytesCodec(), "compressors": ZstdCodec(level=3)}
    raise ValueError(f"unknown tile codec {name!r}: choose jpeg, png or raw")
