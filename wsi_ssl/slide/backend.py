"""One reader interface over OpenSlide and tiffslide, with true MPP per pyramid level.

OpenSlide (openslide-bin) reads the most formats (SVS, NDPI, MRXS, DICOM, generic tiled TIFF...);
tiffslide reads what OpenSlide refuses (e.g. Aperio JPEG 2000 through imagecodecs, odd tiled
TIFFs). ``backend="auto"`` tries OpenSlide first and falls back. Every read returns an RGB uint8
numpy array; transparent areas (outside the scanned region) are composited onto white, as glass.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from wsi_ssl.slide.color import dicom_frames_mislabelled_rgb, ycbcr_to_rgb

log = logging.getLogger(__name__)
Backend = Literal["auto", "openslide", "tiffslide"]


class SlideOpenError(RuntimeError):
    """The file is missing, corrupt, truncated, or in a format no backend reads."""


class MissingMPPError(ValueError):
    """The slide carries no microns-per-pixel and no override was given."""


@dataclass(frozen=True)
class LevelInfo:
    index: int
    width: int
    height: int
    downsample: float
    mpp: float | None


def _float(value: Any) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) and f > 0 else None


def _mpp_from_properties(props: dict[str, str], prefix: str) -> float | None:
    x, y = _float(props.get(f"{prefix}.mpp-x")), _float(props.get(f"{prefix}.mpp-y"))
    if x and y:
        return (x + y) / 2
    if x or y:
        return x or y
    # Generic TIFFs: resolution tags, when their unit is physical (2 = inch, 3 = cm).
    unit = str(props.get("tiff.ResolutionUnit", "")).lower()
    res = _float(props.get("tiff.XResolution"))
    if res and unit in ("centimeter", "3"):
        return 1e4 / res
    if res and unit in ("inch", "2") and res > 1000:  # 72 dpi defaults are not a scan resolution
        return 25400.0 / res
    return None


def _rgba_to_rgb(rgba: np.ndarray) -> np.ndarray:
    if rgba.shape[-1] == 3:
        return rgba
    alpha = rgba[..., 3]
    rgb = rgba[..., :3]
    if alpha.min() == 255:
        return np.ascontiguousarray(rgb)
    a = alpha[..., None].astype(np.float32) / 255.0
    return (rgb.astype(np.float32) * a + 255.0 * (1.0 - a) + 0.5).astype(np.uint8)


def _open_backend(path: Path, backend: str) -> tuple[Any, str]:
    errors: list[str] = []
    order = ["openslide", "tiffslide"] if backend == "auto" else [backend]
    for name in order:
        try:
            if name == "openslide":
                import openslide

                return openslide.OpenSlide(str(path)), name
            import tiffslide

            return tiffslide.TiffSlide(str(path)), name
        except Exception as exc:  # each library has its own error types
            errors.append(f"{name}: {type(exc).__name__}: {exc}".strip())
    raise SlideOpenError(f"cannot open {path}: " + "; ".join(errors))


# Formats where tiffslide decodes exactly what OpenSlide decodes (checked per slide by a probe read).
_FAST_VENDORS = ("aperio", "generic-tiff")


def _fast_pixel_reader(path: Path, slide: Any) -> Any | None:
    """A direct tile decoder over the same file, if it decodes exactly OpenSlide's pixels.

    Measured (benchmarks/tile.py): decoding the TIFF's own tiles directly is several times faster
    than OpenSlide's region reads (no premultiplied-ARGB compositing, no PIL round trip). OpenSlide
    stays the reference for metadata and for every file this probe does not clear.
    """
    from wsi_ssl.slide.native_tiff import NativeTiffRegions

    try:
        fast = NativeTiffRegions(path, list(slide.level_dimensions), list(slide.level_downsamples))
    except Exception:  # not a plain tiled RGB TIFF pyramid: keep OpenSlide
        return None
    w, h = slide.level_dimensions[0]
    size = min(300, w, h)
    x, y = max(0, w // 2 - size // 2), max(0, h // 2 - size // 2)
    ref = _rgba_to_rgb(np.asarray(slide.read_region((x, y), 0, (size, size))))
    try:
        got = fast.read_region((x, y), 0, (size, size))
    except Exception:
        got = None
    if got is None or got.shape != ref.shape or not np.array_equal(got, ref):
        fast.close()
        return None
    return fast


class SlideReader:
    """A whole-slide image with its levels, true MPP and pixel access."""

    def __init__(self, path: str | Path, backend: Backend = "auto", mpp_override: float | None = None,
                 fast_reads: bool = True) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise SlideOpenError(f"slide not found: {self.path}")
        self._slide, self.backend = _open_backend(self.path, backend)
        props = {k: str(v) for k, v in self._slide.properties.items()}
        self.properties = props
        prefix = "openslide" if self.backend == "openslide" else "tiffslide"
        self.vendor: str = props.get(f"{prefix}.vendor") or "generic-tiff"
        self.objective_power = _float(props.get(f"{prefix}.objective-power"))
        meta_mpp = _mpp_from_properties(props, prefix)
        if mpp_override is not None:
            if not mpp_override > 0:
                raise ValueError(f"mpp_override must be > 0, got {mpp_override}")
            self.mpp: float | None = float(mpp_override)
            self.mpp_source = "override"
        else:
            self.mpp = meta_mpp
            self.mpp_source = "metadata" if meta_mpp else "missing"
        self._pixels: Any = None  # a faster, verified-identical reader for read_region, if any
        if fast_reads and self.backend == "openslide" and self.vendor in _FAST_VENDORS:
            self._pixels = _fast_pixel_reader(self.path, self._slide)
        self.pixel_backend = "native-tiff" if self._pixels is not None else self.backend
        self.ycbcr_fix = dicom_frames_mislabelled_rgb(self.path, props)
        if self.ycbcr_fix:
            log.info("%s: DICOM frames are YCbCr though tagged RGB; converting to RGB", self.path.name)
        self.levels = [
            LevelInfo(i, int(w), int(h), float(d), self.mpp * float(d) if self.mpp else None)
            for i, ((w, h), d) in enumerate(zip(self._slide.level_dimensions, self._slide.level_downsamples))
        ]
        if not self.levels or self.levels[0].width < 1 or self.levels[0].height < 1:
            raise SlideOpenError(f"{self.path}: slide has no readable levels")

    # -- metadata -----------------------------------------------------------------------------
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

    @property
    def associated_images(self) -> list[str]:
        return sorted(self._slide.associated_images.keys())

    def associated_image(self, name: str) -> np.ndarray:
        return _rgba_to_rgb(np.asarray(self._slide.associated_images[name].convert("RGBA")))

    # -- pixels -------------------------------------------------------------------------------
    def read_region(self, x0: int, y0: int, level: int, width: int, height: int) -> np.ndarray:
        """RGB uint8 [height, width, 3] at ``level``; (x0, y0) is the top-left in level-0 pixels."""
        if self._pixels is not None:
            arr = self._pixels.read_region((int(x0), int(y0)), int(level), (int(width), int(height)))
        elif self.backend == "tiffslide":
            arr = self._slide.read_region((int(x0), int(y0)), int(level), (int(width), int(height)), as_array=True)
            arr = np.asarray(arr)
        else:
            arr = np.asarray(self._slide.read_region((int(x0), int(y0)), int(level), (int(width), int(height))))
        rgb = _rgba_to_rgb(arr)
        return ycbcr_to_rgb(rgb) if self.ycbcr_fix else rgb

    @property
    def cheap_small_reads(self) -> bool:
        """True when reading tile by tile costs no more than cutting tiles from big regions:
        the native TIFF reader caches decoded source tiles and copies into a reused buffer."""
        return self._pixels is not None

    def read_region_into(self, x0: int, y0: int, level: int, out: np.ndarray) -> np.ndarray:
        """Fill a reused C-contiguous uint8 [h, w, 3] buffer (native TIFF reads only)."""
        if self._pixels is None or self.ycbcr_fix:
            out[...] = self.read_region(x0, y0, level, out.shape[1], out.shape[0])
            return out
        return self._pixels.read_region((int(x0), int(y0)), int(level), (out.shape[1], out.shape[0]), out=out)

    def source_tile_size(self, level: int) -> int | None:
        """Edge in px of the file's own (square) tiles at ``level``, if the format says; reads and
        orderings aligned to it decode each source tile once."""
        value = self.properties.get(f"openslide.level[{level}].tile-width")
        if value is None:
            value = self.properties.get(f"tiffslide.level[{level}].tile-width")
        height = self.properties.get(f"openslide.level[{level}].tile-height",
                                     self.properties.get(f"tiffslide.level[{level}].tile-height"))
        try:
            w, h = int(value), int(height)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return None
        return w if w == h and w > 0 else None

    def best_level_for_downsample(self, downsample: float) -> int:
        """The coarsest level whose downsample does not exceed ``downsample`` (never upsamples)."""
        best = 0
        for lv in self.levels:
            if lv.downsample <= downsample * 1.0001:
                best = lv.index
        return best

    def close(self) -> None:
        for handle in (self._slide, self._pixels):
            try:
                if handle is not None:
                    handle.close()
            except Exception:  # closing twice or a backend without close: nothing to release
                pass

    def __enter__(self) -> "SlideReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def describe(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "backend": self.backend,
            "pixel_backend": self.pixel_backend,
            "vendor": self.vendor,
            "dimensions": list(self.dimensions),
            "mpp": self.mpp,
            "mpp_source": self.mpp_source,
            "objective_power": self.objective_power,
            "levels": [
                {"level": lv.index, "width": lv.width, "height": lv.height, "downsample": round(lv.downsample, 4),
                 "mpp": round(lv.mpp, 4) if lv.mpp else None}
                for lv in self.levels
            ],
            "associated_images": self.associated_images,
            "color_fix": "ycbcr->rgb" if self.ycbcr_fix else None,
        }


def open_slide(path: str | Path, backend: Backend = "auto", mpp_override: float | None = None,
               fast_reads: bool = True) -> SlideReader:
    if backend not in ("auto", "openslide", "tiffslide"):
        raise ValueError(f"backend must be auto, openslide or tiffslide, got {backend!r}")
    return SlideReader(path, backend, mpp_override, fast_reads)
