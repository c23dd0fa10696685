"""Bring a patch to the encoder's scale and field of view, before the encoder's own transform.

The encoder was trained on tiles of ``input_size`` pixels at ``mpp`` microns per pixel; a patch of
another dataset has its own MPP. So, as ``embed`` does for tiles cut at the encoder's MPP:

1. rescale the patch by ``patch_mpp / encoder_mpp`` (area interpolation when shrinking, bilinear
   when enlarging), so a micron covers as many pixels as the encoder saw in training;
2. centre-crop it to a square of at most ``input_size`` pixels (BACH's 2048 x 1536 photos at
   0.42 um/px become 1720 x 1290 at 0.5 um/px, of which the central 224 px are kept);
3. hand it to :class:`wsi_ssl.embed.preprocess.Preprocess`, which resizes anything not yet
   ``input_size`` (a 96 px PCam patch at 0.972 um/px is 187 px at 0.5 um/px, enlarged to 224)
   and normalises with the encoder's mean and std.

An encoder with no recorded MPP (a bare timm name) gets eva's ``ResizeAndCrop`` instead: the
shorter side resized to ``input_size`` and the centre cropped.
"""

from __future__ import annotations

import cv2
import numpy as np


def to_encoder_pixels(patch: np.ndarray, patch_mpp: float, encoder_mpp: float | None, input_size: int) -> np.ndarray:
    """uint8 ``[H, W, 3]`` -> uint8 ``[S, S, 3]`` with ``S <= input_size`` (square), at the encoder's MPP."""
    h, w = patch.shape[:2]
    if encoder_mpp:
        scale = patch_mpp / encoder_mpp
    else:  # eva's ResizeAndCrop: shorter side to input_size
        scale = input_size / min(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    if (nh, nw) != (h, w):
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        patch = cv2.resize(patch, (nw, nh), interpolation=interp)
    side = min(nh, nw, input_size)
    top, left = (nh - side) // 2, (nw - side) // 2
    return np.ascontiguousarray(patch[top : top + side, left : left + side])
