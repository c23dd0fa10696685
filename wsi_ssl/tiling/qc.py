"""The QC picture of a tiled slide: thumbnail, tissue outline, ink, and the kept tile grid.

One glance tells whether the mask followed the tissue, skipped the pen marks and whether the grid
covers what a pathologist would call tissue.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from wsi_ssl.slide.tissue import TissueMask
from wsi_ssl.stores.atomic import atomic_output


def draw_qc(thumb: np.ndarray, tissue: TissueMask, coords: np.ndarray, extent_level0: float, slide_mpp: float,
            max_size: int) -> np.ndarray:
    """RGB uint8 QC image; ``thumb`` is at ``tissue.mpp``."""
    scale_fit = min(1.0, max_size / max(thumb.shape[:2]))
    img = thumb
    mask = tissue.mask.astype(np.uint8)
    pen = tissue.pen.astype(np.uint8)
    if scale_fit < 1.0:
        size = (max(1, int(thumb.shape[1] * scale_fit)), max(1, int(thumb.shape[0] * scale_fit)))
        img = cv2.resize(thumb, size, interpolation=cv2.INTER_AREA)
        mask = cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST)
        pen = cv2.resize(pen, size, interpolation=cv2.INTER_NEAREST)
    elif max(thumb.shape[:2]) < 400:  # tiny slides: enlarge so the grid stays visible
        f = 400 / max(thumb.shape[:2])
        scale_fit = f
        size = (int(thumb.shape[1] * f), int(thumb.shape[0] * f))
        img = cv2.resize(thumb, size, interpolation=cv2.INTER_NEAREST)
        mask = cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST)
        pen = cv2.resize(pen, size, interpolation=cv2.INTER_NEAREST)
    out = img.copy()
    out[pen.astype(bool)] = (0.5 * out[pen.astype(bool)] + np.array([0, 0, 127])).astype(np.uint8)
    contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(out, contours, -1, (0, 160, 0), 2)
    px = slide_mpp / tissue.mpp * scale_fit  # QC px per level-0 px
    ext = extent_level0 * px
    for x, y in np.asarray(coords, dtype=np.float64):
        p0 = (int(x * px), int(y * px))
        p1 = (int(x * px + ext), int(y * px + ext))
        cv2.rectangle(out, p0, p1, (220, 40, 40), 1)
    return out


def write_qc(path: Path, image: np.ndarray) -> None:
    with atomic_output(path) as tmp:
        ok, buf = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        if not ok:
            raise RuntimeError(f"could not encode QC image for {path}")
        tmp.write_bytes(buf.tobytes())
