"""Controlled image shifts for the robustness table, on uint8 RGB batches ``[B, H, W, 3]``.

Each shift is deterministic (the same patch always shifts the same way), so a re-run hits the
embedding cache and two encoders are scored on identical pixels:

- ``hed_{weak,medium,strong}``: another lab's staining. One stain change for the whole test set,
  applied in haematoxylin/eosin/DAB optical density (Ruifrok & Johnston's matrix, the one
  ``wsi_ssl.pretrain.augment.hed_jitter`` and skimage's ``rgb2hed`` use): H scaled by ``1 + s``,
  E by ``1 - s/2``, plus a small H/E offset, ``s`` = 0.1, 0.25, 0.5;
- ``brightness_contrast``: brightness x1.15 and contrast x0.8 about the mean grey;
- ``jpeg_q50``: a JPEG round trip at quality 50;
- ``blur``: Gaussian blur, sigma 1.5 px (a scanner out of focus);
- ``scanner``: a scanner-like colour response: per-channel gamma (0.9, 1.0, 1.1) and a cross-talk
  colour matrix, as between two scanners' colour profiles.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import torch

Shift = Callable[[np.ndarray], np.ndarray]
HED_STRENGTHS = {"hed_weak": 0.1, "hed_medium": 0.25, "hed_strong": 0.5}


def hed_shift(images: np.ndarray, alpha: tuple[float, float, float], beta: tuple[float, float, float]) -> np.ndarray:
    """Scale stain concentrations by ``alpha`` and add ``beta`` (optical-density units), RGB -> RGB."""
    from wsi_ssl.pretrain.augment import HED_FROM_RGB, RGB_FROM_HED

    m, minv = RGB_FROM_HED.numpy(), HED_FROM_RGB.numpy()
    od = -np.log(np.clip(images.astype(np.float64) / 255.0, 1e-6, 1.0))
    hed = od @ minv
    hed = hed * np.asarray(alpha) + np.asarray(beta)
    rgb = np.exp(-(hed @ m)) * 255.0
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def _hed(strength: float) -> Shift:
    return lambda x: hed_shift(x, (1 + strength, 1 - strength / 2, 1.0), (0.05 * strength, -0.05 * strength, 0.0))


def brightness_contrast(images: np.ndarray, brightness: float = 1.15, contrast: float = 0.8) -> np.ndarray:
    x = images.astype(np.float32) * brightness
    grey = x.mean(axis=(1, 2, 3), keepdims=True)
    return np.clip(np.rint((x - grey) * contrast + grey), 0, 255).astype(np.uint8)


def jpeg(images: np.ndarray, quality: int = 50) -> np.ndarray:
    out = np.empty_like(images)
    for i, im in enumerate(images):
        ok, buf = cv2.imencode(".jpg", im[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
        decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else None
        if decoded is None:
            raise RuntimeError("JPEG round trip failed")
        out[i] = decoded[..., ::-1]
    return out


def blur(images: np.ndarray, sigma: float = 1.5) -> np.ndarray:
    return np.stack([cv2.GaussianBlur(im, (0, 0), sigma) for im in images])


SCANNER_MATRIX = np.array([[0.92, 0.06, 0.02], [0.04, 0.90, 0.06], [0.02, 0.08, 0.90]])


def scanner(images: np.ndarray) -> np.ndarray:
    x = (images.astype(np.float64) / 255.0) ** np.array([0.9, 1.0, 1.1])
    x = x @ SCANNER_MATRIX.T
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


SHIFTS: dict[str, Shift] = {
    **{name: _hed(s) for name, s in HED_STRENGTHS.items()},
    "brightness_contrast": brightness_contrast,
    "jpeg_q50": jpeg,
    "blur": blur,
    "scanner": scanner,
}


def apply_shift(name: str, images: np.ndarray) -> np.ndarray:
    if name not in SHIFTS:
        raise KeyError(f"unknown shift {name!r}; known: {', '.join(SHIFTS)}")
    return SHIFTS[name](images)


def as_tensor(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(images))
