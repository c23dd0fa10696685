"""Zeiss CZI through pylibCZIrw (Zeiss's own maintained reader).

A CZI holds sub-blocks on a plane (scene, C, Z, T) and, for slide scans, a pyramid of them;
``CziReader.read(roi, zoom)`` composes a region at any zoom from the best pyramid layer, so we
expose power-of-two levels down to about 512 px and let the library pick its own layer (a CZI
without a pyramid still reads, from full resolution). Brightfield CZIs store ``Bgr24`` (or
``Bgra32``) in one channel; several grey channels are fluorescence and are refused with their
names. MPP comes from the ``Scaling/Items/Distance`` metadata (metres per pixel).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from wsi_ssl.slide.readers.base import ReaderBase, SlideRefusedError
from wsi_ssl.slide.readers.registry import register_reader
from wsi_ssl.slide.sniff import FileFacts, fluorescence_refusal

_COLOUR_TYPES = ("Bgr24", "Bgra32", "Bgr48")


@register_reader("czi")  # only for files it claims (.czi), or when named
class CziReader(ReaderBase):
    """A CZI opened with ``pylibCZIrw.czi.open_czi``."""

    _doc: Any
    _rect: Any
    _n_channels: int

    @classmethod
    def claims(cls, facts: FileFacts) -> bool:
        return facts.format == "czi"

    def _open(self) -> None:
        from pylibCZIrw import czi as pyczi

        self._doc = pyczi.CziReader(str(self.path))
        self._rect = self._doc.total_bounding_rectangle
        c0, c1 = self._doc.total_bounding_box.get("C", (0, 1))
        self._n_channels = int(c1 - c0)
        if self._n_channels > 1:  # separate channels: fluorescence (brightfield is one Bgr24 channel)
            names = [n for n in self._channel_names() if n]
            self._doc.close()
            raise SlideRefusedError(f"{self.path.name}: {fluorescence_refusal(self._n_channels, names)}")

    def _channel_names(self) -> list[str]:
        info = self._doc.metadata["ImageDocument"]["Metadata"].get("Information", {})
        chans = info.get("Image", {}).get("Dimensions", {}).get("Channels", {}).get("Channel", [])
        chans = chans if isinstance(chans, list) else [chans]
        return [str(c.get("@Name", "")) for c in chans]

    def _close(self) -> None:
        self._doc.close()

    def _read_properties(self) -> dict[str, str]:
        props = {"czi.pixel_type": ",".join(self._doc.pixel_types.values()), "czi.channels": str(self._n_channels)}
        for item in self._distances():
            props[f"czi.scaling.{item.get('@Id')}"] = str(item.get("Value"))
        return props

    def _distances(self) -> list[dict[str, Any]]:
        scaling = self._doc.metadata["ImageDocument"]["Metadata"].get("Scaling", {})
        items = scaling.get("Items", {}).get("Distance", [])
        return items if isinstance(items, list) else [items]

    def _vendor(self) -> str:
        return "zeiss-czi"

    def _metadata_mpp(self) -> float | None:
        from wsi_ssl.slide.readers.base import positive_float

        xs = {d.get("@Id"): positive_float(d.get("Value")) for d in self._distances()}
        vals = [v * 1e6 for v in (xs.get("X"), xs.get("Y")) if v]
        return sum(vals) / len(vals) if vals else None

    def _level_geometry(self) -> list[tuple[tuple[int, int], float]]:
        w, h = int(self._rect.w), int(self._rect.h)
        out, ds = [], 1
        while True:
            out.append(((max(1, w // ds), max(1, h // ds)), float(ds)))
            if max(w, h) // ds <= 512:
                return out
            ds *= 2

    def _read_raw(self, x0: int, y0: int, level: int, width: int, height: int) -> np.ndarray:
        import cv2

        ds = self.levels[level].downsample
        roi = (self._rect.x + x0, self._rect.y + y0, int(round(width * ds)), int(round(height * ds)))
        arr = self._doc.read(roi=roi, plane={"C": 0}, zoom=1.0 / ds, background_pixel=(1.0, 1.0, 1.0))
        if arr.dtype != np.uint8:  # Bgr48: 16-bit colour
            arr = (arr >> 8).astype(np.uint8)
        rgb = arr[..., 2::-1] if arr.shape[-1] >= 3 else np.repeat(arr[..., :1], 3, axis=-1)
        if rgb.shape[:2] != (height, width):  # the library rounds the zoomed size its own way
            rgb = cv2.resize(np.ascontiguousarray(rgb), (width, height), interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(rgb)

    def channels(self, facts: FileFacts) -> int | None:
        return 3 if self._n_channels == 1 else self._n_channels

    def photometric(self, facts: FileFacts) -> str | None:
        return "RGB" if any(t in _COLOUR_TYPES for t in self._doc.pixel_types.values()) else "MINISBLACK"
