"""Tissue-class textures: haematoxylin/eosin fields at level 0, turned into RGB in row bands.

What each class looks like at 0.5 um/px (all sizes are set in microns, so they scale with MPP):

- background: empty glass, near-white with faint noise.
- tumour: sheets of haematoxylin nuclei with coarse chromatin on pink-purple cytoplasm, with
  oval gland lumens lined by a ring of nuclei (nuclei.py). Low grade: small (r ~4-6 um), pale,
  regular nuclei. High-grade slides (the biomarker's morphology, see cohort.py) have high-grade
  foci over most of their tumour: larger (r ~6.5-9 um), pleomorphic nuclei with dark nucleoli,
  spaced wider and only slightly darker, so the stain and the architecture stay the same.
- stroma: pink eosin fibres, wavy and roughly parallel, with sparse spindle nuclei lying along
  the fibres, scattered lymphocytes (their density is the slide's stromal TIL level) and small
  blood vessels with red cells (vessels.py).
- lymphocytes: small (r ~3 um), round, very dark nuclei packed densely.
- fat: large empty polygonal cells (~80 um) with thin pink membranes.

Everything is vectorised numpy/OpenCV at level 0 except one short OpenCV call per nucleus;
smooth fields are drawn coarse and upsampled.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from wsi_ssl.synthetic.layout import smooth_noise
from wsi_ssl.synthetic.nuclei import NUCLEUS_SCALE, draw_all_nuclei, jittered_points
from wsi_ssl.synthetic.stain import StainStyle, to_rgb
from wsi_ssl.synthetic.truth import FAT, STROMA, TUMOR
from wsi_ssl.synthetic.vessels import draw_vessels

# Base (cytoplasm / matrix) concentrations per class id: background, tumour, stroma, lymph, fat.
BASE_H = np.array([0.0, 0.26, 0.05, 0.16, 0.0], dtype=np.float32)
BASE_E = np.array([0.012, 0.42, 0.30, 0.22, 0.015], dtype=np.float32)
BAND_ROWS = 1024  # rows of level 0 rendered at a time
GRAIN_PERIOD = 1024  # pixel-scale grain repeats every this many pixels (invisible at 0.5 mm)


@dataclass(frozen=True)
class TissueStyle:
    """Per-slide morphology knobs.

    ``high_grade`` adds high-grade foci to the tumour (the biomarker's morphology); ``stromal_til`` in
    [0, 1] sets how densely lymphocytes infiltrate the stroma.
    """

    high_grade: bool = False
    stromal_til: float = 0.2


def fibre_field(rng: np.random.Generator, shape: tuple[int, int], mpp: float) -> tuple[np.ndarray, float]:
    """Wavy parallel fibres in [0, 1] at half resolution, and their mean direction (radians).

    The fibres are the bright bands of ``sin(2 pi psi / period)`` where ``psi`` is a tilted
    plane plus smooth noise: its level sets are wavy, roughly parallel curves.
    """
    hh, hw = shape[0], shape[1]
    theta = rng.uniform(0, np.pi)
    period = rng.uniform(7.0, 10.0) / mpp / 2
    psi = np.arange(hw, dtype=np.float32)[None, :] * np.float32(np.cos(theta))
    psi = psi + np.arange(hh, dtype=np.float32)[:, None] * np.float32(np.sin(theta))
    psi += smooth_noise(rng, (hh, hw), 90.0 / mpp / 2) * np.float32(35.0 / mpp / 2)
    psi += smooth_noise(rng, (hh, hw), 25.0 / mpp / 2) * np.float32(4.0 / mpp / 2)
    fibres = np.sin(psi * np.float32(2 * np.pi / period))
    np.clip(fibres, 0, 1, out=fibres)
    fibres *= fibres
    # Break fibres into segments and vary their strength.
    fibres *= np.clip(0.55 + 0.6 * smooth_noise(rng, (hh, hw), 12.0 / mpp / 2), 0, 1)
    return fibres, theta + np.pi / 2  # bands run perpendicular to the plane's gradient


def fat_membranes(rng: np.random.Generator, shape: tuple[int, int], mpp: float) -> np.ndarray:
    """[0, 1] map at half resolution of thin polygonal membranes (Voronoi edges of ~80 um cells)."""
    sh, sw = shape
    spacing = rng.uniform(65.0, 95.0) / mpp / 2
    seeds = jittered_points(rng, (sh, sw), spacing, jitter=0.35)
    img = np.ones((sh, sw), np.uint8)
    xi = np.clip(seeds[:, 0].astype(int), 0, sw - 1)
    yi = np.clip(seeds[:, 1].astype(int), 0, sh - 1)
    img[yi, xi] = 0
    _, labels = cv2.distanceTransformWithLabels(img, cv2.DIST_L2, 3, labelType=cv2.DIST_LABEL_PIXEL)
    edge = np.zeros((sh, sw), np.float32)
    edge[:, 1:] += labels[:, 1:] != labels[:, :-1]
    edge[1:, :] += labels[1:, :] != labels[:-1, :]
    np.minimum(edge, 1.0, out=edge)
    return cv2.GaussianBlur(edge, (0, 0), 0.4 / mpp / 2 + 0.3)


def _upsample_rows(src: np.ndarray, factor: int, y0: int, y1: int, width: int) -> np.ndarray:
    """Rows ``[y0, y1)`` of ``src`` bilinearly upsampled by ``factor``, cropped to ``width``.

    Resizes only the source rows those output rows need, plus one on each side, so bands
    join without seams.
    """
    r0 = max(0, y0 // factor - 1)
    r1 = min(src.shape[0], -(-y1 // factor) + 1)
    up = cv2.resize(src[r0:r1], (src.shape[1] * factor, (r1 - r0) * factor), interpolation=cv2.INTER_LINEAR)
    return up[y0 - r0 * factor : y1 - r0 * factor, :width]


def _blur_rows(canvas: np.ndarray, sigma: float, y0: int, y1: int) -> np.ndarray:
    """Rows ``[y0, y1)`` of the Gaussian-blurred canvas, blurring a margin wider than the kernel."""
    margin = int(np.ceil(4 * sigma)) + 2
    c0, c1 = max(0, y0 - margin), min(canvas.shape[0], y1 + margin)
    return cv2.GaussianBlur(canvas[c0:c1], (0, 0), sigma)[y0 - c0 : y1 - c0]


def _tile_rows(block: np.ndarray, y0: int, y1: int, width: int) -> np.ndarray:
    """Rows ``[y0, y1)`` of ``block`` repeated to cover the plane (float32 copy)."""
    bh, bw = block.shape
    rows = block[np.arange(y0, y1) % bh]
    reps = -(-width // bw)
    return np.tile(rows, (1, reps))[:, :width] if reps > 1 else rows[:, :width].copy()


def render_rgb(
    rng: np.random.Generator, labels: np.ndarray, mpp: float, style: TissueStyle, stain: StainStyle
) -> np.ndarray:
    """Level-0 RGB uint8 ``[h, w, 3]`` of a label image.

    Everything that needs the whole slide (layout-dependent nuclei, lumens, vessels, fibres,
    membranes, mottle) is drawn first as uint8 masks or at half/quarter resolution; the
    float haematoxylin/eosin arithmetic then runs in bands of BAND_ROWS rows straight into the
    RGB array. Peak memory is about 9 bytes per level-0 pixel, and a 12-megapixel slide costs a
    few passes over memory, not the number of nuclei.
    """
    h, w = labels.shape
    hh, hw = -(-h // 2), -(-w // 2)
    qh, qw = -(-h // 4), -(-w // 4)
    # Staining unevenness: slow (~0.5 mm) and cellular-scale (~15 um) multiplicative noise at
    # quarter resolution; pixel-scale grain (also chromatin texture) from a repeated block.
    mottle_q = 0.10 * smooth_noise(rng, (qh, qw), 125.0 / mpp) + 0.12 * smooth_noise(rng, (qh, qw), 3.75 / mpp)
    mottle_q += 1.0
    grain_block = smooth_noise(rng, (min(h, GRAIN_PERIOD), min(w, GRAIN_PERIOD)), 1.5)

    # Fibres in stroma, membranes in fat: one eosin overlay composed at half resolution.
    labels_half = labels[::2, ::2]
    fibres, fibre_dir = fibre_field(rng, (hh, hw), mpp)
    membranes = fat_membranes(rng, (hh, hw), mpp)
    fat_half = labels_half == FAT
    overlay = np.where(fat_half, membranes, fibres)
    overlay *= fat_half | (labels_half == STROMA)
    overlay *= np.float32(0.55)
    del fibres, membranes, fat_half, labels_half

    canvas = np.zeros((h, w), np.uint8)
    vessels = draw_vessels(rng, labels, mpp, canvas)
    canvas, lumen_mask = draw_all_nuclei(
        rng,
        labels,
        mpp,
        high_grade=style.high_grade,
        stromal_til=style.stromal_til,
        fibre_direction=fibre_dir,
        canvas=canvas,
        keep_out=vessels.lumen,
    )
    # Gland lumens (in tumour) and vessel lumens (in stroma) are open space: most stain gone,
    # a little eosinophilic secretion left; red cells inside vessels are strongly eosinophilic.
    open_space = vessels.lumen
    np.multiply(open_space, labels == STROMA, out=open_space, casting="unsafe")
    if lumen_mask is not None:
        np.multiply(lumen_mask, labels == TUMOR, out=lumen_mask, casting="unsafe")
        np.maximum(open_space, lumen_mask, out=open_space)
        del lumen_mask
    blood = np.minimum(vessels.blood, open_space)
    del vessels
    level = np.arange(256, dtype=np.float32) / np.float32(255.0)
    keep_h, keep_e, red = 1.0 - 0.9 * level, 1.0 - 0.85 * level, 0.95 * level

    lut = stain.lut()
    sigma = 0.35 / mpp
    rgb = np.empty((h, w, 3), np.uint8)
    for y0 in range(0, h, BAND_ROWS):
        y1 = min(h, y0 + BAND_ROWS)
        band = labels[y0:y1]
        h_conc = BASE_H[band]
        e_conc = BASE_E[band]
        mottle = _upsample_rows(mottle_q, 4, y0, y1, w)
        grain = _tile_rows(grain_block, y0, y1, w)
        h_conc *= mottle
        mottle += 0.15 * grain
        e_conc *= mottle
        e_conc += _upsample_rows(overlay, 2, y0, y1, w)
        nuclei = _blur_rows(canvas, sigma, y0, y1).astype(np.float32)
        grain *= np.float32(0.22 * NUCLEUS_SCALE)
        grain += np.float32(NUCLEUS_SCALE)
        nuclei *= grain  # haematoxylin with chromatin texture
        h_conc += nuclei
        nuclei *= -0.25
        nuclei += 1.0
        np.clip(nuclei, 0.3, 1.0, out=nuclei)
        e_conc *= nuclei  # nuclei displace eosin-stained cytoplasm
        holes = open_space[y0:y1]
        h_conc *= keep_h[holes]
        e_conc *= keep_e[holes]
        e_conc += red[blood[y0:y1]]
        rgb[y0:y1] = to_rgb(h_conc, e_conc, lut)
    return rgb
