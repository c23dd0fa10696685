"""Batched multi-crop: random resized crops of a whole batch at once with one ``grid_sample``.

Each sample gets its own crop box (area fraction and aspect ratio drawn per sample, as
torchvision's RandomResizedCrop), expressed as an affine map from output to input coordinates,
so all crops of a view size are one kernel call on the training device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from wsi_ssl.pretrain.augment import augment, normalize
from wsi_ssl.pretrain.config import AugmentConfig, CropConfig


def random_resized_crop(
    x: torch.Tensor,
    size: int,
    scale: tuple[float, float],
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Crop a random box of ``scale`` area fraction from each image and resize it to ``size``."""
    b = x.shape[0]
    dev = x.device

    def rand() -> torch.Tensor:
        return torch.rand(b, generator=generator, device=dev, dtype=torch.float32)

    area = scale[0] + (scale[1] - scale[0]) * rand()
    log_r = math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * rand()
    aspect = torch.exp(log_r)
    w = torch.sqrt(area * aspect).clamp(max=1.0)  # fractions of the image side
    h = torch.sqrt(area / aspect).clamp(max=1.0)
    cx = (1 - w) * (2 * rand() - 1)  # box centre in [-1, 1] coords, box stays inside the image
    cy = (1 - h) * (2 * rand() - 1)
    theta = torch.zeros(b, 2, 3, device=dev, dtype=torch.float32)
    theta[:, 0, 0] = w
    theta[:, 0, 2] = cx
    theta[:, 1, 1] = h
    theta[:, 1, 2] = cy
    grid = F.affine_grid(theta, [b, x.shape[1], size, size], align_corners=False).to(x.dtype)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


@dataclass
class Views:
    """The views of one batch: global crops stacked view-major ``[V*B, 3, G, G]``, locals likewise."""

    global_views: torch.Tensor
    local_views: torch.Tensor | None
    n_global: int
    n_local: int


class MultiCrop:
    """Makes DINO's 2 global + N local views of a uint8 batch, augmented and normalised."""

    def __init__(self, crops: CropConfig, aug: AugmentConfig) -> None:
        self.crops = crops
        self.aug = aug

    def __call__(self, tiles: torch.Tensor, generator: torch.Generator | None = None) -> Views:
        """``tiles``: uint8 [B, 3, T, T] (or float in [0, 1]) on the training device."""
        x = tiles.float() / 255.0 if tiles.dtype == torch.uint8 else tiles.float()
        c = self.crops

        def make(n: int, size: int, scale: tuple[float, float]) -> torch.Tensor:
            rep = x.repeat(n, 1, 1, 1)  # view-major: view v of sample i sits at v*B + i
            views = augment(random_resized_crop(rep, size, scale, generator=generator), self.aug, generator)
            return normalize(views, self.aug.mean, self.aug.std)

        g = make(c.n_global, c.global_size, c.global_scale)
        loc = make(c.n_local, c.local_size, c.local_scale) if c.n_local > 0 else None
        return Views(g, loc, c.n_global, c.n_local)


def single_view(
    tiles: torch.Tensor, size: int, aug: AugmentConfig, train: bool, generator: torch.Generator | None = None
) -> torch.Tensor:
    """One view per tile (MAE training, or evaluation when ``train`` is False: resize + normalise)."""
    x = tiles.float() / 255.0 if tiles.dtype == torch.uint8 else tiles.float()
    if train:
        x = augment(random_resized_crop(x, size, (0.4, 1.0), generator=generator), aug, generator)
    elif x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return normalize(x, aug.mean, aug.std)
