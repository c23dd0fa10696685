"""tiffslide: reads what OpenSlide refuses (e.g. Aperio JPEG 2000 through imagecodecs, odd tiled
TIFFs) and OME-TIFF pyramids (which it claims: ``auto`` tries it first for them); ``auto`` falls
back to it. Its API mirrors OpenSlide's, so only the library differs.
"""

from __future__ import annotations

import numpy as np

from wsi_ssl.slide.readers.base import RegionSource
from wsi_ssl.slide.readers.openslide import OpenSlideReader
from wsi_ssl.slide.readers.registry import register_reader
from wsi_ssl.slide.sniff import FileFacts


@register_reader("tiffslide", auto_rank=1)
class TiffSlideReader(OpenSlideReader):
    """A slide opened with ``tiffslide.TiffSlide``: its properties are ``tiffslide.*``, its region
    reads come back as arrays, and it has no native TIFF fast path (it already decodes tiles)."""

    _prefix = "tiffslide"

    @classmethod
    def claims(cls, facts: FileFacts) -> bool:
        """OME-TIFF: tiffslide reads its sub-IFD pyramid and OME pixel size; OpenSlide sees level 0."""
        return facts.format == "ome-tiff"

    def _metadata_mpp(self) -> float | None:
        """tiffslide's MPP, else the OME-XML pixel size (tiffslide reads only resolution tags)."""
        from wsi_ssl.slide.readers.base import positive_float
        from wsi_ssl.slide.sniff import sniff

        return super()._metadata_mpp() or positive_float(sniff(self.path).notes.get("mpp"))

    def _open(self) -> None:
        import tiffslide

        self._slide = tiffslide.TiffSlide(str(self.path))

    def _read_raw(self, x0: int, y0: int, level: int, width: int, height: int) -> np.ndarray:
        return np.asarray(self._slide.read_region((x0, y0), level, (width, height), as_array=True))

    def _fast_region_source(self) -> RegionSource | None:
        return None
