"""Tissue-class textures rendered as haematoxylin/eosin concentration fields at level 0 (nuclei: nuclei.py).

What each class looks like at 0.5 um/px (all sizes are set in microns, so they scale with MPP):

- background: empty glass, near-white with faint noise.
- tumour: sheets of large (r ~5-9 um), irregular, dark haematoxylin nuclei with coarse
  chromatin on pink-purple cytoplasm. Two grades (the biomarker's morphology, see cohort.py):
  *low grade* has smaller, paler, regular nuclei and round gland lumens lined by a ring of
  nuclei; *high grade* has solid sheets of larger, denser, pleomorphic, hyperchromatic nuclei
  with dark nucleoli and no lumens.
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

from wsi_ssl.synthetic.layout import smooth_noise, tiled_noise
from wsi_ssl.synthetic.nuclei import NUCLEUS_SCALE, draw_all_nuclei, jittered_points
from wsi_ssl.synthetic.truth import FAT, STROMA, TUMOR
from wsi_ssl.synthetic.vessels import draw_vessels

# Base (cytoplasm / matrix) concentrations per class id: background, tumour, stroma, lymph, fat.
BASE_H = np.array([0.0, 0.26, 0.05, 0.16, 0.0], dtype=np.float32)
BASE_E = np.array([0.012, 0.42, 0.30, 0.22, 0.015], dtype=np.float32)


@dataclass(frozen=True)
class TissueStyle:
    """Per-slide morphology knobs.

    ``high_grade`` selects the tumour morphology (the biomarker's texture); ``stromal_til`` in
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


def render_concentrations(
    rng: np.random.Generator, labels: np.ndarray, mpp: float, style: TissueStyle
) -> tuple[np.ndarray, np.ndarray]:
    """Haematoxylin and eosin concentration fields (float32, level 0) for a label image.

    Smooth fields (mottle, fibres, membranes) are composed at half or quarter resolution and
    upsampled once; the full-resolution work is a few in-place passes, which is what a
    12-megapixel slide costs, not the number of nuclei.
    """
    h, w = labels.shape
    hh, hw = -(-h // 2), -(-w // 2)
    h_conc = BASE_H[labels]
    e_conc = BASE_E[labels]
    # Staining unevenness: slow (~0.5 mm) and cellular-scale (~15 um) multiplicative noise,
    # drawn at quarter resolution; pixel-scale grain from a repeated block.
    qh, qw = -(-h // 4), -(-w // 4)
    mottle_q = 0.10 * smooth_noise(rng, (qh, qw), 125.0 / mpp) + 0.12 * smooth_noise(rng, (qh, qw), 3.75 / mpp)
    mottle = cv2.resize(mottle_q, (w, h), interpolation=cv2.INTER_LINEAR)
    mottle += 1.0
    grain = tiled_noise(rng, (h, w), 1.5)
    h_conc *= mottle
    mottle += 0.15 * grain
    e_conc *= mottle
    del mottle

    # Fibres in stroma, membranes in fat: one overlay composed at half resolution.
    labels_half = labels[::2, ::2]
    fibres, fibre_dir = fibre_field(rng, (hh, hw), mpp)
    membranes = fat_membranes(rng, (hh, hw), mpp)
    fat_half = labels_half == FAT
    overlay = np.where(fat_half, membranes, fibres)
    overlay *= fat_half | (labels_half == STROMA)
    overlay *= np.float32(0.55)
    e_conc += cv2.resize(overlay, (hw * 2, hh * 2), interpolation=cv2.INTER_LINEAR)[:h, :w]
    del overlay, fibres, membranes

    canvas, lumen_mask = draw_all_nuclei(
        rng, labels, mpp, high_grade=style.high_grade, stromal_til=style.stromal_til, fibre_direction=fibre_dir
    )
    vessels = draw_vessels(rng, labels, mpp, canvas)
    nuclei = cv2.GaussianBlur(canvas, (0, 0), 0.35 / mpp).astype(np.float32)
    del canvas
    grain *= np.float32(0.22 * NUCLEUS_SCALE)
    grain += np.float32(NUCLEUS_SCALE)
    nuclei *= grain  # haematoxylin with chromatin texture
    del grain
    h_conc += nuclei
    nuclei *= -0.25
    nuclei += 1.0
    np.clip(nuclei, 0.3, 1.0, out=nuclei)
    e_conc *= nuclei  # nuclei displace eosin-stained cytoplasm
    del nuclei
    # Gland lumens (in tumour) and vessel lumens (in stroma) are open space: most stain gone,
    # a little eosinophilic secretion left; red cells inside vessels are strongly eosinophilic.
    open_space = vessels.lumen
    np.multiply(open_space, labels == STROMA, out=open_space, casting="unsafe")
    if lumen_mask is not None:
        np.multiply(lumen_mask, labels == TUMOR, out=lumen_mask, casting="unsafe")
        np.maximum(open_space, lumen_mask, out=open_space)
    level = np.arange(256, dtype=np.float32) / 255.0
    h_conc *= (1.0 - 0.9 * level)[open_space]
    e_conc *= (1.0 - 0.85 * level)[open_space]
    np.minimum(vessels.blood, open_space, out=vessels.blood)
    e_conc += (0.95 * level)[vessels.blood]
    np.maximum(h_conc, 0, out=h_conc)
    np.maximum(e_conc, 0, out=e_conc)
    return h_conc, e_conc
