"""Cut many tiles out of few large region reads.

One ``read_region`` per tile decodes each of the slide's own JPEG tiles several times (a 224-px
tile straddles up to four 240-px source tiles) and pays the library's per-call overhead for every
tile. Reading a whole block of neighbouring tiles at once decodes each source tile about once;
slicing numpy views out of it is free. This is why ``wsi-ssl tile`` outruns a read_region loop.
"""

from __future__ import annotations

import cv2
import numpy as np

from wsi_ssl.slide.backend import SlideReader
from wsi_ssl.tiling.grid import ReadPlan


def read_tiles(slide: SlideReader, plan: ReadPlan, positions: np.ndarray, block: int) -> np.ndarray:
    """Tiles at ``positions`` (read-level px, [n, 2]) as uint8 [n, T, T, 3], in the given order."""
    n = len(positions)
    t = plan.tile_size
    out = np.empty((n, t, t, 3), np.uint8)
    if n == 0:
        return out
    rs = plan.read_size
    block_ids = (positions[:, 0] // block) * 1_000_003 + positions[:, 1] // block
    order = np.argsort(block_ids, kind="stable")
    sorted_ids = block_ids[order]
    bounds = np.flatnonzero(np.diff(sorted_ids)) + 1
    for group in np.split(order, bounds):
        pos = positions[group]
        x0, y0 = int(pos[:, 0].min()), int(pos[:, 1].min())
        x1, y1 = int(pos[:, 0].max()) + rs, int(pos[:, 1].max()) + rs
        region = slide.read_region(
            int(round(x0 * plan.downsample)), int(round(y0 * plan.downsample)), plan.level, x1 - x0, y1 - y0
        )
        for i, (x, y) in zip(group, pos):
            patch = region[y - y0 : y - y0 + rs, x - x0 : x - x0 + rs]
            if plan.native:
                out[i] = patch
            else:
                interp = cv2.INTER_AREA if rs > t else cv2.INTER_LINEAR
                out[i] = cv2.resize(patch, (t, t), interpolation=interp)
    return out
