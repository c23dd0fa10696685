"""What runs inside a tiling worker process: plan a slide, or fill one shard of its store.

Workers open each slide once and keep it (a small per-process cache), then write their shard
straight into the store, so encoded tiles never travel between processes.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np

from wsi_ssl.slide.backend import SlideReader, open_slide
from wsi_ssl.slide.discover import SlideEntry
from wsi_ssl.stores.shard_writer import shard_encoder, write_encoded_shard, write_shard
from wsi_ssl.tiling.block_reader import iter_tiles, read_tiles
from wsi_ssl.tiling.config import TileConfig
from wsi_ssl.tiling.grid import ReadPlan
from wsi_ssl.tiling.plan_slide import SlidePlan, plan_slide

_OPEN: "OrderedDict[tuple[str, str, float | None], SlideReader]" = OrderedDict()
_MAX_OPEN = 4


def _slide(path: Path, backend: str, mpp: float | None) -> SlideReader:
    key = (str(path), backend, mpp)
    if key in _OPEN:
        _OPEN.move_to_end(key)
        return _OPEN[key]
    reader = open_slide(path, backend, mpp_override=mpp)  # type: ignore[arg-type]
    _OPEN[key] = reader
    while len(_OPEN) > _MAX_OPEN:
        _, old = _OPEN.popitem(last=False)
        old.close()
    return reader


def plan_task(entry: SlideEntry, cfg: TileConfig) -> SlidePlan:
    return plan_slide(entry, cfg)


def shard_task(
    path: Path, backend: str, mpp: float | None, plan: ReadPlan, positions: np.ndarray, store_tmp: Path,
    start: int, block: int,
) -> int:
    """Read tiles ``start .. start+len(positions)`` and write them to the (temporary) store."""
    slide = _slide(path, backend, mpp)
    codec = shard_encoder(store_tmp)
    if codec is None:  # a layout we do not write ourselves: hand zarr the whole block
        write_shard(store_tmp, start, read_tiles(slide, plan, positions, block))
        return len(positions)
    # Encode each tile straight from its region buffer: no batch array, no extra copy.
    encoded: list[bytes] = [b""] * len(positions)
    for i, tile in iter_tiles(slide, plan, positions, block):
        encoded[i] = codec.encode_image(np.ascontiguousarray(tile))
    write_encoded_shard(store_tmp, start, encoded)
    return len(positions)
