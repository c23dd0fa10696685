"""Per-slide heatmaps of instance scores (attention) and the top-scoring tiles.

Works from coords alone: tiles sit on a regular grid in level-0 pixels, so scores are painted
into a grid image (one cell per tile step). When a slide reader opens the slide file
(``wsi_ssl.slide.readers``, ``auto``: OpenSlide, then tiffslide), the same scores are drawn over
the slide thumbnail and the top tiles are cropped from level 0; their coordinates are always
listed in a CSV.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from wsi_ssl.slide.readers import SlideReader, open_slide  # noqa: E402
from wsi_ssl.stores.atomic import atomic_output  # noqa: E402


def grid_step(coords: np.ndarray, fallback: int | None = None) -> int:
    """The tile spacing in level-0 pixels: the smallest positive gap between distinct x or y."""
    gaps = [np.diff(np.unique(coords[:, j])) for j in (0, 1)]
    positive = np.concatenate([g[g > 0] for g in gaps]) if len(coords) > 1 else np.empty(0)
    if len(positive):
        return int(positive.min())
    return int(fallback or 256)


def score_grid(coords: np.ndarray, scores: np.ndarray, step: int) -> tuple[np.ndarray, np.ndarray]:
    """A [rows, cols] float image (NaN where no tile) and the level-0 origin (x0, y0)."""
    origin = coords.min(axis=0)
    cells = ((coords - origin) // step).astype(int)
    grid = np.full((cells[:, 1].max() + 1, cells[:, 0].max() + 1), np.nan, dtype=np.float32)
    grid[cells[:, 1], cells[:, 0]] = scores
    return grid, origin


def _normalize(scores: np.ndarray) -> np.ndarray:
    """Rank-normalize to [0, 1]: attention is heavy-tailed, ranks keep the map readable."""
    if len(scores) < 2:
        return np.ones_like(scores, dtype=np.float32)
    ranks = np.argsort(np.argsort(scores, kind="stable"), kind="stable")
    return (ranks / (len(scores) - 1)).astype(np.float32)


def _save_png(fig: plt.Figure, path: Path) -> None:
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def slide_heatmap(
    coords: np.ndarray,
    scores: np.ndarray,
    out_png: str | Path,
    tile_px: int | None = None,
    slide_path: str | Path | None = None,
    title: str = "",
    top_k: int = 8,
    backend: str = "auto",
) -> dict[str, str]:
    """Write ``out_png`` (grid or thumbnail overlay) and the top tiles; return what was written.

    The slide is read through the reader protocol (``backend`` names the reader), on the
    backend's own library: a handful of reads does not pay for the native TIFF probe.
    """
    slide = (
        open_slide(slide_path, backend, fast_reads=False)
        if slide_path is not None and Path(slide_path).exists()
        else None
    )
    try:
        return _write_heatmap(coords, scores, Path(out_png), tile_px, slide, title, top_k)
    finally:
        if slide is not None:
            slide.close()


def _write_heatmap(
    coords: np.ndarray,
    scores: np.ndarray,
    out_png: Path,
    tile_px: int | None,
    slide: SlideReader | None,
    title: str,
    top_k: int,
) -> dict[str, str]:
    step = grid_step(coords, tile_px)
    tile_px = int(tile_px or step)
    norm = _normalize(np.asarray(scores, dtype=np.float64))
    written: dict[str, str] = {}
    fig, ax = plt.subplots(figsize=(6, 6))
    if slide is not None:
        w0, h0 = slide.dimensions
        thumb = slide.thumbnail((1024, 1024))
        scale = thumb.shape[1] / w0
        ax.imshow(thumb)
        grid, origin = score_grid(coords, norm, step)
        extent = (
            origin[0] * scale,
            (origin[0] + grid.shape[1] * step) * scale,
            (origin[1] + grid.shape[0] * step) * scale,
            origin[1] * scale,
        )
        im = ax.imshow(
            np.ma.masked_invalid(grid), cmap="jet", alpha=0.45, extent=extent, vmin=0, vmax=1, interpolation="nearest"
        )
        ax.set_xlim(0, thumb.shape[1])
        ax.set_ylim(thumb.shape[0], 0)
    else:
        grid, _ = score_grid(coords, norm, step)
        im = ax.imshow(np.ma.masked_invalid(grid), cmap="jet", vmin=0, vmax=1, interpolation="nearest")
    fig.colorbar(im, ax=ax, fraction=0.046, label="score rank")
    ax.set_title(title or out_png.stem)
    ax.axis("off")
    _save_png(fig, out_png)
    written["heatmap"] = str(out_png)
    top = np.argsort(-np.asarray(scores))[:top_k]
    csv = out_png.with_name(out_png.stem + "_top_tiles.csv")
    with atomic_output(csv) as tmp:
        rows = ["rank,x,y,score"] + [
            f"{r + 1},{coords[i, 0]},{coords[i, 1]},{float(scores[i]):.6g}" for r, i in enumerate(top)
        ]
        tmp.write_text("\n".join(rows) + "\n")
    written["top_tiles_csv"] = str(csv)
    if slide is not None and top_k > 0:
        crops = [
            Image.fromarray(slide.read_region(int(coords[i, 0]), int(coords[i, 1]), 0, tile_px, tile_px)).resize(
                (160, 160)
            )
            for i in top
        ]
        montage = Image.new("RGB", (160 * len(crops), 160), "white")
        for j, crop in enumerate(crops):
            montage.paste(crop, (160 * j, 0))
        top_png = out_png.with_name(out_png.stem + "_top_tiles.png")
        with atomic_output(top_png) as tmp:
            montage.save(tmp, format="PNG")
        written["top_tiles"] = str(top_png)
    return written


def level0_tile_px(attrs: dict[str, Any], slide_mpp: float | None) -> int | None:
    """A tile's size in level-0 pixels: ``tile_size`` at the feature ``mpp`` over the slide's mpp."""
    size, mpp = attrs.get("tile_size"), attrs.get("mpp")
    if not size:
        return None
    if mpp and slide_mpp:
        return int(round(float(size) * float(mpp) / float(slide_mpp)))
    return int(size)
