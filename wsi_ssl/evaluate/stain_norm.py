"""Macenko and Reinhard stain normalisation (torchstain), as an option for training and scoring.

Both are fitted once on a reference patch (``stain_norm.reference``: an image file, or by default
the training patch of the dataset nearest the median colour), then applied to every patch before
the encoder, so their effect on accuracy and on the robustness drops can be measured. Macenko
estimates a patch's stain vectors from its tissue pixels; on a patch with almost no tissue
(background, fat) the estimate is undefined and the patch is left as it is, as TRIDENT and
torchstain's users do.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

METHODS = ("none", "macenko", "reinhard")


class StainNormalizer:
    def __init__(self, method: str, reference: np.ndarray) -> None:
        import torchstain

        if method not in ("macenko", "reinhard"):
            raise ValueError(f"stain normalisation {method!r}: use one of {', '.join(METHODS)}")
        self.method = method
        cls = (
            torchstain.normalizers.MacenkoNormalizer
            if method == "macenko"
            else torchstain.normalizers.ReinhardNormalizer
        )
        self._norm: Any = cls(backend="torch")
        self._norm.fit(_chw(reference))
        self.failed = 0

    def __call__(self, images: np.ndarray) -> np.ndarray:
        out = np.empty_like(images)
        for i, im in enumerate(images):
            try:
                if self.method == "macenko":
                    norm, _, _ = self._norm.normalize(_chw(im), stains=False)
                else:
                    norm = self._norm.normalize(_chw(im))
                out[i] = np.clip(norm.float().numpy(), 0, 255).astype(np.uint8)
            except (RuntimeError, ValueError, IndexError, torch.linalg.LinAlgError):  # no tissue: no stains to estimate
                self.failed += 1
                out[i] = im
        return out


def _chw(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float()


def median_colour_index(images: list[np.ndarray]) -> int:
    """The image whose mean colour is nearest the median of the images' mean colours."""
    means = np.stack([im.reshape(-1, 3).mean(0) for im in images])
    return int(np.argmin(np.abs(means - np.median(means, axis=0)).sum(1)))
