"""Slides at ``s3://``, ``gs://`` or ``https://`` URLs, read in place with ranged reads.

``wsi_ssl.slide.readers.open_slide`` hands any URL here (``register_url_opener``, its one hook).
A TIFF-family slide (SVS, generic and OME TIFF, NDPI...) is read by tiffslide over an fsspec file
object, so tifffile's reads of the header, the tile offsets and each source tile become HTTP range
requests; nothing is downloaded whole. A DICOM series goes to ``remote_dicom.py`` (wsidicom).
OpenSlide reads local files only and is not offered for URLs (docs/storage.md).

Two kinds of reads, two paths (``fetched()`` counts the bytes of both, per process):

- The header and tile offset tables: many small reads, served by a block cache of
  ``BLOCK_SIZE`` blocks (a few requests per slide). One HEAD request per open gives the size
  (``note_open_size`` lets the tiling plan reuse it instead of asking again).
- The source tiles of a region: decoded, as for a local SVS or generic TIFF, by the native TIFF
  decoder (``native_tiff.py``: no zarr/asyncio round trip per read, tile by tile reads), over
  tiffslide's own TiffFile and after the same probe read proved it gives tiffslide's pixels. It
  reads source tiles one after another (seek, read), which over HTTP would be one round trip
  each, in series. So before a region is read its source tiles' byte ranges are looked up in the
  level's offset table and fetched in one concurrent ``cat_ranges`` call (ranges closer than
  ``MERGE_GAP``, e.g. a row of tiles stored back to back, merged into one), and the tiling block
  reader announces a whole shard's tiles the same way (``prefetch_regions``); the decoder's reads
  are then served from memory (``PrefetchFile``). The bytes fetched are the compressed source
  tiles, plus gaps under ``MERGE_GAP``.
"""

from __future__ import annotations

import contextlib
import io
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from upath import UPath

from wsi_ssl.slide.readers.base import BackendCannotOpen, RegionSource, SlideOpenError, SlideReader
from wsi_ssl.slide.readers.registry import register_url_opener
from wsi_ssl.slide.readers.tiffslide import TiffSlideReader
from wsi_ssl.storage.paths import AnyPath, as_path, note_open_size

BLOCK_SIZE = 64 * 1024  # GDAL reads COGs over HTTP in 16 KiB ranges; a source tile is 10-60 KiB
CACHE_TYPE = "blockcache"
CACHE_BLOCKS = 256  # 16 MiB per open slide at most
REMOTE_BACKENDS = ("auto", "tiffslide")


@dataclass
class FetchStats:
    """Bytes and range requests fetched from object storage by remote slides of this process."""

    requests: int = 0
    bytes: int = 0


_STATS = FetchStats()
_STATS_LOCK = threading.Lock()


def fetched() -> FetchStats:
    """A copy of this process's counters (tiling workers=1 runs in-process: tests read these)."""
    with _STATS_LOCK:
        return FetchStats(_STATS.requests, _STATS.bytes)


def _counting(fetch: Callable[[int, int], bytes]) -> Callable[[int, int], bytes]:
    def wrapped(start: int, end: int) -> bytes:
        data = fetch(start, end)
        with _STATS_LOCK:
            _STATS.requests += 1
            _STATS.bytes += len(data)
        return data

    return wrapped


def _count(n_requests: int, n_bytes: int) -> None:
    with _STATS_LOCK:
        _STATS.requests += n_requests
        _STATS.bytes += n_bytes


PREFETCH = True  # benchmarks/remote_tile.py turns it off to measure what it gains
NATIVE = True  # the native TIFF decoder for URLs too (``_fast_region_source``); off: tiffslide's reads
PREFETCH_KEEP = 32 * 1024 * 1024  # bytes of source tiles kept per open slide
MERGE_GAP = 16 * 1024  # ranges closer than this are fetched as one: a gap under one source tile
# (10-60 KiB of JPEG) costs less than a request (~5 ms of CPU on loopback S3, client and server);
# 32 KiB already fetched > 80% of a small sparse slide (tests/storage), 4 KiB twice the requests


class PrefetchFile(io.RawIOBase):
    """A read-only file over an fsspec file: reads that start at a prefetched offset and fit in
    its bytes are served from memory, any other read goes to the fsspec file (its block cache).

    Prefetched tiles are kept up to ``PREFETCH_KEEP`` bytes (least recently used dropped first):
    neighbouring regions share the source tiles on their border.
    """

    def __init__(self, inner: Any, fs: Any, path: str) -> None:
        super().__init__()
        self._inner, self._fs, self._path = inner, fs, path
        self._pos = 0
        self._ready: OrderedDict[int, memoryview] = OrderedDict()
        self._ready_bytes = 0
        self.name = path
        self.size = int(inner.size)

    def prefetch(self, ranges: list[tuple[int, int]]) -> None:
        """Fetch ``(offset, nbytes)`` ranges in one concurrent request batch (see module doc)."""
        from fsspec.utils import merge_offset_ranges

        for o, _ in ranges:
            if o in self._ready:
                self._ready.move_to_end(o)
        wanted = sorted({(o, n) for o, n in ranges if n > 0 and o not in self._ready})
        if not wanted:
            return
        starts = [o for o, _ in wanted]
        ends = [o + n for o, n in wanted]
        _, m_starts, m_ends = merge_offset_ranges([self._path] * len(wanted), starts, ends, max_gap=MERGE_GAP)
        blobs = self._fs.cat_ranges([self._path] * len(m_starts), m_starts, m_ends)
        _count(len(m_starts), sum(len(b) for b in blobs))
        j = 0
        for o, n in wanted:
            while not m_starts[j] <= o < m_ends[j]:
                j += 1
            view = memoryview(blobs[j])[o - m_starts[j] : o - m_starts[j] + n]
            if len(view) == n:  # else (a short read at the file's end) the inner file answers
                self._ready[o] = view
                self._ready_bytes += n
        while self._ready_bytes > PREFETCH_KEEP and len(self._ready) > len(wanted):
            _, old = self._ready.popitem(last=False)
            self._ready_bytes -= len(old)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence == 0:
            self._pos = offset
        elif whence == 1:
            self._pos += offset
        else:
            self._pos = self.size + offset
        return self._pos

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            size = self.size - self._pos
        ready = self._ready.get(self._pos)
        if ready is not None and size <= len(ready):
            data = bytes(ready[:size])
        else:
            self._inner.seek(self._pos)
            data = self._inner.read(size)
        self._pos += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        memoryview(buffer).cast("B")[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._ready.clear()
        self._inner.close()
        super().close()


class PrefetchingRegions:
    """A ``RegionSource`` that fetches a region's source tiles in one batch (``prefetch``) before
    the decoder under it reads them one by one from the file."""

    def __init__(self, inner: RegionSource, prefetch: Callable[[int, int, int, int, int], None]) -> None:
        self._inner, self._prefetch = inner, prefetch
        self.name = inner.name

    def read_region(
        self, location: tuple[int, int], level: int, size: tuple[int, int], out: np.ndarray | None = None
    ) -> np.ndarray:
        if PREFETCH:
            self._prefetch(int(location[0]), int(location[1]), int(level), int(size[0]), int(size[1]))
        return self._inner.read_region(location, level, size, out)

    def close(self) -> None:
        self._inner.close()


def open_remote_file(path: UPath, info: dict[str, Any] | None = None) -> Any:
    """A seekable binary file over ``path`` whose reads are ranged requests (counted); the
    ``info`` of a HEAD request already made saves the one the file object would make."""
    opts: dict[str, Any] = {"block_size": BLOCK_SIZE, "cache_type": CACHE_TYPE}
    if info is not None:
        opts["size"] = int(info["size"])
    if CACHE_TYPE == "blockcache":
        opts["cache_options"] = {"maxblocks": CACHE_BLOCKS}
    f = path.fs.open(path.path, "rb", **opts)
    if info is not None:  # s3fs reads the ETag on its first range request (hasattr would, too)
        with contextlib.suppress(AttributeError):
            f.details = info
    cache = getattr(f, "cache", None)
    if cache is not None and hasattr(cache, "fetcher"):
        cache.fetcher = _counting(cache.fetcher)
    return PrefetchFile(f, path.fs, path.path)


class RemoteTiffSlideReader(TiffSlideReader):
    """tiffslide over an fsspec file object; everything else is ``TiffSlideReader``'s."""

    _file: Any = None
    _info: dict[str, Any] | None = None

    def __init__(self, path: AnyPath, mpp_override: float | None = None, fast_reads: bool = True) -> None:
        # ReaderBase's __init__ checks a local path; here existence is one HEAD request.
        self.path = path  # type: ignore[assignment]  # a UPath: the pathlib API the readers use
        self._pixels = None
        remote = path if isinstance(path, UPath) else UPath(str(path))
        try:  # one HEAD request: existence and size (the file object then needs none)
            info = remote.fs.info(remote.path)
        except FileNotFoundError:
            raise SlideOpenError(f"slide not found: {path}") from None
        except (OSError, PermissionError) as exc:
            raise SlideOpenError(f"cannot reach {path}: {type(exc).__name__}: {exc}") from None
        if info.get("type") != "file":
            raise SlideOpenError(f"slide not found: {path} (a folder)")
        self._remote = remote
        self._info = info
        try:
            self._open()
            note_open_size(str(remote), int(info["size"]))
        except Exception as exc:  # tifffile's and fsspec's own error types
            raise BackendCannotOpen(path, self.backend, exc) from exc  # type: ignore[arg-type]
        try:
            self._init_metadata(mpp_override, fast_reads=fast_reads)
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        import tiffslide

        self._file = open_remote_file(self._remote, self._info)
        self._slide = tiffslide.TiffSlide(self._file)

    def _fast_region_source(self) -> RegionSource | None:
        """The native TIFF decoder (native_tiff.py) over tiffslide's open TiffFile, if its probe
        read gives tiffslide's pixels: no zarr/asyncio round trip per region read, and tile by
        tile reads (``cheap_small_reads``) as for a local slide. Its reads prefetch like ours."""
        from wsi_ssl.slide.readers.native_tiff import probe_box, verified_native_regions
        from wsi_ssl.slide.readers.openslide import _FAST_VENDORS

        vendor = self._slide.properties.get("tiffslide.vendor") or "generic-tiff"  # None for a generic TIFF
        if not NATIVE or vendor not in _FAST_VENDORS:
            return None
        if PREFETCH:  # the probe's source tiles in one request, not one block request each
            x, y, size = probe_box(self._slide.level_dimensions[0])
            self._prefetch_region(x, y, 0, size, size)
        native = verified_native_regions(self._slide.ts_tifffile, self._slide)
        return None if native is None else PrefetchingRegions(native, self._prefetch_region)

    def _read_raw(self, x0: int, y0: int, level: int, width: int, height: int) -> np.ndarray:
        if PREFETCH:
            self._prefetch_region(x0, y0, level, width, height)
        return super()._read_raw(x0, y0, level, width, height)

    def prefetch_regions(self, regions: list[tuple[int, int, int, int, int]]) -> int:
        """Fetch the source tiles of coming ``(x0, y0, level, width, height)`` region reads in one
        request batch (the block reader announces a shard's regions): as many leading regions as
        fit in half of ``PREFETCH_KEEP`` (at least one). Returns how many; the block reader
        announces the rest when it gets to them."""
        if not PREFETCH:
            return len(regions)
        ranges: dict[int, int] = {}
        total = covered = 0
        for region in regions:
            more = {o: n for o, n in self._region_ranges(*region) if o not in ranges}
            if covered and total + sum(more.values()) > PREFETCH_KEEP // 2:
                break
            ranges.update(more)
            total += sum(more.values())
            covered += 1
        if ranges:
            self._file.prefetch(list(ranges.items()))
        return covered

    def _prefetch_region(self, x0: int, y0: int, level: int, width: int, height: int) -> None:
        """Fetch the source tiles that the region overlaps, all at once (module doc)."""
        ranges = self._region_ranges(x0, y0, level, width, height)
        if ranges:
            self._file.prefetch(ranges)

    def _region_ranges(self, x0: int, y0: int, level: int, width: int, height: int) -> list[tuple[int, int]]:
        """``(offset, nbytes)`` of each source tile of ``level`` that the region overlaps."""
        slide = self._slide
        try:
            series = slide.ts_tifffile.series[slide.properties["tiffslide.series-index"]]
            page = series.levels[level].keyframe
            tw, th = int(page.tilewidth), int(page.tilelength)
        except (AttributeError, IndexError, KeyError, TypeError):
            return []
        if not (tw and th) or not getattr(page, "is_tiled", False):
            return []  # a stripped level: tifffile's own reads (rare for slides)
        offsets, counts = page.dataoffsets, page.databytecounts
        lx, ly = slide._read_region_loc_transform((x0, y0), level)
        across = -(-int(page.imagewidth) // tw)
        down = -(-int(page.imagelength) // th)
        tx0, ty0 = max(0, lx // tw), max(0, ly // th)
        tx1, ty1 = min(across - 1, (lx + width - 1) // tw), min(down - 1, (ly + height - 1) // th)
        return [
            (int(offsets[ty * across + tx]), int(counts[ty * across + tx]))
            for ty in range(ty0, ty1 + 1)
            for tx in range(tx0, tx1 + 1)
            if ty * across + tx < len(offsets)
        ]

    def _close(self) -> None:
        note_open_size(str(self._remote), None)
        try:
            self._slide.close()
        finally:
            if self._file is not None:
                self._file.close()


@register_url_opener
def open_remote_slide(
    path: str | AnyPath, backend: str = "auto", mpp_override: float | None = None, fast_reads: bool = True
) -> SlideReader:
    """The reader for a slide URL (see module doc); ``backend`` must be ``auto`` or ``tiffslide``
    (``auto`` or ``wsidicom`` for a DICOM series: ``remote_dicom.py``)."""
    url = as_path(path)
    if not isinstance(url, UPath):  # a file:// URL: a local file after all
        from wsi_ssl.slide.readers.registry import open_slide

        return open_slide(url, backend, mpp_override, fast_reads)
    from wsi_ssl.slide.readers.remote_dicom import RemoteWsiDicomReader, is_dicom_url

    if backend in ("auto", "wsidicom") and is_dicom_url(url):
        return RemoteWsiDicomReader(url, mpp_override=mpp_override, fast_reads=fast_reads)
    if backend not in REMOTE_BACKENDS:
        raise SlideOpenError(
            f"cannot open {url} with backend {backend!r}: slides at URLs are read with tiffslide "
            "(use --backend auto or tiffslide)"
        )
    return RemoteTiffSlideReader(url, mpp_override=mpp_override, fast_reads=fast_reads)


def list_remote_slides(url: str, suffixes: set[str]) -> list[tuple[str, AnyPath]]:
    """``(slide_id, url)`` for one slide URL, or for every slide file under a URL prefix
    (searched recursively; ``.dcm`` objects are grouped into series by the caller,
    ``discover.py``); none for an empty prefix."""
    root = as_path(url)
    assert isinstance(root, UPath)
    if root.suffix.lower() in suffixes:
        return [(root.stem, cast(AnyPath, root))]
    if not root.is_dir():
        return []  # nothing there: the caller says no slides were found
    found = [p for p in root.rglob("*") if p.suffix.lower() in suffixes and not p.name.startswith(".")]
    return [(p.stem, cast(AnyPath, p)) for p in sorted(found, key=str)]
