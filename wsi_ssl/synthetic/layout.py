"""Where the tissue is and which class each part of it belongs to (the coarse class map).

The map has one cell per ``MAP_DOWNSAMPLE`` x ``MAP_DOWNSAMPLE`` level-0 pixels. Tissue is one
to three blobs (perturbed ellipses with noisy, irregular edges) on glass. Inside the tissue the
classes come from smooth random fields thresholded at quantiles, so the realised class
fractions equal the requested ones up to rounding: ``tumor_fraction`` of the tissue is tumour,
``fat_fraction`` fat, and of the remaining connective tissue ``lymph_fraction`` is lymphocyte
aggregates and the rest stroma. Region sizes are set in microns, so a slide at 0.25 um/px shows
the same anatomy at twice the pixel size.
"""

from __future__ import annotations

import cv2
import numpy as np

from wsi_ssl.synthetic.truth import BACKGROUND, FAT, LYMPHOCYTES, STROMA, TUMOR

MAP_DOWNSAMPLE = 4


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], scale: float) -> np.ndarray:
    """Zero-mean, about unit-variance float32 noise with correlation length ``scale`` (pixels).

    Drawn on a grid ``scale`` times coarser and upsampled bicubically, so the cost at full
    resolution is one resize; the variance is normalised on a strided subsample.
    """
    h, w = shape
    scale = max(float(scale), 1.0)
    gh, gw = max(int(np.ceil(h / scale)) + 1, 2), max(int(np.ceil(w / scale)) + 1, 2)
    coarse = rng.standard_normal((gh, gw), dtype=np.float32)
    out: np.ndarray = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    step = max(1, int(np.sqrt(h * w / 250_000)))
    sample = out[::step, ::step]
    mean, std = float(sample.mean()), float(sample.std())
    out -= np.float32(mean)
    if std > 0:
        out *= np.float32(1.0 / std)
    return out


def tissue_mask(rng: np.random.Generator, shape: tuple[int, int], cell_um: float) -> np.ndarray:
    """Boolean tissue mask: 1-3 irregular blobs covering roughly 25-60% (median ~36%) of the slide."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    n_blobs = int(rng.choice([1, 1, 2, 2, 3]))
    field: np.ndarray = np.full(shape, np.inf, dtype=np.float32)
    for _ in range(n_blobs):
        cx, cy = rng.uniform(0.3, 0.7) * w, rng.uniform(0.3, 0.7) * h
        size = rng.uniform(0.32, 0.45) / np.sqrt(n_blobs)
        rx, ry = size * w * rng.uniform(0.8, 1.2), size * h * rng.uniform(0.8, 1.2)
        angle = rng.uniform(0, np.pi)
        c, s = np.cos(angle), np.sin(angle)
        u = ((xx - cx) * c + (yy - cy) * s) / rx
        v = (-(xx - cx) * s + (yy - cy) * c) / ry
        field = np.minimum(field, np.sqrt(u * u + v * v))
    coarse = smooth_noise(rng, shape, min(h, w) / 6)
    # Edge detail in microns: ~150 um lobes and ~40 um fraying.
    medium = smooth_noise(rng, shape, 150.0 / cell_um)
    fine = smooth_noise(rng, shape, 40.0 / cell_um)
    field = field + 0.18 * coarse + 0.07 * medium + 0.03 * fine
    mask = field < 1.0
    if not mask.any():  # degenerate tiny slide: keep a central blob
        mask[h // 4 : max(h * 3 // 4, h // 4 + 1), w // 4 : max(w * 3 // 4, w // 4 + 1)] = True
    return mask


def _top_fraction(field: np.ndarray, where: np.ndarray, fraction: float) -> np.ndarray:
    """Boolean mask of the ``fraction`` of ``where`` cells with the highest ``field`` values."""
    out = np.zeros(field.shape, dtype=bool)
    n = int(round(fraction * int(where.sum())))
    if n <= 0:
        return out
    idx = np.flatnonzero(where)
    values = field.ravel()[idx]
    top = np.argpartition(values, len(values) - n)[len(values) - n :]
    out.flat[idx[top]] = True
    return out


def class_layout(
    rng: np.random.Generator,
    shape: tuple[int, int],
    *,
    cell_um: float,
    tumor_fraction: float,
    fat_fraction: float,
    lymph_fraction: float,
) -> np.ndarray:
    """The uint8 class map of a slide (see the module docstring for the rules)."""
    for name, value in (
        ("tumor_fraction", tumor_fraction),
        ("fat_fraction", fat_fraction),
        ("lymph_fraction", lymph_fraction),
    ):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {value}")
    if tumor_fraction + fat_fraction > 1.0:
        raise ValueError(f"tumor_fraction + fat_fraction must be <= 1, got {tumor_fraction + fat_fraction}")
    tissue = tissue_mask(rng, shape, cell_um)
    cmap = np.full(shape, BACKGROUND, dtype=np.uint8)
    cmap[tissue] = STROMA
    # Tumour: nests and sheets ~300 um across, slightly connected.
    tumor_field = smooth_noise(rng, shape, 300.0 / cell_um) + 0.3 * smooth_noise(rng, shape, 80.0 / cell_um)
    tumor = _top_fraction(tumor_field, tissue, tumor_fraction)
    cmap[tumor] = TUMOR
    rest = tissue & ~tumor
    # Fat: lobules ~250 um, preferring the tissue periphery.
    periphery: np.ndarray = cv2.distanceTransform(tissue.astype(np.uint8), cv2.DIST_L2, 3)
    periphery = -periphery / max(float(periphery.max()), 1.0)
    fat_field = smooth_noise(rng, shape, 250.0 / cell_um) + 1.5 * periphery
    n_rest = int(rest.sum())
    fat_share = min(fat_fraction * int(tissue.sum()) / n_rest, 1.0) if n_rest else 0.0
    fat = _top_fraction(fat_field, rest, fat_share)
    cmap[fat] = FAT
    connective = rest & ~fat
    # Lymphocyte aggregates ~120 um, often at the tumour border.
    tumor_near = cv2.GaussianBlur(tumor.astype(np.float32), (0, 0), 60.0 / cell_um)
    lymph_field = smooth_noise(rng, shape, 120.0 / cell_um) + 1.0 * tumor_near
    lymph = _top_fraction(lymph_field, connective, lymph_fraction)
    cmap[lymph] = LYMPHOCYTES
    return cmap


def upsample_labels(
    rng: np.random.Generator, cmap: np.ndarray, downsample: int, shape: tuple[int, int], mpp: float
) -> np.ndarray:
    """Level-0 label image from the class map, with wiggly instead of staircase boundaries.

    Each pixel takes the class of the map cell under a smoothly displaced position (~15 um
    correlation, up to ~1.5 cells, plus pixel-scale jitter), computed at half resolution and doubled. The truth map
    stays exact away from boundaries and within a few pixels at them.
    """
    h, w = shape
    hh, hw = -(-h // 2), -(-w // 2)
    step = downsample / 2.0  # half-res pixels per map cell
    amplitude = np.float32(0.6)  # in map cells (noise is ~unit variance)
    dx = smooth_noise(rng, (hh, hw), 15.0 / mpp / 2) * amplitude
    dy = smooth_noise(rng, (hh, hw), 15.0 / mpp / 2) * amplitude
    # Pixel-scale jitter breaks the remaining cell staircase into a ragged edge.
    dx += smooth_noise(rng, (hh, hw), 2.0) * np.float32(0.35)
    dy += smooth_noise(rng, (hh, hw), 2.0) * np.float32(0.35)
    dx += (np.arange(hw, dtype=np.float32) + 0.5) / np.float32(step) - 0.5
    dy += (np.arange(hh, dtype=np.float32)[:, None] + 0.5) / np.float32(step) - 0.5
    half = cv2.remap(cmap, dx, dy, interpolation=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
    full = cv2.resize(half, (hw * 2, hh * 2), interpolation=cv2.INTER_NEAREST)
    return np.ascontiguousarray(full[:h, :w])
