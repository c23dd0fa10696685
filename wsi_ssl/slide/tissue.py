"""Tissue detection on a low-resolution image of the slide.

Saturation is the signal: H&E-stained tissue is coloured, glass is white-grey. Pen ink is coloured
too, so it is removed first by hue (blue/green/cyan markers fall outside the pink-purple H&E hue
band) and darkness (black marker, slide-edge shadows, dust). Then Otsu picks the saturation
threshold per slide (with a floor, so an almost-empty slide does not turn noise into tissue),
morphology closes gaps between cell clusters and opens away specks, small objects are dropped and
small holes filled. All sizes are in microns, so the same config works at any mask resolution.

Fat (``fat``): adipose tissue is empty cells with thin membranes, nearly as pale as glass at a
mask resolution of several microns per pixel, so the saturation threshold drops it. It is tissue
to a pathologist and carries signal at tumour margins, so ``fat: include`` (the default, chosen on
the measurements in docs/benchmarks.md) adds it back: pixels faintly above the glass's own
saturation (``fat_min_saturation``, or the glass's 90th percentile plus 2 levels if higher) that
form a dense enough mesh (``fat_min_density`` of a ``fat_window_um`` window), and only where that
mesh touches stained tissue, so a tinted glass or a smudge alone never becomes tissue.
``fat: exclude`` keeps the stained tissue only (the behaviour before this option).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
from pydantic import Field

from wsi_ssl.config import StrictModel


class TissueConfig(StrictModel):
    mask_mpp: float = Field(8.0, gt=0, description="resolution of the detection image, um/px")
    min_saturation: float = Field(0.07, ge=0, le=1, description="floor on the Otsu saturation threshold")
    saturation_threshold: float | None = Field(None, ge=0, le=1, description="fixed threshold; None = Otsu")
    max_value: float = Field(0.96, gt=0, le=1, description="brighter pixels are glass whatever their saturation")
    dark_value: float = Field(0.18, ge=0, lt=1, description="darker pixels (black ink, edges) are not tissue")
    pen_filter: bool = True
    pen_min_saturation: float = Field(0.25, ge=0, le=1, description="ink is strongly saturated")
    pen_hue_range: tuple[float, float] = Field((65.0, 255.0), description="hue band of blue/green ink, degrees")
    close_um: float = Field(48.0, ge=0, description="closing radius: joins nearby cell clusters")
    open_um: float = Field(16.0, ge=0, description="opening radius: removes specks")
    min_area_um2: float = Field(40_000.0, ge=0, description="drop tissue pieces smaller than this")
    max_hole_um2: float = Field(60_000.0, ge=0, description="fill holes smaller than this (lumens, fat)")
    pen_dilate_um: float = Field(24.0, ge=0, description="grow the ink mask over its anti-aliased rims")
    fat: Literal["include", "exclude"] = Field(
        "include", description="adipose tissue (pale membrane mesh touching stained tissue) counts as tissue"
    )
    fat_min_saturation: float = Field(0.0275, ge=0, le=1, description="fat membranes: faint saturation floor")
    fat_window_um: float = Field(120.0, gt=0, description="window over which the membrane mesh density is taken")
    fat_min_density: float = Field(0.3, gt=0, le=1, description="share of faint pixels that makes a window fat")


@dataclass
class TissueMask:
    mask: np.ndarray  # bool [h, w]
    pen: np.ndarray  # bool [h, w], detected ink
    mpp: float  # microns per mask pixel
    threshold: float  # saturation threshold used

    @property
    def fraction(self) -> float:
        return float(self.mask.mean()) if self.mask.size else 0.0


def _disk(radius_px: float) -> np.ndarray | None:
    r = int(round(radius_px))
    if r < 1:
        return None
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))


def _otsu(values_u8: np.ndarray) -> float:
    """Otsu threshold of 8-bit values, returned on the 0..1 scale (upper edge of the chosen bin)."""
    if values_u8.size == 0:
        return 1.0
    return _otsu_hist(np.bincount(values_u8, minlength=256).astype(np.float64))


def _otsu_hist(hist: np.ndarray) -> float:
    """Otsu threshold of a 256-bin histogram of 8-bit values, on the 0..1 scale."""
    if hist.sum() == 0:
        return 1.0
    edges = np.linspace(0.0, 1.0, 257)
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    centers = (edges[:-1] + edges[1:]) / 2
    m0 = np.cumsum(hist * centers)
    mu0 = m0 / np.maximum(w0, 1)
    mu1 = (m0[-1] - m0) / np.maximum(w1, 1)
    between = w0 * w1 * (mu0 - mu1) ** 2
    return float(edges[int(np.argmax(between)) + 1])


def _holes(mask: np.ndarray) -> np.ndarray:
    """Background pixels not connected to the image border (what binary_fill_holes would fill)."""
    h, w = mask.shape
    padded = np.zeros((h + 2, w + 2), np.uint8)
    padded[1:-1, 1:-1] = mask
    flood = padded.copy()
    cv2.floodFill(flood, np.zeros((h + 4, w + 4), np.uint8), (0, 0), 1)  # 4-connected, like scipy
    return flood[1:-1, 1:-1] == 0


def _components_where(mask: np.ndarray, keep_area: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """The 8-connected components of ``mask`` whose pixel count passes ``keep_area``."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(np.ascontiguousarray(mask).view(np.uint8), connectivity=8)
    if n <= 1:
        return np.zeros(mask.shape, bool)
    keep = np.zeros(n, bool)
    keep[1:] = keep_area(stats[1:, cv2.CC_STAT_AREA].astype(np.float64))
    dropped = np.flatnonzero(~keep[1:]) + 1
    if len(dropped) > 64:  # many specks: one label lookup over the image
        return keep[labels]
    # Usually only a few components go (specks, large holes): clear them inside their bounding
    # boxes instead of looking up every pixel's label.
    out = mask.astype(bool)
    for i in dropped.tolist():
        x, y, w, h = (int(v) for v in stats[i, :4])
        box = out[y : y + h, x : x + w]
        box[labels[y : y + h, x : x + w] == i] = False
    return out


def _at_least(fraction: float) -> int:
    """Smallest 8-bit value v with v / 255 >= fraction: compare uint8 channels without floats."""
    return int(math.ceil(fraction * 255 - 1e-9))


def _pen_u8(hsv: np.ndarray, cfg: TissueConfig) -> np.ndarray:
    """Blue/green ink as a 0/255 mask (OpenCV's 8-bit hue is degrees / 2)."""
    lo, hi = cfg.pen_hue_range
    lower = (math.ceil(lo / 2), _at_least(cfg.pen_min_saturation), 0)
    upper = (math.floor(hi / 2), 255, 255)
    return cv2.inRange(hsv, lower, upper)


def _otsu_masked(sat: np.ndarray, where: np.ndarray) -> float:
    """``_otsu(sat[where > 0])`` without gathering the values (OpenCV's masked histogram)."""
    if where.size >= 1 << 24:  # float32 histogram counts are exact only below 2**24
        return _otsu(sat[where > 0])
    hist = cv2.calcHist([sat], [0], where, [256], [0, 256]).ravel()
    return _otsu_hist(hist.astype(np.float64))


def _fat_u8(
    sat: np.ndarray, candidates: np.ndarray, stained: np.ndarray, px_um: float, cfg: TissueConfig
) -> np.ndarray:
    """Adipose tissue as a 0/255 mask: a dense mesh of faint pixels touching stained tissue."""
    glass = cv2.bitwise_and(candidates, cv2.bitwise_not(stained))
    glass_sat = sat[glass > 0]
    floor = _at_least(cfg.fat_min_saturation)
    if glass_sat.size:
        floor = max(floor, int(np.percentile(glass_sat, 90)) + 2)
    faint = cv2.bitwise_and(glass, cv2.inRange(sat, floor, 255))
    win = max(3, int(round(cfg.fat_window_um * px_um)) | 1)
    density = cv2.boxFilter(faint, cv2.CV_32F, (win, win), normalize=True) / 255.0
    fat = (density >= cfg.fat_min_density).astype(np.uint8)
    n, labels = cv2.connectedComponents(fat, connectivity=8)
    if n <= 1:
        return np.zeros_like(stained)
    near = cv2.dilate(stained, np.ones((3, 3), np.uint8)) > 0
    keep = np.zeros(n, bool)
    keep[np.unique(labels[near & (fat > 0)])] = True
    keep[0] = False
    out: np.ndarray = keep[labels].astype(np.uint8) * 255
    return cv2.bitwise_and(out, candidates)


def detect_tissue(rgb: np.ndarray, mpp: float, cfg: TissueConfig | None = None) -> TissueMask:
    """Tissue mask of an RGB uint8 image whose pixels are ``mpp`` microns wide.

    Works on 8-bit 0/255 masks with OpenCV's vectorised ops (thresholds converted to 8-bit levels):
    on a 2048 x 1536 detection image that is several times faster than numpy boolean algebra.
    """
    cfg = cfg or TissueConfig()
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.size == 0:
        raise ValueError(f"tissue detection needs an RGB image, got shape {rgb.shape}")
    smooth = cv2.medianBlur(np.ascontiguousarray(rgb), 3) if min(rgb.shape[:2]) >= 3 else np.ascontiguousarray(rgb)
    hsv = cv2.cvtColor(smooth, cv2.COLOR_RGB2HSV)
    _, sat, val = cv2.split(hsv)
    px_um = 1.0 / mpp
    pen = _pen_u8(hsv, cfg) if cfg.pen_filter else np.zeros(sat.shape, np.uint8)
    dark_level = _at_least(cfg.dark_value)
    dark = cv2.inRange(val, 0, dark_level - 1) if dark_level > 0 else np.zeros(sat.shape, np.uint8)
    if cfg.pen_filter:
        # Ink rims and black marker: grow what was found so no coloured halo survives as "tissue".
        excluded = cv2.bitwise_or(pen, dark)
        k = _disk(cfg.pen_dilate_um * px_um)
        if k is not None:
            excluded = cv2.dilate(excluded, k)
    else:
        excluded = dark
    bright = cv2.inRange(val, 0, math.floor(cfg.max_value * 255 + 1e-9))
    candidates = cv2.bitwise_and(bright, cv2.bitwise_not(excluded))
    if cfg.saturation_threshold is not None:
        thr = cfg.saturation_threshold
    else:
        thr = max(_otsu_masked(sat, candidates), cfg.min_saturation)
    mask = cv2.bitwise_and(candidates, cv2.inRange(sat, _at_least(thr), 255))
    if cfg.fat == "include":
        mask = cv2.bitwise_or(mask, _fat_u8(sat, candidates, mask, px_um, cfg))
    k_close, k_open = _disk(cfg.close_um * px_um), _disk(cfg.open_um * px_um)
    if k_close is not None:
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, k_close)
    if k_open is not None:
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, k_open)
    mask_b = mask > 0
    px_area = mpp * mpp
    # Fill small holes only: big holes are real gaps (tears, fat lobules off the section).
    holes = _holes(mask_b)
    if holes.any():
        mask_b |= _components_where(holes, lambda area: area * px_area < cfg.max_hole_um2)
    mask_b = _components_where(mask_b, lambda area: area * px_area >= cfg.min_area_um2)
    mask_b &= excluded == 0  # filling must not bring ink back
    return TissueMask(mask=mask_b, pen=pen > 0, mpp=mpp, threshold=float(thr))


def tile_tissue_fractions(mask: TissueMask, coords: np.ndarray, extent_level0: float, slide_mpp: float) -> np.ndarray:
    """Fraction of each tile's footprint (level-0 coords, square of ``extent_level0``) that is tissue.

    Uses a summed-area table, so cost is O(tiles) whatever the tile size.
    """
    scale = slide_mpp / mask.mpp  # mask px per level-0 px
    h, w = mask.mask.shape
    table = cv2.integral(mask.mask.astype(np.uint8), sdepth=cv2.CV_32S).astype(np.float64)  # [h + 1, w + 1]
    c = np.asarray(coords, dtype=np.float64).reshape(-1, 2)
    x0 = np.clip(np.floor(c[:, 0] * scale), 0, w).astype(np.int64)
    y0 = np.clip(np.floor(c[:, 1] * scale), 0, h).astype(np.int64)
    ext = max(extent_level0 * scale, 1.0)
    x1 = np.clip(np.maximum(np.ceil(c[:, 0] * scale + ext), x0 + 1), 0, w).astype(np.int64)
    y1 = np.clip(np.maximum(np.ceil(c[:, 1] * scale + ext), y0 + 1), 0, h).astype(np.int64)
    area = np.maximum((x1 - x0) * (y1 - y0), 1)
    total = table[y1, x1] - table[y0, x1] - table[y1, x0] + table[y0, x0]
    return (total / area).astype(np.float32)
