"""OpenSlide (openslide-bin): the reference reader, and the first one ``auto`` tries.

It reads the most formats (SVS, NDPI, MRXS, DICOM, generic tiled TIFF...). For Aperio and
generic TIFFs its pixels may come from the native TIFF tile decoder (native_tiff.py) once a probe
read has shown both decode the same pixels; OpenSlide stays the source of metadata.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from wsi_ssl.slide.readers.base import (
    ReaderBase,
    RegionSource,
    positive_float,
    rgba_to_rgb,
)
from wsi_ssl.slide.readers.registry import register_reader

# Formats where the native TIFF decoder gives exactly OpenSlide's pixels (checked per slide by a probe).
_FAST_VENDORS = ("aperio", "generic-tiff")


def mpp_from_properties(props: dict[str, str], prefix: str) -> float | None:
    """Level-0 MPP from OpenSlide-style properties (``<prefix>.mpp-x``/``-y``), else from the TIFF
    resolution tags when their unit is physical; the mean of x and y when both are given."""
    x, y = positive_float(props.get(f"{prefix}.mpp-x")), positive_float(props.get(f"{prefix}.mpp-y"))
    if x and y:
        return (x + y) / 2
    if x or y:
        return x or y
    # Generic TIFFs: resolution tags, when their unit is physical (2 = inch, 3 = cm).
    unit = str(props.get("tiff.ResolutionUnit", "")).lower()
    res = positive_float(props.get("tiff.XResolution"))
    if res and unit in ("centimeter", "3"):
        return 1e4 / res
    if res and unit in ("inch", "2") and res > 1000:  # 72 dpi defaults are not a scan resolution
        return 25400.0 / res
    return None


@register_reader("openslide", auto_rank=0)
class OpenSlideReader(ReaderBase):
    """A slide opened with ``openslide.OpenSlide``; tiffslide.py reuses all of it but the library."""

    _prefix = "openslide"  # namespace of the library's own properties (vendor, mpp-x, ...)
    _slide: Any

    def _open(self) -> None:
        import openslide

        self._slide = openslide.OpenSlide(str(self.path))

    def _close(self) -> None:
        self._slide.close()

    def _read_properties(self) -> dict[str, str]:
        return {k: str(v) for k, v in self._slide.properties.items()}

    def _vendor(self) -> str:
        vendor = self.properties.get(f"{self._prefix}.vendor")
        return vendor if vendor and vendor != "None" else "generic-tiff"  # tiffslide writes "None" for a plain TIFF

    def _objective_power(self) -> float | None:
        return positive_float(self.properties.get(f"{self._prefix}.objective-power"))

    def _metadata_mpp(self) -> float | None:
        return mpp_from_properties(self.properties, self._prefix)

    def _level_geometry(self) -> list[tuple[tuple[int, int], float]]:
        return [
            ((int(w), int(h)), float(d))
            for (w, h), d in zip(self._slide.level_dimensions, self._slide.level_downsamples)
        ]

    def _read_raw(self, x0: int, y0: int, level: int, width: int, height: int) -> np.ndarray:
        return np.asarray(self._slide.read_region((x0, y0), level, (width, height)))

    def _fast_region_source(self) -> RegionSource | None:
        if self.vendor not in _FAST_VENDORS:
            return None
        from wsi_ssl.slide.readers.native_tiff import verified_native_regions

        return verified_native_regions(self.path, self._slide)

    @property
    def associated_images(self) -> list[str]:
        return sorted(self._slide.associated_images.keys())

    def associated_image(self, name: str) -> np.ndarray:
        return rgba_to_rgb(np.asarray(self._slide.associated_images[name].convert("RGBA")))

    def source_tile_size(self, level: int) -> int | None:
        """Edge in px of the file's own (square) tiles at ``level``, if the format says; reads and
        orderings aligned to it decode each source tile once."""
        value = self.properties.get(f"openslide.level[{level}].tile-width")
        if value is None:
            value = self.properties.get(f"tiffslide.level[{level}].tile-width")
        height = self.properties.get(
            f"openslide.level[{level}].tile-height", self.properties.get(f"tiffslide.level[{level}].tile-height")
        )
        try:
            w, h = int(value), int(height)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return None
        return w if w == h and w > 0 else None
