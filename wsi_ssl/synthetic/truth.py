"""Ground truth of a generated slide: the class map the pixels were rendered from, and tile labels.

The generator renders every level-0 pixel from a coarse class map (one class per
``downsample x downsample`` block of level-0 pixels, nearest-neighbour upsampled), so this map
is the exact truth, not an estimate. It is stored beside the slide as ``<stem>.truth.npz`` so
that any later stage can label tiles by their level-0 coordinates without the generator.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

CLASS_NAMES: tuple[str, ...] = ("background", "tumor", "stroma", "lymphocytes", "fat")
"""Tissue classes; the index is the class id used in class maps and tile labels."""

BACKGROUND, TUMOR, STROMA, LYMPHOCYTES, FAT = range(len(CLASS_NAMES))

TRUTH_SUFFIX = ".truth.npz"


@dataclass(frozen=True)
class SlideTruth:
    """What a generated slide contains.

    ``class_map`` is uint8 ``[h, w]`` with one class id per ``downsample x downsample`` block of
    level-0 pixels; ``tumor_fraction`` is the fraction of tissue (non-background) map cells that
    are tumour; ``path`` is the truth file.
    """

    class_map: np.ndarray
    downsample: int
    mpp: float
    tumor_fraction: float
    path: Path
    params: str = ""  # JSON of the generator arguments that made the slide ("" if unknown)

    def class_fractions(self) -> dict[str, float]:
        """Fraction of tissue occupied by each non-background class."""
        return class_fractions(self.class_map)


def class_fractions(class_map: np.ndarray) -> dict[str, float]:
    """Fraction of tissue cells per tissue class (background excluded from the denominator)."""
    counts = np.bincount(class_map.ravel(), minlength=len(CLASS_NAMES)).astype(np.float64)
    tissue = counts[1:].sum()
    if tissue == 0:
        return {name: 0.0 for name in CLASS_NAMES[1:]}
    return {name: float(counts[i] / tissue) for i, name in enumerate(CLASS_NAMES) if i > 0}


def truth_path_for(slide_path: str | Path) -> Path:
    """Where the truth of ``slide_path`` lives: ``<slide dir>/<stem>.truth.npz``."""
    slide_path = Path(slide_path)
    return slide_path.with_name(slide_path.stem + TRUTH_SUFFIX)


def save_truth(path: str | Path, class_map: np.ndarray, downsample: int, mpp: float, params: str = "") -> SlideTruth:
    """Write the truth file (compressed npz) and return it as a :class:`SlideTruth`.

    ``params`` (JSON text of the generator arguments) lets a rerun recognise a slide that is
    already generated with the same arguments and skip it.
    """
    path = Path(path)
    class_map = np.ascontiguousarray(class_map, dtype=np.uint8)
    tumor_fraction = class_fractions(class_map)["tumor"]
    tmp = path.with_name(f".{path.name}.partial.npz")
    np.savez_compressed(
        tmp,
        class_map=class_map,
        downsample=np.int64(downsample),
        class_names=np.array(CLASS_NAMES),
        mpp=np.float64(mpp),
        tumor_fraction=np.float64(tumor_fraction),
        params=np.array(params),
    )
    tmp.replace(path)
    return SlideTruth(class_map, int(downsample), float(mpp), float(tumor_fraction), path, params)


def load_truth(path: str | Path) -> SlideTruth:
    """Read a truth file written by :func:`save_truth`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"truth file not found: {path} (generate the slide with write_slide)")
    with np.load(path, allow_pickle=False) as data:
        names = tuple(str(n) for n in data["class_names"])
        if names != CLASS_NAMES:
            raise ValueError(f"{path}: class names {names} differ from {CLASS_NAMES}")
        class_map = data["class_map"].astype(np.uint8)
        return SlideTruth(
            class_map=class_map,
            downsample=int(data["downsample"]),
            mpp=float(data["mpp"]),
            tumor_fraction=float(class_fractions(class_map)["tumor"]),
            path=path,
            params=str(data["params"]) if "params" in data.files else "",
        )


def tile_labels(truth_file: str | Path | SlideTruth, coords: np.ndarray, extent_level0: float) -> np.ndarray:
    """Majority class id of each tile footprint ``[x, x+extent) x [y, y+extent)`` (level-0 px).

    ``coords`` is ``[N, 2]`` of (x, y) top-left corners in level-0 pixels, as in a tile store.
    Counting uses one integral image per class, so labelling many tiles costs O(N). Ties go to
    the lower class id; a footprint entirely outside the slide is background.
    """
    truth = truth_file if isinstance(truth_file, SlideTruth) else load_truth(truth_file)
    coords = np.asarray(coords, dtype=np.float64).reshape(-1, 2)
    if extent_level0 <= 0:
        raise ValueError(f"extent_level0 must be positive, got {extent_level0}")
    cmap, ds = truth.class_map, truth.downsample
    h, w = cmap.shape
    n_classes = len(CLASS_NAMES)
    # integral[c, i, j] = number of cells of class c in cmap[:i, :j]
    onehot = (cmap[None, :, :] == np.arange(n_classes, dtype=np.uint8)[:, None, None]).astype(np.int64)
    integral = np.zeros((n_classes, h + 1, w + 1), dtype=np.int64)
    integral[:, 1:, 1:] = onehot.cumsum(1).cumsum(2)

    def cell(v: np.ndarray, limit: int) -> np.ndarray:
        return np.clip(v, 0, limit).astype(np.int64)

    x0 = cell(np.floor(coords[:, 0] / ds), w)
    y0 = cell(np.floor(coords[:, 1] / ds), h)
    x1 = cell(np.ceil((coords[:, 0] + extent_level0) / ds), w)
    y1 = cell(np.ceil((coords[:, 1] + extent_level0) / ds), h)
    counts = integral[:, y1, x1] - integral[:, y0, x1] - integral[:, y1, x0] + integral[:, y0, x0]
    labels = counts.argmax(axis=0).astype(np.int64)
    labels[counts.sum(axis=0) == 0] = BACKGROUND
    return labels
