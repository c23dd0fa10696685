"""tiffslide: reads what OpenSlide refuses (e.g. Aperio JPEG 2000 through imagecodecs, odd tiled
TIFFs); ``auto`` falls back to it. Its API mirrors OpenSlide's, so only the library differs.
"""

from __future__ import annotations

import numpy as np

from wsi_ssl.slide.readers.base import RegionSource
from wsi_ssl.slide.readers.openslide import OpenSlideReader
from wsi_ssl.slide.readers.registry import register_reader


@register_reader("tiffslide", auto_rank=1)
class TiffSlideReader(OpenSlideReader):
    """A slide opened with ``tiffslide.TiffSlide``: its properties are ``tiffslide.*``, its region
    reads come back as arrays, and it has no native TIFF fast path (it already decodes tiles)."""

    _prefix = "tiffslide"

    def _open(self) -> None:
        import tiffslide

        self._slide = tiffslide.TiffSlide(str(self.path))

    def _read_raw(self, x0: int, y0: int, level: int, width: int, height: int) -> np.ndarray:
        return np.asarray(self._slide.read_region((x0, y0), level, (width, height), as_array=True))

    def _fast_region_source(self) -> RegionSource | None:
        return None
