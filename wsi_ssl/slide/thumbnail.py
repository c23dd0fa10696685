"""Low-resolution images of a slide at a chosen MPP, with bounded memory.

Read from the coarsest pyramid level that is still at least as fine as the target, block by block,
and shrink each block with area averaging. A single-level 100k x 100k slide therefore never lives in
memory at full resolution: only one block (``block`` px square) does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:  # the readers call these functions (ReaderBase.thumbnail)
    from wsi_ssl.slide.readers.base import SlideReader


def read_at_mpp(slide: SlideReader, target_mpp: float, block: int = 4096) -> tuple[np.ndarray, float]:
    """The whole slide as RGB uint8 at about ``target_mpp``; returns ``(image, actual_mpp)``.

    ``actual_mpp`` differs from the target by the rounding of the output size only.
    """
    slide_mpp = slide.require_mpp()
    out = read_downsampled(slide, max(target_mpp / slide_mpp, 1.0), block)
    return out, slide_mpp * slide.dimensions[0] / out.shape[1]


def read_downsampled(slide: SlideReader, want_ds: float, block: int = 4096) -> np.ndarray:
    """The whole slide shrunk ``want_ds`` times from level 0, read block by block (no MPP needed:
    thumbnails of slides without MPP use it too)."""
    level = slide.best_level_for_downsample(want_ds)
    lv = slide.levels[level]
    w0, h0 = slide.dimensions
    out_w = max(1, int(round(w0 / want_ds)))
    out_h = max(1, int(round(h0 / want_ds)))
    scale = (lv.width / out_w, lv.height / out_h)  # level px per output px
    out = np.empty((out_h, out_w, 3), np.uint8)
    for by in range(0, lv.height, block):
        for bx in range(0, lv.width, block):
            bw, bh = min(block, lv.width - bx), min(block, lv.height - by)
            # Output pixels whose footprint starts inside this block.
            ox0, ox1 = int(np.ceil(bx / scale[0])), int(np.ceil((bx + bw) / scale[0]))
            oy0, oy1 = int(np.ceil(by / scale[1])), int(np.ceil((by + bh) / scale[1]))
            ox1, oy1 = min(ox1, out_w), min(oy1, out_h)
            if ox1 <= ox0 or oy1 <= oy0:
                continue
            # Read exactly the level region those output pixels cover (may spill past the block).
            rx0, ry0 = int(round(ox0 * scale[0])), int(round(oy0 * scale[1]))
            rx1 = min(lv.width, int(round(ox1 * scale[0])))
            ry1 = min(lv.height, int(round(oy1 * scale[1])))
            region = slide.read_region(
                int(round(rx0 * lv.downsample)),
                int(round(ry0 * lv.downsample)),
                level,
                max(rx1 - rx0, 1),
                max(ry1 - ry0, 1),
            )
            out[oy0:oy1, ox0:ox1] = cv2.resize(region, (ox1 - ox0, oy1 - oy0), interpolation=cv2.INTER_AREA)
    return out
