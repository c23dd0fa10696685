"""H&E colour: stain vectors, per-slide stain variation, and the concentration -> RGB lookup.

Pixels are rendered as haematoxylin (H) and eosin (E) concentrations and turned into RGB with
the Beer-Lambert law, ``I = I0 * exp(-(H * h_vector + E * e_vector))``, the model that
colour-deconvolution (Ruifrok-Johnston, Macenko) inverts. The reference vectors are the
Macenko H&E reference; each slide perturbs their direction, scales each stain's strength and
tints the glass, which is the variation stain-jitter augmentation is meant to absorb. The
conversion is a 256 x 256 lookup table on quantised (H, E), so colouring a 12-megapixel slide
is one gather instead of three exponentials per pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# Macenko reference optical-density vectors (unit length) for haematoxylin and eosin.
H_REFERENCE = np.array([0.5626, 0.7201, 0.4062])
E_REFERENCE = np.array([0.2159, 0.8012, 0.5581])

H_MAX = 3.2  # concentration that maps to quantisation level 255
E_MAX = 1.6


@dataclass(frozen=True)
class StainStyle:
    """One slide's staining: stain directions, strengths and glass colour."""

    h_vector: np.ndarray
    e_vector: np.ndarray
    h_strength: float
    e_strength: float
    glass: np.ndarray  # RGB of empty glass, 0-255

    @classmethod
    def reference(cls) -> StainStyle:
        return cls(H_REFERENCE.copy(), E_REFERENCE.copy(), 1.0, 1.0, np.array([241.0, 240.0, 242.0]))

    @classmethod
    def sample(cls, rng: np.random.Generator, jitter: float = 1.0) -> StainStyle:
        """A random but plausible staining; ``jitter=0`` gives the reference."""

        def perturb(v: np.ndarray, amount: float) -> np.ndarray:
            out = np.clip(v + rng.normal(0.0, amount * jitter, 3), 0.02, None)
            return out / np.linalg.norm(out)

        glass_level = 241.0 + rng.uniform(-6, 5) * jitter
        glass = np.clip(glass_level + rng.normal(0.0, 1.5 * jitter, 3), 215, 252)
        return cls(
            h_vector=perturb(H_REFERENCE, 0.06),
            e_vector=perturb(E_REFERENCE, 0.06),
            h_strength=float(np.exp(rng.normal(0.0, 0.15 * jitter))),
            e_strength=float(np.exp(rng.normal(0.0, 0.18 * jitter))),
            glass=glass,
        )

    def lut(self) -> np.ndarray:
        """uint8 ``[256 * 256, 3]`` table: row ``hq * 256 + eq`` is the RGB of that (H, E)."""
        h = np.linspace(0.0, H_MAX, 256) * self.h_strength
        e = np.linspace(0.0, E_MAX, 256) * self.e_strength
        od = h[:, None, None] * self.h_vector + e[None, :, None] * self.e_vector
        rgb = self.glass * np.exp(-od)
        return np.clip(np.rint(rgb), 0, 255).astype(np.uint8).reshape(-1, 3)


def to_rgb(h: np.ndarray, e: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """RGB uint8 ``[..., 3]`` of concentration fields ``h`` and ``e`` (same shape) via ``StainStyle.lut()``."""
    # convertScaleAbs saturates to uint8 in one pass (inputs are non-negative, so abs is a no-op).
    hq: np.ndarray = cv2.convertScaleAbs(h, alpha=255.0 / H_MAX).astype(np.uint16)
    eq: np.ndarray = cv2.convertScaleAbs(e, alpha=255.0 / E_MAX)
    hq <<= 8
    hq |= eq
    return lut[hq]
