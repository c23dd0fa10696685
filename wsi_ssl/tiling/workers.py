"""What runs inside a tiling worker process: plan a slide, or fill one shard of its store.

Workers open each slide once and keep it (a small per-process cache shared by the plan and the
shard tasks) and write whole shard files straight into the store the scheduler laid out (no zarr
in the worker), so encoded tiles never travel between processes and the scheduling process does
no slide I/O.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np

from wsi_ssl.slide.discover import SlideEntry
from wsi_ssl.slide.readers import SlideReader, open_slide
from wsi_ssl.stores.shard_writer import ShardTarget, write_shard
from wsi_ssl.tiling.block_reader import iter_tiles, read_tiles
from wsi_ssl.tiling.config import TileConfig
from wsi_ssl.tiling.grid import ReadPlan
from wsi_ssl.tiling.plan_slide import SlidePlan, plan_slide
from wsi_ssl.tiling.qc import QcSource, render_qc, write_qc

_OPEN: OrderedDict[tuple[str, str, float | None], SlideReader] = OrderedDict()
_MAX_OPEN = 4


def preload() -> None:
    """Import the slide libraries in the scheduling process before it forks its workers.

    Forked workers then start with them loaded; otherwise each worker imports them (OpenSlide,
    PIL, tifffile: ~40 ms) on its first slide, while the other cores wait for that slide's plan.
    """
    import imagecodecs  # noqa: F401
    import openslide  # noqa: F401
    import tifffile  # noqa: F401


def warm_task(entry: SlideEntry | None = None, cfg: TileConfig | None = None) -> None:
    """Run OpenCV's and the JPEG codec's one-time set-up (~50 ms per process, measured) on a tiny
    image, and open ``entry`` (a slide being planned elsewhere), so this worker's first shard of it
    starts warm. Queued for workers that would otherwise wait while the first slides are planned;
    failures are left to the plan task, which reports them."""
    import imagecodecs

    from wsi_ssl.slide.tissue import detect_tissue

    image = np.full((64, 64, 3), 200, np.uint8)
    detect_tissue(image, 8.0)
    imagecodecs.jpeg8_decode(imagecodecs.jpeg8_encode(image, level=90, subsampling="444"))
    if entry is not None and cfg is not None:
        try:
            _open_for(entry, cfg)
        except Exception:  # noqa: BLE001 - the plan task opens it too and names the problem
            pass


def _open_for(entry: SlideEntry, cfg: TileConfig) -> tuple[SlideReader, float | None]:
    """The slide of ``entry`` from this worker's cache, also filed under the backend it resolved to
    (shard tasks name "openslide", not "auto")."""
    override = entry.mpp if entry.mpp is not None else cfg.mpp_override
    reader = _slide(entry.path, cfg.backend, override)
    _remember((str(entry.path), reader.backend, override), reader)
    return reader, override


def _slide(path: Path, backend: str, mpp: float | None) -> SlideReader:
    key = (str(path), backend, mpp)
    if key in _OPEN:
        _OPEN.move_to_end(key)
        return _OPEN[key]
    reader = open_slide(path, backend, mpp_override=mpp)
    _remember(key, reader)
    return reader


def _remember(key: tuple[str, str, float | None], reader: SlideReader) -> None:
    _OPEN[key] = reader
    while len(_OPEN) > _MAX_OPEN:
        _, old = _OPEN.popitem(last=False)
        if not any(r is old for r in _OPEN.values()):  # the same reader may sit under two keys
            old.close()


def plan_task(entry: SlideEntry, cfg: TileConfig, qc_source: Path) -> SlidePlan:
    """Plan a slide; its QC picture's source goes to the file ``qc_source`` (see ``qc_task``).

    The store is laid out by the scheduler, whose zarr is warm (10 ms there, 35 ms in a fresh
    worker, where it would delay every shard of the slide)."""
    reader, _ = _open_for(entry, cfg)
    plan = plan_slide(entry, cfg, reader)
    if plan.qc is not None:
        plan.qc_source_path = plan.qc.save(qc_source)
        plan.qc = None
    return plan


def shard_task(
    path: Path,
    backend: str,
    mpp: float | None,
    plan: ReadPlan,
    positions: np.ndarray,
    store_tmp: Path,
    start: int,
    block: int,
    target: ShardTarget | None,
) -> int:
    """Read tiles ``start .. start+len(positions)`` and write them to the (temporary) store.

    With a ``target`` (the usual local JPEG/PNG store) the shard file is written directly, with
    no zarr in this process; otherwise zarr writes the block."""
    slide = _slide(path, backend, mpp)
    if target is None:
        write_shard(store_tmp, start, read_tiles(slide, plan, positions, block))
        return len(positions)
    # Encode each tile straight from its region buffer: no batch array, no extra copy.
    encoded: list[bytes] = [b""] * len(positions)
    for i, tile in iter_tiles(slide, plan, positions, block):
        encoded[i] = target.codec.encode_image(np.ascontiguousarray(tile))
    target.write(start, encoded)
    return len(positions)


def qc_task(path: Path, source_path: Path, coords: np.ndarray) -> int:
    """Draw and write a slide's QC PNG (~0.1 s, mostly PNG encoding) on a worker alongside the
    slide's shards, not on the planning path nor in the scheduler after the last shard (when every
    worker would wait for it)."""
    source = QcSource.load(source_path)
    source_path.unlink()
    write_qc(path, render_qc(source, coords))
    return 0
