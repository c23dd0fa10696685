"""Tissue-class textures rendered as haematoxylin/eosin concentration fields at level 0.

What each class looks like at 0.5 um/px (all sizes are set in microns, so they scale with MPP):

- background: empty glass, near-white with faint noise.
- tumour: sheets of large (r ~5-9 um), irregular, dark haematoxylin nuclei with coarse
  chromatin on pink-purple cytoplasm. Two grades (the biomarker's morphology, see cohort.py):
  *low grade* has smaller, paler, regular nuclei and round gland lumens lined by a ring of
  nuclei; *high grade* has solid sheets of larger, denser, pleomorphic, hyperchromatic nuclei
  with dark nucleoli and no lumens.
- stroma: pink eosin fibres, wavy and roughly parallel, with sparse spindle nuclei lying along
  the fibres and scattered lymphocytes (their density is the slide's stromal TIL level).
- lymphocytes: small (r ~3 um), round, very dark nuclei packed densely.
- fat: large empty polygonal cells (~80 um) with thin pink membranes.

Everything is vectorised numpy/OpenCV at level 0 except one short OpenCV call per nucleus;
smooth fields are drawn coarse and upsampled.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial import cKDTree

from wsi_ssl.synthetic.layout import smooth_noise
from wsi_ssl.synthetic.stain import H_MAX
from wsi_ssl.synthetic.truth import BACKGROUND, FAT, LYMPHOCYTES, STROMA, TUMOR

# Base (cytoplasm / matrix) concentrations per class id: background, tumour, stroma, lymph, fat.
BASE_H = np.array([0.0, 0.26, 0.05, 0.16, 0.0], dtype=np.float32)
BASE_E = np.array([0.012, 0.42, 0.30, 0.22, 0.02], dtype=np.float32)
NUCLEUS_SCALE = H_MAX / 255.0  # canvas value 255 == the darkest representable haematoxylin
SUBPIXEL_BITS = 3


@dataclass(frozen=True)
class TissueStyle:
    """Per-slide morphology knobs.

    ``high_grade`` selects the tumour morphology (the biomarker's texture); ``stromal_til`` in
    [0, 1] sets how densely lymphocytes infiltrate the stroma.
    """

    high_grade: bool = False
    stromal_til: float = 0.2


@dataclass(frozen=True)
class NucleusKind:
    """Shape and stain of one population of nuclei (sizes in microns)."""

    spacing_um: float
    radius_um: tuple[float, float]
    aspect: tuple[float, float]
    irregularity: float
    darkness: tuple[float, float]  # haematoxylin concentration range
    keep: float = 1.0  # fraction of grid points that get a nucleus


TUMOR_LOW = NucleusKind(15.0, (4.2, 5.8), (1.0, 1.35), 0.07, (1.15, 1.6), keep=0.9)
TUMOR_HIGH = NucleusKind(13.0, (6.0, 9.0), (1.0, 1.7), 0.22, (1.9, 2.7), keep=1.0)
LYMPHOCYTE = NucleusKind(8.0, (2.8, 3.6), (1.0, 1.15), 0.05, (2.3, 2.9), keep=0.95)
SPINDLE = NucleusKind(38.0, (5.5, 8.0), (3.0, 4.5), 0.05, (1.3, 1.8), keep=0.8)


def jittered_points(
    rng: np.random.Generator, shape: tuple[int, int], spacing: float, jitter: float = 0.4
) -> np.ndarray:
    """``[N, 2]`` float (x, y) points on a jittered square grid covering ``shape``."""
    h, w = shape
    ys, xs = np.mgrid[spacing / 2 : h : spacing, spacing / 2 : w : spacing]
    pts = np.stack([xs.ravel(), ys.ravel()], axis=1)
    pts += rng.uniform(-jitter, jitter, pts.shape) * spacing
    return pts


def in_class(points: np.ndarray, labels: np.ndarray, cls: int) -> np.ndarray:
    """Boolean per point: is its pixel in ``labels`` of class ``cls``."""
    h, w = labels.shape
    xi = np.clip(points[:, 0].astype(np.int64), 0, w - 1)
    yi = np.clip(points[:, 1].astype(np.int64), 0, h - 1)
    return labels[yi, xi] == cls


def points_in(points: np.ndarray, labels: np.ndarray, cls: int) -> np.ndarray:
    """The points whose pixel in ``labels`` is class ``cls``."""
    return points[in_class(points, labels, cls)]


def nucleus_polygons(
    rng: np.random.Generator,
    centres: np.ndarray,
    kind: NucleusKind,
    mpp: float,
    angles: np.ndarray | None = None,
    n_vertices: int = 12,
) -> np.ndarray:
    """``[N, K, 2]`` int32 polygon vertices (fixed-point, SUBPIXEL_BITS) of irregular ellipses."""
    n = len(centres)
    radius = rng.uniform(*kind.radius_um, n) / mpp
    aspect = rng.uniform(*kind.aspect, n)
    a = radius * np.sqrt(aspect)  # same area as a circle of ``radius``
    b = radius / np.sqrt(aspect)
    if angles is None:
        angles = rng.uniform(0, np.pi, n)
    t = np.linspace(0, 2 * np.pi, n_vertices, endpoint=False)
    # Smooth radial wobble: low angular harmonics with random phases.
    wobble = np.zeros((n, n_vertices))
    for harmonic in (2, 3, 5):
        phase = rng.uniform(0, 2 * np.pi, (n, 1))
        amp = rng.uniform(0, kind.irregularity, (n, 1)) / harmonic**0.5
        wobble += amp * np.sin(harmonic * t[None, :] + phase)
    r = 1.0 + wobble
    ex = a[:, None] * np.cos(t)[None, :] * r
    ey = b[:, None] * np.sin(t)[None, :] * r
    c, s = np.cos(angles)[:, None], np.sin(angles)[:, None]
    x = centres[:, 0:1] + ex * c - ey * s
    y = centres[:, 1:2] + ex * s + ey * c
    return np.rint(np.stack([x, y], axis=2) * (1 << SUBPIXEL_BITS)).astype(np.int32)


def draw_nuclei(
    canvas: np.ndarray,
    rng: np.random.Generator,
    centres: np.ndarray,
    kind: NucleusKind,
    mpp: float,
    angles: np.ndarray | None = None,
) -> np.ndarray:
    """Fill nuclei into the uint8 ``canvas`` (value = haematoxylin / NUCLEUS_SCALE); returns vertices."""
    if len(centres) == 0:
        return np.zeros((0, 12, 2), np.int32)
    keep = rng.random(len(centres)) < kind.keep
    centres = centres[keep]
    if angles is not None:
        angles = angles[keep]
    polys = nucleus_polygons(rng, centres, kind, mpp, angles)
    values = np.clip(rng.uniform(*kind.darkness, len(polys)) / NUCLEUS_SCALE, 1, 255).astype(int)
    for poly, value in zip(polys, values.tolist()):
        cv2.fillPoly(canvas, [poly], value, lineType=cv2.LINE_AA, shift=SUBPIXEL_BITS)
    return polys


def fibre_field(rng: np.random.Generator, shape: tuple[int, int], mpp: float) -> tuple[np.ndarray, float]:
    """Wavy parallel fibres in [0, 1] and their mean direction (radians).

    The fibres are the bright bands of ``sin(2 pi psi / period)`` where ``psi`` is a tilted
    plane plus smooth noise: its level sets are wavy, roughly parallel curves. Drawn at half
    resolution and upsampled.
    """
    h, w = shape
    hh, hw = (h + 1) // 2, (w + 1) // 2
    theta = rng.uniform(0, np.pi)
    period = rng.uniform(7.0, 10.0) / mpp / 2
    yy, xx = np.mgrid[0:hh, 0:hw].astype(np.float32)
    psi = xx * np.float32(np.cos(theta)) + yy * np.float32(np.sin(theta))
    psi += smooth_noise(rng, (hh, hw), 90.0 / mpp / 2) * np.float32(35.0 / mpp / 2)
    psi += smooth_noise(rng, (hh, hw), 25.0 / mpp / 2) * np.float32(4.0 / mpp / 2)
    bands = np.sin(psi * np.float32(2 * np.pi / period))
    fibres = np.clip(bands, 0, 1) ** 2
    # Break fibres into segments and vary their strength.
    fibres *= np.clip(0.55 + 0.6 * smooth_noise(rng, (hh, hw), 12.0 / mpp / 2), 0, 1)
    full = cv2.resize(fibres, (hw * 2, hh * 2), interpolation=cv2.INTER_LINEAR)[:h, :w]
    return full, theta + np.pi / 2  # bands run perpendicular to the plane's gradient


def fat_membranes(rng: np.random.Generator, shape: tuple[int, int], mpp: float) -> np.ndarray:
    """[0, 1] map of thin polygonal cell membranes (Voronoi edges of ~80 um cells)."""
    h, w = shape
    f = 2
    sh, sw = (h + f - 1) // f, (w + f - 1) // f
    spacing = rng.uniform(65.0, 95.0) / mpp / f
    seeds = jittered_points(rng, (sh, sw), spacing, jitter=0.35)
    img = np.ones((sh, sw), np.uint8)
    xi = np.clip(seeds[:, 0].astype(int), 0, sw - 1)
    yi = np.clip(seeds[:, 1].astype(int), 0, sh - 1)
    img[yi, xi] = 0
    _, labels = cv2.distanceTransformWithLabels(img, cv2.DIST_L2, 3, labelType=cv2.DIST_LABEL_PIXEL)
    edge = np.zeros((sh, sw), np.float32)
    edge[:, 1:] += labels[:, 1:] != labels[:, :-1]
    edge[1:, :] += labels[1:, :] != labels[:-1, :]
    edge = np.minimum(edge, 1.0)
    edge = cv2.resize(edge, (sw * f, sh * f), interpolation=cv2.INTER_LINEAR)[:h, :w]
    return cv2.GaussianBlur(edge, (0, 0), 0.5 / mpp * 0.8)


def lumens(
    rng: np.random.Generator, labels: np.ndarray, mpp: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gland lumens inside tumour: (mask uint8, centres [N, 2], radii [N]) in level-0 px."""
    centres = points_in(jittered_points(rng, labels.shape, 95.0 / mpp, 0.3), labels, TUMOR)
    radii = rng.uniform(14.0, 30.0, len(centres)) / mpp
    mask = np.zeros(labels.shape, np.uint8)
    for (x, y), r in zip(centres.tolist(), radii.tolist()):
        cv2.circle(mask, (int(x), int(y)), int(r), 255, -1, lineType=cv2.LINE_AA)
    return mask, centres, radii


def ring_nuclei(
    rng: np.random.Generator, centres: np.ndarray, radii: np.ndarray, kind: NucleusKind, mpp: float
) -> tuple[np.ndarray, np.ndarray]:
    """Centres and radial angles of columnar nuclei lining each lumen."""
    nucleus_r = np.mean(kind.radius_um) / mpp
    pts, angs = [], []
    for (x, y), r in zip(centres.tolist(), radii.tolist()):
        ring = r + nucleus_r * 1.4
        n = max(int(2 * np.pi * ring / (nucleus_r * 2.3)), 3)
        phi = np.linspace(0, 2 * np.pi, n, endpoint=False) + rng.uniform(0, 2 * np.pi)
        pts.append(np.stack([x + ring * np.cos(phi), y + ring * np.sin(phi)], axis=1))
        angs.append(phi)
    if not pts:
        return np.zeros((0, 2)), np.zeros(0)
    return np.concatenate(pts), np.concatenate(angs)


def render_concentrations(
    rng: np.random.Generator, labels: np.ndarray, mpp: float, style: TissueStyle
) -> tuple[np.ndarray, np.ndarray]:
    """Haematoxylin and eosin concentration fields (float32, level 0) for a label image."""
    shape = labels.shape
    h_conc = BASE_H[labels]
    e_conc = BASE_E[labels]
    tissue = labels != BACKGROUND
    # Staining unevenness: slow (~0.5 mm) and cellular-scale (~15 um) multiplicative noise.
    mottle = 1.0 + 0.10 * smooth_noise(rng, shape, 500.0 / mpp) + 0.12 * smooth_noise(rng, shape, 15.0 / mpp)
    e_conc *= mottle
    h_conc *= mottle
    grain = smooth_noise(rng, shape, 1.5)  # pixel-scale grain and chromatin texture
    e_conc += np.where(tissue, 0.05, 0.006).astype(np.float32) * grain

    fibres, fibre_dir = fibre_field(rng, shape, mpp)
    stroma = labels == STROMA
    e_conc += np.where(stroma, 0.55 * fibres, 0).astype(np.float32)

    fat = labels == FAT
    membranes = fat_membranes(rng, shape, mpp)
    e_conc = np.where(fat, 0.015 + 0.6 * membranes, e_conc).astype(np.float32)
    h_conc = np.where(fat, 0.04 * membranes, h_conc).astype(np.float32)

    canvas = np.zeros(shape, np.uint8)
    tumor_kind = TUMOR_HIGH if style.high_grade else TUMOR_LOW
    tumor_pts = points_in(jittered_points(rng, shape, tumor_kind.spacing_um / mpp), labels, TUMOR)
    lumen_mask = None
    if not style.high_grade:
        lumen_mask, lumen_c, lumen_r = lumens(rng, labels, mpp)
        if len(lumen_c) and len(tumor_pts):
            # Keep sheet nuclei clear of lumens and their lining.
            dist, nearest = cKDTree(lumen_c).query(tumor_pts)
            margin = lumen_r[nearest] + 2.6 * tumor_kind.radius_um[1] / mpp
            tumor_pts = tumor_pts[dist > margin]
        ring_pts, ring_angles = ring_nuclei(rng, lumen_c, lumen_r, tumor_kind, mpp)
        keep = in_class(ring_pts, labels, TUMOR)
        columnar = NucleusKind(1.0, tumor_kind.radius_um, (1.5, 2.0), 0.05, tumor_kind.darkness)
        draw_nuclei(canvas, rng, ring_pts[keep], columnar, mpp, ring_angles[keep])
    polys = draw_nuclei(canvas, rng, tumor_pts, tumor_kind, mpp)
    if style.high_grade and len(polys):
        # Prominent nucleoli: a small very dark dot off-centre in each nucleus.
        centre = polys.mean(axis=1) / (1 << SUBPIXEL_BITS)
        offset = rng.normal(0, 1.2 / mpp, centre.shape)
        r = max(int(round(0.9 / mpp)), 1)
        for x, y in (centre + offset).astype(int).tolist():
            cv2.circle(canvas, (x, y), r, 255, -1, lineType=cv2.LINE_AA)

    lymph_pts = points_in(jittered_points(rng, shape, LYMPHOCYTE.spacing_um / mpp, 0.35), labels, LYMPHOCYTES)
    draw_nuclei(canvas, rng, lymph_pts, LYMPHOCYTE, mpp)

    spindle_pts = points_in(jittered_points(rng, shape, SPINDLE.spacing_um / mpp), labels, STROMA)
    spindle_angles = fibre_dir + rng.normal(0, 0.25, len(spindle_pts))
    draw_nuclei(canvas, rng, spindle_pts, SPINDLE, mpp, spindle_angles)
    if style.stromal_til > 0:
        # Infiltrating lymphocytes: spacing shrinks as the TIL level rises.
        til_spacing = LYMPHOCYTE.spacing_um / np.sqrt(0.02 + 0.5 * style.stromal_til) / mpp
        til_pts = points_in(jittered_points(rng, shape, til_spacing, 0.5), labels, STROMA)
        draw_nuclei(canvas, rng, til_pts, LYMPHOCYTE, mpp)

    nuclei = cv2.GaussianBlur(canvas, (0, 0), 0.35 / mpp).astype(np.float32) * np.float32(NUCLEUS_SCALE)
    nuclei *= 1.0 + 0.22 * grain  # chromatin texture
    h_conc += nuclei
    e_conc *= np.clip(1.0 - 0.25 * nuclei, 0.3, 1.0)
    if lumen_mask is not None:
        open_space = lumen_mask.astype(np.float32) * np.float32(1 / 255)
        open_space *= labels == TUMOR
        h_conc *= 1.0 - 0.9 * open_space
        e_conc *= 1.0 - 0.85 * open_space
    np.maximum(h_conc, 0, out=h_conc)
    np.maximum(e_conc, 0, out=e_conc)
    return h_conc, e_conc
