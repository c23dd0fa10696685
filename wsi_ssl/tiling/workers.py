"""What runs inside a tiling worker process: plan a slide, or fill one shard of its store.

Workers open each slide once and keep it (a small per-process cache shared by the plan and the
shard tasks), lay out the store of a slide they planned, and write their shards straight into it,
so encoded tiles never travel between processes and the scheduling process does no slide I/O.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np

from wsi_ssl.slide.backend import SlideReader, open_slide
from wsi_ssl.slide.discover import SlideEntry
from wsi_ssl.stores.shard_writer import shard_encoder, write_encoded_shard, write_shard
from wsi_ssl.stores.tile_store import TileArraysSpec, create_tile_arrays
from wsi_ssl.tiling.block_reader import iter_tiles, read_tiles
from wsi_ssl.tiling.config import TileConfig
from wsi_ssl.tiling.grid import ReadPlan
from wsi_ssl.tiling.plan_slide import SlidePlan, plan_slide
from wsi_ssl.tiling.qc import QcSource, render_qc, write_qc

QC_SOURCE = ".qc-source.npz"  # in a slide's temporary store, until its QC PNG is written
_OPEN: "OrderedDict[tuple[str, str, float | None], SlideReader]" = OrderedDict()
_MAX_OPEN = 4


def preload() -> None:
    """Import the slide libraries in the scheduling process before it forks its workers.

    Forked workers then start with them loaded; otherwise each worker imports them (OpenSlide,
    PIL, tifffile: ~40 ms) on its first slide, while the other cores wait for that slide's plan.
    """
    import imagecodecs  # noqa: F401
    import openslide  # noqa: F401
    import tifffile  # noqa: F401


def warm_task() -> None:
    """Run OpenCV's and the JPEG codec's one-time set-up (~50 ms per process, measured) on a tiny
    image. Queued for workers that would otherwise wait while the first slides are planned, so the
    set-up is off every slide's critical path."""
    import imagecodecs
    import zarr

    from wsi_ssl.slide.tissue import detect_tissue

    image = np.full((64, 64, 3), 200, np.uint8)
    detect_tissue(image, 8.0)
    imagecodecs.jpeg8_decode(imagecodecs.jpeg8_encode(image, level=90, subsampling="444"))
    zarr.open_group(zarr.storage.MemoryStore(), mode="w")  # starts this process's zarr I/O loop


def _slide(path: Path, backend: str, mpp: float | None) -> SlideReader:
    key = (str(path), backend, mpp)
    if key in _OPEN:
        _OPEN.move_to_end(key)
        return _OPEN[key]
    reader = open_slide(path, backend, mpp_override=mpp)  # type: ignore[arg-type]
    _remember(key, reader)
    return reader


def _remember(key: tuple[str, str, float | None], reader: SlideReader) -> None:
    _OPEN[key] = reader
    while len(_OPEN) > _MAX_OPEN:
        _, old = _OPEN.popitem(last=False)
        if not any(r is old for r in _OPEN.values()):  # the same reader may sit under two keys
            old.close()


def plan_task(entry: SlideEntry, cfg: TileConfig, store_tmp: Path) -> SlidePlan:
    """Plan a slide and lay out its (temporary) store, so its shards can be queued at once."""
    override = entry.mpp if entry.mpp is not None else cfg.mpp_override
    reader = _slide(entry.path, cfg.backend, override)
    plan = plan_slide(entry, cfg, reader)
    # Shard tasks name the backend that was chosen ("openslide", not "auto"): same reader.
    _remember((str(entry.path), plan.backend, override), reader)
    spec = TileArraysSpec(plan.n_tiles, cfg.tile_size, cfg.shard_tiles, cfg.codec, cfg.quality)
    create_tile_arrays(store_tmp, spec, plan.coords, plan.tissue, plan.attrs)
    if plan.qc is not None:  # inside the temporary store: removed with it if the slide fails
        plan.qc_source_path = plan.qc.save(store_tmp / QC_SOURCE)
        plan.qc = None
    return plan


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


def qc_task(path: Path, source_path: Path, coords: np.ndarray) -> int:
    """Draw and write a slide's QC PNG (~0.1 s, mostly PNG encoding) on a worker alongside the
    slide's shards, not on the planning path nor in the scheduler after the last shard (when every
    worker would wait for it)."""
    source = QcSource.load(source_path)
    write_qc(path, render_qc(source, coords))
    source_path.unlink()
    return 0
