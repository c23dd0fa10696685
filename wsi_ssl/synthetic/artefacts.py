"""Things real slides carry besides tissue: marker pen strokes and slide-edge artefacts.

They exist so that tissue detection is tested against what fools it: saturated blue and green
ink and near-black strokes both on glass and across tissue, and a dark band where the glass or
coverslip edge enters the scan. They change pixels only; the class map (truth) still says what
tissue lies underneath, so tiles under ink keep their tissue label.
"""

from __future__ import annotations

import cv2
import numpy as np

# Fraction of light each ink lets through per channel (R, G, B).
PEN_INKS: dict[str, tuple[float, float, float]] = {
    "blue": (0.22, 0.32, 0.78),
    "green": (0.25, 0.62, 0.35),
    "black": (0.14, 0.14, 0.16),
}


def _bezier(p0: np.ndarray, p1: np.ndarray, p2: np.ndarray, n: int = 64) -> np.ndarray:
    t = np.linspace(0.0, 1.0, n)[:, None]
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2


def _edge_point(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    side = int(rng.integers(4))
    u = rng.uniform(0.1, 0.9)
    return np.array([(u * w, 0.0), (w - 1.0, u * h), (u * w, h - 1.0), (0.0, u * h)][side])


def draw_pen_marks(
    rgb: np.ndarray, rng: np.random.Generator, tissue_centre: tuple[float, float], n_strokes: int = 3
) -> np.ndarray:
    """Draw thick ink strokes in place and return the uint8 ink mask (255 = ink).

    Each stroke is a curve from one slide edge through the tissue to another edge (so it lies on
    glass and crosses tissue); one colour per stroke, cycling blue, green, black.
    """
    if not rgb.flags.c_contiguous:
        raise ValueError("draw_pen_marks draws in place and needs a C-contiguous RGB array")
    h, w = rgb.shape[:2]
    mask = np.zeros((h, w), np.uint8)
    flat = rgb.reshape(-1, 3)
    inks = list(PEN_INKS)
    for i in range(n_strokes):
        stroke = np.zeros((h, w), np.uint8)
        thickness = max(int(rng.uniform(0.018, 0.03) * min(h, w)), 3)
        start, end = _edge_point(rng, w, h), _edge_point(rng, w, h)
        through = np.array(tissue_centre) + rng.normal(0, 0.12, 2) * (w, h)
        curve = _bezier(start, through, end)
        cv2.polylines(stroke, [np.rint(curve).astype(np.int32)], False, 255, thickness, cv2.LINE_AA)
        idx = np.flatnonzero(stroke)  # a stroke covers a few % of the slide: work on those only
        alpha = stroke.ravel()[idx].astype(np.float32) * np.float32(rng.uniform(0.85, 1.0) / 255.0)
        absorbed = 1.0 - np.array(PEN_INKS[inks[i % len(inks)]], np.float32)
        pixels = flat[idx].astype(np.float32)
        pixels *= 1.0 - alpha[:, None] * absorbed
        flat[idx] = np.clip(pixels, 0, 255).astype(np.uint8)
        np.maximum(mask, stroke, out=mask)
    return mask


def draw_edge_artefacts(rgb: np.ndarray, rng: np.random.Generator) -> None:
    """A dark, blurred band along one slide edge and a thin coverslip line next to it (in place)."""
    h, w = rgb.shape[:2]
    side = int(rng.integers(4))  # 0 top, 1 right, 2 bottom, 3 left
    length = h if side in (0, 2) else w
    band = max(int(rng.uniform(0.02, 0.05) * min(h, w)), 2)
    line_at = band + int(rng.uniform(0.5, 1.5) * band)
    depth = min(line_at + 3, length)
    ramp = np.clip(np.linspace(1.0, -0.5, 2 * band), 0, 1).astype(np.float32)  # dark -> clear
    prof = np.ones(depth, np.float32)
    n = min(len(ramp), depth)
    prof[:n] = 1.0 - 0.8 * ramp[:n]
    prof[line_at:depth] *= 0.55
    if side in (2, 1):
        prof = prof[::-1]
    if side == 0:
        view, shaped = rgb[:depth], prof[:, None, None]
    elif side == 2:
        view, shaped = rgb[h - depth :], prof[:, None, None]
    elif side == 3:
        view, shaped = rgb[:, :depth], prof[None, :, None]
    else:
        view, shaped = rgb[:, w - depth :], prof[None, :, None]
    view[:] = np.clip(view * shaped, 0, 255).astype(np.uint8)
