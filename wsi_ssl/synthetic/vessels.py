"""Small blood vessels in stroma: an open lumen, flat endothelial nuclei, red blood cells.

They make stroma tiles less uniform (as in real sections) without changing any class: the truth
still calls them stroma. Vessels sit on a jittered ~250 um grid within stroma (about half of the
grid points get one); each is an oval 15-45 um wide and 1.5-3 times as long, lined by
flattened nuclei and partly filled with red blood cells (discs of r ~3.5 um, strongly
eosinophilic, no haematoxylin).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from wsi_ssl.synthetic.nuclei import SUBPIXEL_BITS, NucleusKind, draw_nuclei, jittered_points, points_in
from wsi_ssl.synthetic.truth import STROMA

ENDOTHELIUM = NucleusKind(1.0, (2.5, 3.2), (4.0, 6.0), 0.03, (1.4, 1.9), keep=0.9)


@dataclass(frozen=True)
class Vessels:
    """Level-0 uint8 masks: ``lumen`` (255 = open space) and ``blood`` (255 = red cell)."""

    lumen: np.ndarray
    blood: np.ndarray


def draw_vessels(rng: np.random.Generator, labels: np.ndarray, mpp: float, nuclei: np.ndarray) -> Vessels:
    """Draw vessel lumens and red cells, and endothelial nuclei into the ``nuclei`` canvas."""
    shape = labels.shape
    lumen = np.zeros(shape, np.uint8)
    blood = np.zeros(shape, np.uint8)
    centres = points_in(jittered_points(rng, shape, 250.0 / mpp, 0.35), labels, STROMA)
    centres = centres[rng.random(len(centres)) < 0.5]
    if len(centres) == 0:
        return Vessels(lumen, blood)
    n = len(centres)
    half_width = rng.uniform(7.5, 22.5, n) / mpp
    half_length = half_width * rng.uniform(1.5, 3.0, n)
    angles = rng.uniform(0, np.pi, n)
    t = np.linspace(0, 2 * np.pi, 32, endpoint=False)
    ring_pts, ring_angles = [], []
    rbc_r = max(int(round(3.5 / mpp)), 1)
    for (x, y), a, b, rot in zip(centres.tolist(), half_length.tolist(), half_width.tolist(), angles.tolist()):
        c, s = np.cos(rot), np.sin(rot)
        ex, ey = a * np.cos(t), b * np.sin(t)
        poly = np.stack([x + ex * c - ey * s, y + ex * s + ey * c], axis=1)
        cv2.fillPoly(
            lumen, [np.rint(poly * (1 << SUBPIXEL_BITS)).astype(np.int32)], 255, cv2.LINE_AA, shift=SUBPIXEL_BITS
        )
        # Red cells: uniform in the inner 80% of the oval, filling about a third of it.
        count = int(0.3 * a * b / rbc_r**2)
        r = 0.8 * np.sqrt(rng.random(count))
        phi = rng.uniform(0, 2 * np.pi, count)
        px, py = a * r * np.cos(phi), b * r * np.sin(phi)
        for u, v in zip((x + px * c - py * s).astype(int).tolist(), (y + px * s + py * c).astype(int).tolist()):
            cv2.circle(blood, (u, v), rbc_r, 255, -1, cv2.LINE_AA)
        # Endothelium: flat nuclei along the wall, lying tangentially.
        k = max(int(np.pi * (a + b) / (18.0 / mpp)), 3)
        phi = np.linspace(0, 2 * np.pi, k, endpoint=False) + rng.uniform(0, 2 * np.pi)
        wx, wy = (a + 1.5 / mpp) * np.cos(phi), (b + 1.5 / mpp) * np.sin(phi)
        ring_pts.append(np.stack([x + wx * c - wy * s, y + wx * s + wy * c], axis=1))
        tangent = np.arctan2(b * np.cos(phi), -a * np.sin(phi)) + rot
        ring_angles.append(tangent)
    draw_nuclei(nuclei, rng, np.concatenate(ring_pts), ENDOTHELIUM, mpp, np.concatenate(ring_angles))
    return Vessels(lumen, blood)
