"""Cell nuclei: where they go and what shape they have, drawn into one haematoxylin canvas.

Nuclei sit on a jittered grid (spacing set per population in microns) restricted to their
class, and are filled as irregular polygons: an ellipse of random size, aspect and angle whose
radius wobbles with a few low angular harmonics. The canvas value of a nucleus is its
haematoxylin concentration / NUCLEUS_SCALE. Populations:

- tumour, low grade: r 4.2-5.8 um, regular, pale, 15 um apart; plus oval gland lumens
  (r 12-30 um) lined by a ring of columnar nuclei, sheet nuclei kept clear of the lumens.
- tumour, high-grade foci (biomarker-positive slides only, HIGH_GRADE_SHARE = 75% of their
  tumour, in patches a few hundred microns across; the rest of their tumour is low grade):
  r 6.5-9.0 um, pleomorphic (irregular outline, aspect up to 1.7), each with a dark nucleolus,
  22 um apart and only slightly darker (H 1.25-1.75 vs 1.15-1.6), so the nuclear share of the
  tumour and its colour barely change. Same glands and lumens as low grade. The difference is
  nuclear size, shape and nucleoli, not stain or architecture.
- lymphocytes: r 2.8-3.6 um, round, very dark, 8 um apart.
- stroma: sparse spindle nuclei along the fibre direction, plus infiltrating lymphocytes whose
  spacing shrinks as the slide's stromal TIL level rises.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial import cKDTree

from wsi_ssl.synthetic.layout import smooth_noise
from wsi_ssl.synthetic.stain import H_MAX
from wsi_ssl.synthetic.truth import LYMPHOCYTES, STROMA, TUMOR

NUCLEUS_SCALE = H_MAX / 255.0  # canvas value 255 == the darkest representable haematoxylin
SUBPIXEL_BITS = 3


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
# High-grade nuclei: larger, pleomorphic, only slightly darker, spaced wider, so the nuclear share
# of the tumour (and with it the tile's mean colour) barely changes; each has a nucleolus.
TUMOR_HIGH = NucleusKind(22.0, (6.5, 9.0), (1.0, 1.7), 0.25, (1.25, 1.75), keep=1.0)
HIGH_GRADE_SHARE = 0.75  # share of a high-grade slide's tumour area that lies in high-grade foci
FOCUS_SCALE_UM = 120.0  # correlation length of the foci pattern (foci a few hundred um across)
LYMPHOCYTE = NucleusKind(8.0, (2.8, 3.6), (1.0, 1.15), 0.05, (2.3, 2.9), keep=0.95)
SPINDLE = NucleusKind(34.0, (3.0, 4.0), (4.0, 6.5), 0.05, (1.4, 1.9), keep=0.85)


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


def high_grade_foci(rng: np.random.Generator, labels: np.ndarray, mpp: float) -> Callable[[np.ndarray], np.ndarray]:
    """A test for ``[N, 2]`` (x, y) points: are they in a high-grade focus?

    The foci are the top HIGH_GRADE_SHARE of a smooth noise field over the tumour (correlation
    length FOCUS_SCALE_UM), evaluated on an 8 um grid.
    """
    step = max(1, int(round(8.0 / mpp)))  # an 8 um grid is fine enough for ~100 um foci
    coarse = labels[::step, ::step]
    field = smooth_noise(rng, coarse.shape, FOCUS_SCALE_UM / mpp / step)
    tumour = field[coarse == TUMOR]
    cut = float(np.quantile(tumour, 1.0 - HIGH_GRADE_SHARE)) if len(tumour) else np.inf
    mask = field > cut

    def inside(points: np.ndarray) -> np.ndarray:
        xi = np.clip((points[:, 0] / step).astype(np.int64), 0, mask.shape[1] - 1)
        yi = np.clip((points[:, 1] / step).astype(np.int64), 0, mask.shape[0] - 1)
        return mask[yi, xi]

    return inside


def lumens(
    rng: np.random.Generator, labels: np.ndarray, mpp: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Gland lumens inside tumour, slightly oval and wobbly.

    Returns (mask uint8, centres [N, 2], semi-axes a [N], b [N], angles [N]) in level-0 px.
    """
    centres = points_in(jittered_points(rng, labels.shape, 95.0 / mpp, 0.3), labels, TUMOR)
    n = len(centres)
    radius = rng.uniform(12.0, 30.0, n) / mpp
    aspect = rng.uniform(1.0, 1.5, n)
    a, b = radius * np.sqrt(aspect), radius / np.sqrt(aspect)
    angles = rng.uniform(0, np.pi, n)
    t = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    wobble = 1.0 + 0.06 * np.sin(3 * t[None, :] + rng.uniform(0, 2 * np.pi, (n, 1)))
    ex, ey = a[:, None] * np.cos(t) * wobble, b[:, None] * np.sin(t) * wobble
    c, s = np.cos(angles)[:, None], np.sin(angles)[:, None]
    poly = np.stack([centres[:, 0:1] + ex * c - ey * s, centres[:, 1:2] + ex * s + ey * c], axis=2)
    poly = np.rint(poly * (1 << SUBPIXEL_BITS)).astype(np.int32)
    mask = np.zeros(labels.shape, np.uint8)
    for one in poly:
        cv2.fillPoly(mask, [one], 255, lineType=cv2.LINE_AA, shift=SUBPIXEL_BITS)
    return mask, centres, a, b, angles


def ring_nuclei(
    rng: np.random.Generator,
    centres: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    angles: np.ndarray,
    kind: NucleusKind,
    mpp: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Centres and radial angles of columnar nuclei lining each lumen."""
    offset = np.mean(kind.radius_um) / mpp * 1.5
    spacing = np.mean(kind.radius_um) / mpp * 2.3
    pts, angs = [], []
    for (x, y), ai, bi, rot in zip(centres.tolist(), a.tolist(), b.tolist(), angles.tolist()):
        n = max(int(np.pi * (ai + bi + 2 * offset) / spacing), 3)
        phi = np.linspace(0, 2 * np.pi, n, endpoint=False) + rng.uniform(0, 2 * np.pi)
        ex, ey = (ai + offset) * np.cos(phi), (bi + offset) * np.sin(phi)
        c, s = np.cos(rot), np.sin(rot)
        pts.append(np.stack([x + ex * c - ey * s, y + ex * s + ey * c], axis=1))
        angs.append(np.arctan2(ex * s + ey * c, ex * c - ey * s))
    if not pts:
        return np.zeros((0, 2)), np.zeros(0)
    return np.concatenate(pts), np.concatenate(angs)


def draw_all_nuclei(
    rng: np.random.Generator,
    labels: np.ndarray,
    mpp: float,
    *,
    high_grade: bool,
    stromal_til: float,
    fibre_direction: float,
    canvas: np.ndarray | None = None,
    keep_out: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """The uint8 nucleus canvas for a label image, and the gland-lumen mask.

    ``high_grade``: HIGH_GRADE_SHARE of the tumour becomes high-grade foci (TUMOR_HIGH nuclei with
    nucleoli); the rest, and all tumour of a low-grade slide, is TUMOR_LOW. Draws into ``canvas``
    if given; stromal nuclei avoid pixels where ``keep_out`` (uint8, e.g. vessel lumens) is
    non-zero.
    """
    shape = labels.shape
    canvas = np.zeros(shape, np.uint8) if canvas is None else canvas

    def stromal(points: np.ndarray) -> np.ndarray:
        points = points_in(points, labels, STROMA)
        if keep_out is None or len(points) == 0:
            return points
        xi = np.clip(points[:, 0].astype(np.int64), 0, shape[1] - 1)
        yi = np.clip(points[:, 1].astype(np.int64), 0, shape[0] - 1)
        return points[keep_out[yi, xi] == 0]

    tumor_kind = TUMOR_LOW
    tumor_pts = points_in(jittered_points(rng, shape, tumor_kind.spacing_um / mpp), labels, TUMOR)
    focus = high_grade_foci(rng, labels, mpp) if high_grade else None
    high_pts = np.zeros((0, 2))
    if focus is not None:
        tumor_pts = tumor_pts[~focus(tumor_pts)]
        high_pts = points_in(jittered_points(rng, shape, TUMOR_HIGH.spacing_um / mpp), labels, TUMOR)
        high_pts = high_pts[focus(high_pts)]
    lumen_mask, lumen_c, lumen_a, lumen_b, lumen_angle = lumens(rng, labels, mpp)
    if len(lumen_c):
        # Keep sheet nuclei clear of lumens and their lining.
        tree = cKDTree(lumen_c)
        if len(tumor_pts):
            dist, nearest = tree.query(tumor_pts)
            tumor_pts = tumor_pts[dist > lumen_a[nearest] + 2.6 * tumor_kind.radius_um[1] / mpp]
        if len(high_pts):
            dist, nearest = tree.query(high_pts)
            margin = lumen_a[nearest] + (1.6 * tumor_kind.radius_um[1] + TUMOR_HIGH.radius_um[1]) / mpp
            high_pts = high_pts[dist > margin]
    ring_pts, ring_angles = ring_nuclei(rng, lumen_c, lumen_a, lumen_b, lumen_angle, tumor_kind, mpp)
    keep = in_class(ring_pts, labels, TUMOR)
    columnar = NucleusKind(1.0, tumor_kind.radius_um, (1.5, 2.0), 0.05, tumor_kind.darkness)
    draw_nuclei(canvas, rng, ring_pts[keep], columnar, mpp, ring_angles[keep])
    draw_nuclei(canvas, rng, tumor_pts, tumor_kind, mpp)
    polys = draw_nuclei(canvas, rng, high_pts, TUMOR_HIGH, mpp)
    if len(polys):  # high-grade nuclei only
        # Prominent nucleoli: a small very dark dot off-centre in each nucleus.
        centre = polys.mean(axis=1) / (1 << SUBPIXEL_BITS)
        offset = rng.normal(0, 1.2 / mpp, centre.shape)
        r = max(int(round(1.1 / mpp)), 1)
        for x, y in (centre + offset).astype(int).tolist():
            cv2.circle(canvas, (x, y), r, 255, -1, lineType=cv2.LINE_AA)

    lymph_pts = points_in(jittered_points(rng, shape, LYMPHOCYTE.spacing_um / mpp, 0.35), labels, LYMPHOCYTES)
    draw_nuclei(canvas, rng, lymph_pts, LYMPHOCYTE, mpp)

    spindle_pts = stromal(jittered_points(rng, shape, SPINDLE.spacing_um / mpp))
    spindle_angles = fibre_direction + rng.normal(0, 0.25, len(spindle_pts))
    draw_nuclei(canvas, rng, spindle_pts, SPINDLE, mpp, spindle_angles)
    if stromal_til > 0:
        # Infiltrating lymphocytes: spacing shrinks as the TIL level rises.
        til_spacing = LYMPHOCYTE.spacing_um / np.sqrt(0.02 + 0.5 * stromal_til) / mpp
        til_pts = stromal(jittered_points(rng, shape, til_spacing, 0.5))
        draw_nuclei(canvas, rng, til_pts, LYMPHOCYTE, mpp)
    return canvas, lumen_mask
