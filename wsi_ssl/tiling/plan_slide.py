"""Everything decided about a slide before its pixels are read at full resolution.

Opening the slide, checking MPP, detecting tissue at low resolution and laying the grid are cheap
(a thumbnail's worth of decoding); the result fixes the store's size, so the store can be laid out
at once and its shards filled in parallel.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from wsi_ssl import __version__
from wsi_ssl.slide.discover import SlideEntry
from wsi_ssl.slide.readers import SlideReader, open_slide
from wsi_ssl.slide.thumbnail import read_at_mpp
from wsi_ssl.slide.tissue import detect_tissue, tile_tissue_fractions
from wsi_ssl.storage.paths import display, file_size
from wsi_ssl.tiling.config import TileConfig
from wsi_ssl.tiling.grid import ReadPlan, aligned_block, block_major_order, grid_positions, make_plan, to_level0
from wsi_ssl.tiling.qc import QcSource, prepare_qc


class NoTissueError(ValueError):
    """No tile of the slide reaches the minimum tissue fraction."""


@dataclass
class SlidePlan:
    entry: SlideEntry
    backend: str
    slide_mpp: float
    plan: ReadPlan
    positions: np.ndarray  # read-level px, [N, 2], store order
    coords: np.ndarray  # level-0 px, [N, 2], store order
    tissue: np.ndarray  # [N]
    attrs: dict[str, Any] = field(default_factory=dict)
    qc: QcSource | None = None
    qc_source_path: Path | None = None  # qc saved for the worker that draws it (tiling/workers.py)

    @property
    def n_tiles(self) -> int:
        return int(len(self.coords))


def plan_slide(entry: SlideEntry, cfg: TileConfig, slide: SlideReader | None = None) -> SlidePlan:
    """Plan ``entry``; ``slide`` is the slide already opened (kept open), else it is opened here."""
    if slide is None:
        override = entry.mpp if entry.mpp is not None else cfg.mpp_override
        with open_slide(entry.path, cfg.backend, mpp_override=override) as opened:
            return _plan(entry, cfg, opened)
    return _plan(entry, cfg, slide)


def _plan(entry: SlideEntry, cfg: TileConfig, slide: SlideReader) -> SlidePlan:
    slide_mpp = slide.require_mpp()
    plan = make_plan(slide.levels, cfg.mpp, cfg.tile_size, cfg.stride, cfg.mpp_tolerance)
    lv = slide.levels[plan.level]
    thumb, thumb_mpp = read_at_mpp(slide, max(cfg.tissue.mask_mpp, slide_mpp))
    tissue = detect_tissue(thumb, thumb_mpp, cfg.tissue)
    positions = grid_positions(plan, lv.width, lv.height)
    if len(positions) == 0:
        raise NoTissueError(
            f"slide too small: level {plan.level} is {lv.width}x{lv.height} px, smaller than one tile of "
            f"{plan.read_size} px ({cfg.tile_size} px at {cfg.mpp} um/px)"
        )
    coords = to_level0(positions, plan)
    fractions = tile_tissue_fractions(tissue, coords, plan.extent_level0, slide_mpp)
    keep = fractions >= cfg.min_tissue if cfg.min_tissue > 0 else np.ones(len(coords), bool)
    if not keep.any():
        raise NoTissueError(
            f"no tissue: none of {len(coords)} grid tiles reaches min_tissue {cfg.min_tissue} "
            f"(tissue covers {tissue.fraction:.1%} of the slide at {cfg.mpp} um/px, tile {cfg.tile_size} px)"
        )
    positions, coords, fractions = positions[keep], coords[keep], fractions[keep]
    block = aligned_block(cfg.read_block, plan.read_stride, slide.source_tile_size(plan.level))
    order = block_major_order(positions, plan, block)
    positions, coords, fractions = positions[order], coords[order], fractions[order]
    attrs: dict[str, Any] = {
        "slide_id": entry.slide_id,
        "source_path": display(entry.path),  # the absolute path, or the URL
        "source_size": file_size(entry.path),
        "backend": slide.backend,
        "pixel_backend": slide.pixel_backend,
        "vendor": slide.vendor,
        "mpp": float(cfg.mpp),
        "slide_mpp": float(slide_mpp),
        "mpp_source": slide.mpp_source,
        "level": int(plan.level),
        "downsample": float(plan.downsample),
        "level_mpp": float(plan.level_mpp),
        "read_size": int(plan.read_size),
        "resized": not plan.native,
        "tile_size": int(cfg.tile_size),
        "stride": int(cfg.stride),
        "overlap": int(cfg.overlap),
        "min_tissue": float(cfg.min_tissue),
        "tissue_detection": {**cfg.tissue.model_dump(mode="json"), "threshold_used": tissue.threshold},
        "slide_dimensions": list(slide.dimensions),
        "color_fix": "ycbcr->rgb" if slide.ycbcr_fix else None,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "wsi_ssl_version": __version__,
    }
    qc = prepare_qc(thumb, tissue, plan.extent_level0, slide_mpp, cfg.qc_max_size) if cfg.qc else None
    return SlidePlan(entry, slide.backend, slide_mpp, plan, positions, coords, fractions, attrs, qc)
