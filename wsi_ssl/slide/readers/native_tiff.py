"""The native TIFF fast path: region reads straight from a tiled TIFF's own compressed tiles.

For TIFF-family slides (Aperio SVS, generic pyramidal TIFF) this reads each source tile's bytes
with one seek, decodes them with tifffile's codec (libjpeg-turbo through imagecodecs) and pastes
them into the region: no ARGB compositing, no PIL conversion, no zarr/asyncio layer per read, and
a small cache so a source tile shared by neighbouring blocks is decoded once. Measured in
benchmarks/tile.py against OpenSlide's and tiffslide's region reads on the same file.

Not a backend of its own: the OpenSlide reader (openslide.py) puts it in front of OpenSlide only
after ``verified_native_regions``'s probe read matched OpenSlide pixel for pixel, so OpenSlide
remains the reference for a slide's metadata and for what its pixels are.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import tifffile

from wsi_ssl.slide.readers.base import rgba_to_rgb


class NativeTiffRegions:
    """Region reads of a chunky 8-bit RGB tiled TIFF pyramid whose levels match OpenSlide's."""

    name = "native-tiff"

    def __init__(
        self,
        path: str | Path | tifffile.TiffFile,
        level_dimensions: list[tuple[int, int]],
        downsamples: list[float],
        cache_tiles: int = 96,
    ) -> None:
        import tifffile

        # An open TiffFile is used as it is: a slide at a URL (remote.py) shares tiffslide's,
        # whose file object serves prefetched source tiles from memory.
        self._tif = path if isinstance(path, tifffile.TiffFile) else tifffile.TiffFile(str(path))
        series = self._tif.series[0]
        pages = [lv.keyframe for lv in series.levels]
        dims = [(int(p.imagewidth), int(p.imagelength)) for p in pages]
        if dims[: len(level_dimensions)] != [tuple(d) for d in level_dimensions]:
            self.close()
            raise ValueError(f"tifffile sees levels {dims}, OpenSlide {level_dimensions}")
        for p in pages[: len(level_dimensions)]:
            if not p.is_tiled or p.samplesperpixel < 3 or p.dtype != np.uint8 or p.planarconfig != 1:
                self.close()
                raise ValueError("not a chunky 8-bit RGB tiled pyramid")
        self._pages = pages[: len(level_dimensions)]
        self._ds = list(downsamples)
        self._fh = self._tif.filehandle
        self._cache: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()
        self._cache_tiles = cache_tiles

    def _tile(self, level: int, index: int) -> np.ndarray:
        key = (level, index)
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        page = self._pages[level]
        self._fh.seek(page.dataoffsets[index])
        data = self._fh.read(page.databytecounts[index])
        seg: Any = page.decode(data, index, jpegtables=page.jpegtables)[0]
        tile = np.asarray(seg).reshape(page.tilelength, page.tilewidth, -1)[..., :3]
        self._cache[key] = tile
        if len(self._cache) > self._cache_tiles:
            self._cache.popitem(last=False)
        return tile

    def read_region(
        self, location: tuple[int, int], level: int, size: tuple[int, int], out: np.ndarray | None = None
    ) -> np.ndarray:
        """RGB uint8 [h, w, 3]; ``out`` (C-contiguous, that shape) is filled instead of a new array."""
        page = self._pages[level]
        ds = self._ds[level]
        lx, ly = int(round(location[0] / ds)), int(round(location[1] / ds))
        w, h = size
        iw, ih = int(page.imagewidth), int(page.imagelength)
        inside = lx >= 0 and ly >= 0 and lx + w <= iw and ly + h <= ih
        # Outside the image: white, like glass (the fill is skipped for the usual fully-inside read).
        if out is None:
            out = np.empty((h, w, 3), np.uint8)
        if not inside:
            out[...] = 255
        tw, th = int(page.tilewidth), int(page.tilelength)
        across = -(-iw // tw)
        x0, y0, x1, y1 = max(lx, 0), max(ly, 0), min(lx + w, iw), min(ly + h, ih)
        if x1 <= x0 or y1 <= y0:
            return out
        for ty in range(y0 // th, (y1 - 1) // th + 1):
            for tx in range(x0 // tw, (x1 - 1) // tw + 1):
                tile = self._tile(level, ty * across + tx)
                sx0, sy0 = max(x0, tx * tw), max(y0, ty * th)
                sx1, sy1 = min(x1, (tx + 1) * tw), min(y1, (ty + 1) * th)
                out[sy0 - ly : sy1 - ly, sx0 - lx : sx1 - lx] = tile[
                    sy0 - ty * th : sy1 - ty * th, sx0 - tx * tw : sx1 - tx * tw
                ]
        return out

    def close(self) -> None:
        try:
            self._tif.close()
        except Exception:  # noqa: BLE001, S110 - already closed
            pass


def probe_box(level0: tuple[int, int]) -> tuple[int, int, int]:
    """``(x, y, size)`` of the probe read of ``verified_native_regions``: up to 300 x 300 px at the
    centre of level 0 (a slide at a URL fetches its source tiles first, remote.py)."""
    w, h = level0
    size = min(300, w, h)
    return max(0, w // 2 - size // 2), max(0, h // 2 - size // 2), size


def verified_native_regions(path: Path | tifffile.TiffFile, slide: Any) -> NativeTiffRegions | None:
    """A direct tile decoder over the same file, if it decodes exactly OpenSlide's pixels.

    ``slide`` is the open ``openslide.OpenSlide`` (or ``tiffslide.TiffSlide``, whose API is the
    same, with ``path`` its open TiffFile: a slide at a URL, remote.py). Measured
    (benchmarks/tile.py): decoding the TIFF's own tiles directly is several times faster than
    OpenSlide's region reads (no premultiplied-ARGB compositing, no PIL round trip). The check is
    one probe read (``probe_box``); a file that fails it keeps OpenSlide.
    """
    try:
        fast = NativeTiffRegions(path, list(slide.level_dimensions), list(slide.level_downsamples))
    except Exception:  # noqa: BLE001 - not a plain tiled RGB TIFF pyramid: keep OpenSlide
        return None
    x, y, size = probe_box(slide.level_dimensions[0])
    ref = rgba_to_rgb(np.asarray(slide.read_region((x, y), 0, (size, size))))
    try:
        got: np.ndarray | None = fast.read_region((x, y), 0, (size, size))
    except Exception:  # noqa: BLE001 - a decoder error is a failed probe: keep OpenSlide
        got = None
    if got is None or got.shape != ref.shape or not np.array_equal(got, ref):
        fast.close()
        return None
    return fast
