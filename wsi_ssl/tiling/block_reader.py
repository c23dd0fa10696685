"""Cut many tiles out of few large region reads.

One ``read_region`` per tile decodes each of the slide's own JPEG tiles several times (a 224-px
tile straddles up to four 240-px source tiles) and pays the library's per-call overhead for every
tile. Reading a whole block of neighbouring tiles at once decodes each source tile about once;
slicing numpy views out of it is free. This is why ``wsi-ssl tile`` outruns a read_region loop.
"""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np

from wsi_ssl.slide.readers import SlideReader
from wsi_ssl.tiling.grid import ReadPlan


def _dense_groups(positions: np.ndarray, group: np.ndarray, rs: int, min_density: float = 0.5) -> list[np.ndarray]:
    """Split a group whose bounding box is mostly empty (sparse tissue) into quadrants, recursively,
    so a region read never decodes much more than the tiles it serves."""
    pos = positions[group]
    x0, y0 = pos.min(axis=0)
    x1, y1 = pos.max(axis=0) + rs
    bbox = float((x1 - x0) * (y1 - y0))
    if len(group) <= 1 or len(group) * rs * rs >= min_density * bbox:
        return [group]
    mx, my = (x0 + x1) // 2, (y0 + y1) // 2
    quads = [
        (pos[:, 0] < mx) & (pos[:, 1] < my),
        (pos[:, 0] >= mx) & (pos[:, 1] < my),
        (pos[:, 0] < mx) & (pos[:, 1] >= my),
        (pos[:, 0] >= mx) & (pos[:, 1] >= my),
    ]
    parts = [group[q] for q in quads if q.any()]
    if len(parts) == 1:
        return parts
    return [g for part in parts for g in _dense_groups(positions, part, rs, min_density)]


def iter_tiles(
    slide: SlideReader, plan: ReadPlan, positions: np.ndarray, block: int
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(i, tile)`` for every position (read-level px, [n, 2]), grouped by region read.

    Tiles come as views into a buffer that the next iteration reuses: a consumer encodes (or copies)
    each tile at once and never needs a big batch array (on this machine, first-touch page faults of
    a fresh [256, 224, 224, 3] batch cost as much as encoding it).
    """
    if len(positions) == 0:
        return
    t, rs = plan.tile_size, plan.read_size
    interp = cv2.INTER_AREA if rs > t else cv2.INTER_LINEAR
    # A slide at a URL fetches the source tiles of the regions it is told of in one request batch
    # (slide/readers/remote.py): the regions are announced in the order they will be read, and
    # those it had no room for are announced again when their turn comes.
    prefetch = getattr(slide, "prefetch_regions", None)
    fetched_to = 0  # regions before this index are announced
    ds = plan.downsample
    if slide.cheap_small_reads:
        tiles = (
            [(int(round(x * ds)), int(round(y * ds)), plan.level, rs, rs) for x, y in positions.tolist()]
            if prefetch is not None
            else []
        )
        # Native TIFF decoding with a tile cache: read each tile into one small reused buffer, in
        # the store's block-major order (so cached source tiles are reused); no big region buffer,
        # no page faults, one copy per pixel.
        buf = np.empty((rs, rs, 3), np.uint8)
        for i, (x, y) in enumerate(positions.tolist()):
            if prefetch is not None and i >= fetched_to:
                fetched_to = i + prefetch(tiles[i:])
            slide.read_region_into(int(round(x * plan.downsample)), int(round(y * plan.downsample)), plan.level, buf)
            yield i, buf if plan.native else cv2.resize(buf, (t, t), interpolation=interp)
        return
    block_ids = (positions[:, 0] // block) * 1_000_003 + positions[:, 1] // block
    order = np.argsort(block_ids, kind="stable")
    bounds = np.flatnonzero(np.diff(block_ids[order])) + 1
    groups = [g for block_group in np.split(order, bounds) for g in _dense_groups(positions, block_group, rs)]
    boxes = [(positions[g].min(axis=0), positions[g].max(axis=0) + rs) for g in groups] if prefetch else []
    regions = [(int(round(a[0] * ds)), int(round(a[1] * ds)), plan.level, *(b - a).tolist()) for a, b in boxes]
    for k, group in enumerate(groups):
        if prefetch is not None and k >= fetched_to:
            fetched_to = k + prefetch(regions[k:])
        pos = positions[group]
        x0, y0 = int(pos[:, 0].min()), int(pos[:, 1].min())
        x1, y1 = int(pos[:, 0].max()) + rs, int(pos[:, 1].max()) + rs
        region = slide.read_region(
            int(round(x0 * plan.downsample)), int(round(y0 * plan.downsample)), plan.level, x1 - x0, y1 - y0
        )
        for i, (x, y) in zip(group.tolist(), pos.tolist()):
            patch = region[y - y0 : y - y0 + rs, x - x0 : x - x0 + rs]
            yield i, patch if plan.native else cv2.resize(patch, (t, t), interpolation=interp)


def read_tiles(slide: SlideReader, plan: ReadPlan, positions: np.ndarray, block: int) -> np.ndarray:
    """Tiles at ``positions`` (read-level px, [n, 2]) as uint8 [n, T, T, 3], in the given order."""
    t = plan.tile_size
    out = np.empty((len(positions), t, t, 3), np.uint8)
    for i, tile in iter_tiles(slide, plan, positions, block):
        out[i] = tile
    return out
