"""The QC picture of a tiled slide: thumbnail, tissue outline, ink, and the kept tile grid.

One glance tells whether the mask followed the tissue, skipped the pen marks and whether the grid
covers what a pathologist would call tissue.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from wsi_ssl.slide.tissue import TissueMask
from wsi_ssl.stores.atomic import atomic_output


@dataclass
class QcSource:
    """What the QC picture is drawn from, already at QC size: the planner makes it (a resize), a
    worker draws and encodes it alongside the slide's shards."""

    image: np.ndarray  # RGB uint8
    mask: np.ndarray  # uint8 0/1
    pen: np.ndarray  # uint8 0/1
    px: float  # QC px per level-0 px
    extent: float  # a tile's edge in QC px

    def save(self, path: Path) -> Path:
        """Hand-over file between processes: ~7 MB through a file costs a few ms, through the
        pool's pipes ~50 ms on the critical path (measured)."""
        with open(path, "wb") as fh:
            np.savez(fh, image=self.image, mask=self.mask, pen=self.pen, scale=np.array([self.px, self.extent]))
        return path

    @classmethod
    def load(cls, path: Path) -> QcSource:
        with np.load(path) as z:
            px, extent = (float(v) for v in z["scale"])
            return cls(z["image"], z["mask"], z["pen"], px, extent)


def prepare_qc(
    thumb: np.ndarray, tissue: TissueMask, extent_level0: float, slide_mpp: float, max_size: int
) -> QcSource:
    """``thumb`` is at ``tissue.mpp``; scaled to at most ``max_size`` px (tiny slides up to 400 px)."""
    scale_fit = min(1.0, max_size / max(thumb.shape[:2]))
    img: np.ndarray = thumb
    mask: np.ndarray = tissue.mask.astype(np.uint8)
    pen: np.ndarray = tissue.pen.astype(np.uint8)
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
    px = slide_mpp / tissue.mpp * scale_fit
    return QcSource(np.ascontiguousarray(img), mask, pen, px, extent_level0 * px)


def render_qc(src: QcSource, coords: np.ndarray) -> np.ndarray:
    """RGB uint8 QC image: ink tinted blue, tissue outlined green, kept tiles (level-0 ``coords``) red."""
    out = src.image.copy()
    ink = src.pen.astype(bool)
    out[ink] = (0.5 * out[ink] + np.array([0, 0, 127])).astype(np.uint8)
    contours, _ = cv2.findContours(src.mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(out, contours, -1, (0, 160, 0), 2)
    px, ext = src.px, src.extent
    for x, y in np.asarray(coords, dtype=np.float64):
        p0 = (int(x * px), int(y * px))
        p1 = (int(x * px + ext), int(y * px + ext))
        cv2.rectangle(out, p0, p1, (220, 40, 40), 1)
    return out


def write_qc(path: Path, image: np.ndarray) -> None:
    with atomic_output(path) as tmp:
        # OpenCV's defaults: measured on a 1600 x 1200 QC picture at 33 ms and 1.5 MB, against
        # 65 ms for zlib level 1 with adaptive filters and 39 ms with the "up" filter only.
        ok, buf = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        if not ok:
            raise RuntimeError(f"could not encode QC image for {path}")
        tmp.write_bytes(buf.tobytes())
