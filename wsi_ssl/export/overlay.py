"""A small pyramidal OME-TIFF of per-tile scores, one pixel per tile-grid cell, one channel per score.

Viewers that overlay images rather than objects (QuPath's *File > Import images* on top, napari,
OMERO) show this beside the slide: its pixel size is the grid step in microns, so it lines up with
the slide when scaled by that step. Cells without a tile are NaN (float32). Levels halve down to
about 64 px, written as SubIFDs the way OME-TIFF pyramids are (tifffile).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from wsi_ssl.mil.heatmaps import grid_step, score_grid
from wsi_ssl.stores.atomic import atomic_output


def _halve(image: np.ndarray) -> np.ndarray:
    """2 x 2 NaN-aware mean (a cell with any tile keeps a value)."""
    h, w = image.shape
    padded = np.full((h + h % 2, w + w % 2), np.nan, np.float32)
    padded[:h, :w] = image
    blocks = padded.reshape(padded.shape[0] // 2, 2, padded.shape[1] // 2, 2)
    counts = np.isfinite(blocks).sum(axis=(1, 3))
    sums = np.nansum(blocks, axis=(1, 3))
    out = np.full(counts.shape, np.nan, np.float32)
    np.divide(sums, counts, out=out, where=counts > 0)
    return out


def write_score_overlay(
    path: Path, coords: np.ndarray, scores: dict[str, np.ndarray], step: int | None, slide_mpp: float, name: str
) -> dict[str, float]:
    """Write the overlay (channels named after ``scores``' keys); returns its origin (level-0 px)
    and cell size (level-0 px and microns)."""
    cell = grid_step(coords, step)
    grids = []
    for values in scores.values():
        grid, origin = score_grid(coords, np.asarray(values, dtype=np.float32), cell)
        grids.append(grid)
    levels = [np.stack(grids)]
    while max(levels[-1].shape[1:]) > 64:
        levels.append(np.stack([_halve(g) for g in levels[-1]]))
    um = cell * slide_mpp
    meta = {
        "axes": "CYX",
        "Name": name,
        "Channel": {"Name": list(scores)},
        "PhysicalSizeX": um,
        "PhysicalSizeY": um,
        "PhysicalSizeXUnit": "µm",
        "PhysicalSizeYUnit": "µm",
    }
    with atomic_output(path) as tmp:
        with tifffile.TiffWriter(tmp, ome=True) as tw:
            opts: dict[str, Any] = {"tile": (64, 64), "compression": "zlib", "photometric": "minisblack"}
            tw.write(levels[0], subifds=len(levels) - 1, metadata=meta, **opts)
            for level in levels[1:]:
                tw.write(level, subfiletype=1, **opts)
    return {"origin_x": float(origin[0]), "origin_y": float(origin[1]), "cell_px": float(cell), "cell_um": um}
