"""What every slide reader offers, and the shared half of implementing it.

``SlideReader`` is the protocol the rest of the package codes against: the tiler (levels, MPP,
region reads), ``wsi-ssl info`` (``describe``), tissue detection (``read_at_mpp`` over levels and
regions) and MIL heatmaps (thumbnail, regions). ``ReaderBase`` implements everything that does not
depend on the file library (MPP per level and its override, transparent-to-white compositing, the
DICOM YCbCr correction, thumbnails, ``describe``), so a backend supplies only a few ``_hooks``.

Conventions every reader keeps: pixels are RGB uint8 numpy arrays; coordinates are level-0 pixels;
transparent areas (outside the scanned region) are composited onto white, as glass; MPP is a
measured microns-per-pixel from the file or an explicit override, never inferred from objective
power.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, Self, runtime_checkable

import numpy as np

from wsi_ssl.slide.color import dicom_frames_mislabelled_rgb, ycbcr_to_rgb
from wsi_ssl.slide.sniff import FileFacts

log = logging.getLogger(__name__)


_WHOLE_LEVEL_PIXELS = 4096 * 4096  # larger levels are never read whole (thumbnail)


class SlideOpenError(RuntimeError):
    """The file is missing, corrupt, truncated, or in a format no backend reads."""


class BackendCannotOpen(SlideOpenError):
    """One backend's library refused the file; ``auto`` then tries the next backend.

    Only this failure moves ``auto`` on: a slide a backend did open but found unusable (no
    readable levels, a bad MPP override) is reported as is, not retried elsewhere.
    """

    def __init__(self, path: Path, backend: str, exc: BaseException) -> None:
        text = str(exc).strip()  # the library's own words; its exception class only when it has none
        self.reason = f"{backend}: {text or type(exc).__name__}"
        super().__init__(f"cannot open {path}: {self.reason}")


class SlideRefusedError(SlideOpenError):
    """A file no reader should tile (fluorescence, unsupported vendor format): the message says
    why, and ``auto`` tries no other reader."""


class MissingMPPError(ValueError):
    """The slide carries no microns-per-pixel and no override was given."""


@dataclass(frozen=True)
class LevelInfo:
    index: int
    width: int
    height: int
    downsample: float
    mpp: float | None


@runtime_checkable
class SlideReader(Protocol):
    """A whole-slide image with its levels, true MPP and pixel access (see the module docstring).

    Open one with ``wsi_ssl.slide.readers.open_slide(path, backend)``; a reader class is
    constructed as ``Reader(path, mpp_override=None, fast_reads=True)``.
    """

    path: Path
    backend: str  # the registry name of the reader that opened the file ("openslide", ...)
    pixel_backend: str  # what decodes the pixels ("native-tiff" when the fast path is on)
    vendor: str
    properties: dict[str, str]
    mpp: float | None  # level 0, after any override
    mpp_source: str  # "metadata", "override" or "missing"
    objective_power: float | None
    levels: list[LevelInfo]
    ycbcr_fix: bool

    @property
    def dimensions(self) -> tuple[int, int]: ...

    @property
    def cheap_small_reads(self) -> bool: ...

    @property
    def associated_images(self) -> list[str]: ...

    def require_mpp(self) -> float: ...

    def read_region(self, x0: int, y0: int, level: int, width: int, height: int) -> np.ndarray: ...

    def read_region_into(self, x0: int, y0: int, level: int, out: np.ndarray) -> np.ndarray: ...

    def thumbnail(self, max_size: tuple[int, int]) -> np.ndarray: ...

    def associated_image(self, name: str) -> np.ndarray: ...

    def source_tile_size(self, level: int) -> int | None: ...

    def best_level_for_downsample(self, downsample: float) -> int: ...

    def describe(self) -> dict[str, Any]: ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...


class RegionSource(Protocol):
    """A faster pixel decoder a reader may put in front of its library (the native TIFF path)."""

    name: str  # reported as the reader's ``pixel_backend``

    def read_region(
        self, location: tuple[int, int], level: int, size: tuple[int, int], out: np.ndarray | None = None
    ) -> np.ndarray: ...

    def close(self) -> None: ...


def positive_float(value: Any) -> float | None:
    """``value`` as a finite float > 0, else None (metadata strings are often empty or '0')."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) and f > 0 else None


def rgba_to_rgb(rgba: np.ndarray) -> np.ndarray:
    """Composite onto white: transparent pixels are outside the scan, i.e. glass."""
    if rgba.shape[-1] == 3:
        return rgba
    alpha = rgba[..., 3]
    rgb = rgba[..., :3]
    if alpha.min() == 255:
        return np.ascontiguousarray(rgb)
    a = alpha[..., None].astype(np.float32) / 255.0
    out: np.ndarray = (rgb.astype(np.float32) * a + 255.0 * (1.0 - a) + 0.5).astype(np.uint8)
    return out


class ReaderBase:
    """The backend-independent half of a ``SlideReader``; subclasses fill in the ``_hooks``.

    ``backend`` and ``auto_rank`` are set by ``@register_reader``. Construction opens the file
    (``_open``; any exception becomes ``BackendCannotOpen``), then reads metadata in a fixed order.
    """

    backend: str = ""
    auto_rank: ClassVar[int | None] = None  # position in ``auto``'s order; None: only when named

    def __init__(self, path: str | Path, mpp_override: float | None = None, fast_reads: bool = True) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise SlideOpenError(f"slide not found: {self.path}")
        self._pixels: RegionSource | None = None  # a faster, verified-identical decoder, if any
        try:
            self._open()
        except SlideRefusedError:
            raise
        except Exception as exc:  # each library has its own error types
            raise BackendCannotOpen(self.path, self.backend, exc) from exc
        try:
            self._init_metadata(mpp_override, fast_reads)
        except (SlideOpenError, ValueError):  # our own findings (no levels, a bad override): as is
            self.close()
            raise
        except Exception as exc:  # the library opened lazily and fails on its metadata: next backend
            self.close()
            raise BackendCannotOpen(self.path, self.backend, exc) from exc

    def _init_metadata(self, mpp_override: float | None, fast_reads: bool) -> None:
        props = self._read_properties()
        self.properties: dict[str, str] = props
        self.vendor: str = self._vendor()
        self.objective_power: float | None = self._objective_power()
        meta_mpp = self._metadata_mpp()
        if mpp_override is not None:
            if not mpp_override > 0:
                raise ValueError(f"mpp_override must be > 0, got {mpp_override}")
            self.mpp: float | None = float(mpp_override)
            self.mpp_source: str = "override"
        else:
            self.mpp = meta_mpp
            self.mpp_source = "metadata" if meta_mpp else "missing"
        if fast_reads:
            self._pixels = self._fast_region_source()
        self.pixel_backend: str = self._pixels.name if self._pixels is not None else self.backend
        self.ycbcr_fix: bool = dicom_frames_mislabelled_rgb(self._color_probe_path(), props)
        if self.ycbcr_fix:
            log.info("%s: DICOM frames are YCbCr though tagged RGB; converting to RGB", self.path.name)
        self.levels: list[LevelInfo] = [
            LevelInfo(i, int(w), int(h), float(d), self.mpp * float(d) if self.mpp else None)
            for i, ((w, h), d) in enumerate(self._level_geometry())
        ]
        if not self.levels or self.levels[0].width < 1 or self.levels[0].height < 1:
            raise SlideOpenError(f"{self.path}: slide has no readable levels")

    # -- hooks: what a backend supplies ---------------------------------------------------------
    @classmethod
    def claims(cls, facts: FileFacts) -> bool:
        """True when ``auto`` should try this reader first for a file with these sniffed facts
        (e.g. tiffslide for OME-TIFF, whose sub-IFD pyramid OpenSlide does not see)."""
        return False

    def _color_probe_path(self) -> Path:
        """A file whose first JPEG frame tells whether DICOM frames are mislabelled YCbCr."""
        return self.path

    def _open(self) -> None:
        """Open ``self.path`` with the backend's library; raise anything if it cannot."""
        raise NotImplementedError

    def _read_properties(self) -> dict[str, str]:
        raise NotImplementedError

    def _vendor(self) -> str:
        raise NotImplementedError

    def _objective_power(self) -> float | None:
        return None

    def _metadata_mpp(self) -> float | None:
        """Level-0 microns per pixel as the file states it, else None."""
        raise NotImplementedError

    def _level_geometry(self) -> list[tuple[tuple[int, int], float]]:
        """``((width, height), downsample)`` per level, finest first."""
        raise NotImplementedError

    def _read_raw(self, x0: int, y0: int, level: int, width: int, height: int) -> np.ndarray:
        """RGB or RGBA uint8 [height, width, C]; compositing and colour fixes happen in the base."""
        raise NotImplementedError

    def _fast_region_source(self) -> RegionSource | None:
        """A faster decoder proven to give this backend's pixels, if the backend has one."""
        return None

    def _close(self) -> None:
        """Release the library's handle (called once per ``close``; errors are ignored)."""

    @property
    def associated_images(self) -> list[str]:
        return []

    def associated_image(self, name: str) -> np.ndarray:
        raise KeyError(f"{self.path.name}: no associated image {name!r}")

    def source_tile_size(self, level: int) -> int | None:
        """Edge in px of the file's own (square) tiles at ``level``, if the format says; reads and
        orderings aligned to it decode each source tile once."""
        return None

    # -- metadata -------------------------------------------------------------------------------
    @property
    def dimensions(self) -> tuple[int, int]:
        return self.levels[0].width, self.levels[0].height

    def require_mpp(self) -> float:
        if self.mpp is None:
            raise MissingMPPError(
                f"{self.path.name}: the file carries no microns-per-pixel (MPP) metadata; "
                "pass --mpp-override VALUE (e.g. 0.25 for a 40x scan) or an mpp column in the slides CSV"
            )
        return self.mpp

    def best_level_for_downsample(self, downsample: float) -> int:
        """The coarsest level whose downsample does not exceed ``downsample`` (never upsamples)."""
        best = 0
        for lv in self.levels:
            if lv.downsample <= downsample * 1.0001:
                best = lv.index
        return best

    # -- pixels ---------------------------------------------------------------------------------
    def read_region(self, x0: int, y0: int, level: int, width: int, height: int) -> np.ndarray:
        """RGB uint8 [height, width, 3] at ``level``; (x0, y0) is the top-left in level-0 pixels."""
        if self._pixels is not None:
            arr = self._pixels.read_region((int(x0), int(y0)), int(level), (int(width), int(height)))
        else:
            arr = self._read_raw(int(x0), int(y0), int(level), int(width), int(height))
        rgb = rgba_to_rgb(arr)
        return ycbcr_to_rgb(rgb) if self.ycbcr_fix else rgb

    @property
    def cheap_small_reads(self) -> bool:
        """True when reading tile by tile costs no more than cutting tiles from big regions:
        the native TIFF reader caches decoded source tiles and copies into a reused buffer."""
        return self._pixels is not None

    def read_region_into(self, x0: int, y0: int, level: int, out: np.ndarray) -> np.ndarray:
        """Fill a reused C-contiguous uint8 [h, w, 3] buffer (no copy on the native TIFF path)."""
        if self._pixels is None or self.ycbcr_fix:
            out[...] = self.read_region(x0, y0, level, out.shape[1], out.shape[0])
            return out
        return self._pixels.read_region((int(x0), int(y0)), int(level), (out.shape[1], out.shape[0]), out=out)

    def thumbnail(self, max_size: tuple[int, int]) -> np.ndarray:
        """The whole slide as RGB uint8 fitting in ``max_size`` (width, height), aspect kept.

        As OpenSlide's ``get_thumbnail``: the whole best level for the downsample, shrunk with
        Lanczos; but through ``read_region``, so colour fixes and white compositing apply. A level
        too big to hold (a non-pyramidal slide) is first shrunk block by block, bounding memory.
        """
        from PIL import Image  # not at import time: ``wsi-ssl --help`` lists --backend choices from here

        w0, h0 = self.dimensions
        want = max(w0 / max_size[0], h0 / max_size[1])
        level = self.best_level_for_downsample(want)
        lv = self.levels[level]
        if lv.width * lv.height > _WHOLE_LEVEL_PIXELS:  # no pyramid: shrink block by block
            from wsi_ssl.slide.thumbnail import read_downsampled

            image = Image.fromarray(read_downsampled(self, max(want / 2, 1.0)))
        else:
            image = Image.fromarray(self.read_region(0, 0, level, lv.width, lv.height))
        image.thumbnail(max_size, Image.Resampling.LANCZOS)
        return np.asarray(image)

    def channels(self, facts: FileFacts) -> int | None:
        """Colour channels of the pixel data (the header's count; 3 for RGB once composited)."""
        return facts.channels or 3

    def photometric(self, facts: FileFacts) -> str | None:
        """Photometric interpretation as the file states it (what ``info`` shows)."""
        return facts.photometric or self.properties.get("dicom.PhotometricInterpretation")

    # -- lifetime -------------------------------------------------------------------------------
    def close(self) -> None:
        for release in (self._close, self._pixels.close if self._pixels is not None else None):
            try:
                if release is not None:
                    release()
            except Exception:  # noqa: BLE001, S110 - closing twice or a backend without close: nothing to release
                pass

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def describe(self) -> dict[str, Any]:
        from wsi_ssl.slide.sniff import sniff

        facts = sniff(self.path)
        return {
            "format": facts.format,
            "channels": self.channels(facts),
            "channel_names": list(facts.channel_names),
            "photometric": self.photometric(facts),
            "path": str(self.path),
            "backend": self.backend,
            "pixel_backend": self.pixel_backend,
            "vendor": self.vendor,
            "dimensions": list(self.dimensions),
            "mpp": self.mpp,
            "mpp_source": self.mpp_source,
            "objective_power": self.objective_power,
            "levels": [
                {
                    "level": lv.index,
                    "width": lv.width,
                    "height": lv.height,
                    "downsample": round(lv.downsample, 4),
                    "mpp": round(lv.mpp, 4) if lv.mpp else None,
                }
                for lv in self.levels
            ],
            "associated_images": self.associated_images,
            "color_fix": "ycbcr->rgb" if self.ycbcr_fix else None,
        }
