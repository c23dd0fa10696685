"""Batched augmentations and multi-crop: identities, shapes, value ranges, a numpy HED reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wsi_ssl.pretrain.augment import (
    _LOG_ADJUST,
    HED_FROM_RGB,
    RGB_FROM_HED,
    augment,
    color_jitter,
    flip_rotate,
    gaussian_blur,
    hed_jitter,
)
from wsi_ssl.pretrain.config import AugmentConfig, CropConfig
from wsi_ssl.pretrain.multicrop import MultiCrop, random_resized_crop

# skimage.color.rgb_from_hed, as published (scikit-image's colorconv module).
SKIMAGE_RGB_FROM_HED = np.array([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]])


def skimage_rgb2hed(rgb: np.ndarray) -> np.ndarray:
    """scikit-image's rgb2hed formula, in numpy: OD = log(max(rgb, 1e-6)) / log(1e-6), times inv(M)."""
    od = np.log(np.maximum(rgb, 1e-6)) / np.log(1e-6)
    return np.maximum(od @ np.linalg.inv(SKIMAGE_RGB_FROM_HED), 0)


@pytest.fixture()
def batch() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.rand(6, 3, 24, 24, generator=g) * 0.8 + 0.1


# The skimage formulas (rgb2hed / hed2rgb) in torch: the reference the fused jitter is held to.
def rgb_to_hed(x: torch.Tensor) -> torch.Tensor:
    """[B, 3, H, W] RGB in [0, 1] to stain concentrations (as skimage.color.rgb2hed)."""
    m = HED_FROM_RGB.to(device=x.device, dtype=x.dtype)
    od = torch.log(x.clamp_min(1e-6)) / _LOG_ADJUST
    return torch.einsum("bchw,cd->bdhw", od, m).clamp_min(0)


def hed_to_rgb(h: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_hed` (as skimage.color.hed2rgb), clipped to [0, 1]."""
    m = RGB_FROM_HED.to(device=h.device, dtype=h.dtype)
    od = torch.einsum("bdhw,dc->bchw", h * _LOG_ADJUST, m)
    return torch.exp(od).clamp(0, 1)


def test_hed_jitter_with_zero_strength_is_identity(batch: torch.Tensor) -> None:
    assert torch.equal(hed_jitter(batch, 0.0, 0.0), batch)


def test_rgb_to_hed_matches_scikit_image_formula_and_round_trips(batch: torch.Tensor) -> None:
    x = batch.double()
    hed = rgb_to_hed(x)
    ref = skimage_rgb2hed(x.permute(0, 2, 3, 1).numpy()).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(hed.numpy(), ref, atol=1e-10)
    # Pixels whose stain concentrations are all positive survive the round trip exactly.
    positive = (rgb_to_hed(x) > 0).all(1, keepdim=True).expand_as(x)
    back = hed_to_rgb(hed)
    assert positive.any()
    np.testing.assert_allclose(back[positive].numpy(), x[positive].numpy(), atol=1e-6)


def test_flip_rotate_only_moves_pixels(batch: torch.Tensor) -> None:
    out = flip_rotate(batch, torch.Generator().manual_seed(1))
    assert out.shape == batch.shape
    for a, b in zip(out, batch):
        assert torch.equal(a.flatten().sort().values, b.flatten().sort().values)


def test_every_transform_keeps_shape_dtype_and_range(batch: torch.Tensor) -> None:
    cfg = AugmentConfig(
        hed_sigma=0.3, hed_bias=0.1, brightness=0.5, contrast=0.5, saturation=0.5, hue=0.1, color_p=1.0, blur_p=1.0
    )
    g = torch.Generator().manual_seed(2)
    for out in (
        hed_jitter(batch, 0.3, 0.1, g),
        color_jitter(batch, cfg, g),
        gaussian_blur(batch, 1.0, (0.5, 2.0), g),
        augment(batch, cfg, g),
    ):
        assert out.shape == batch.shape and out.dtype == batch.dtype
        assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
        assert not torch.equal(out, batch)


def test_blur_preserves_constant_images_and_colour_jitter_off_is_identity() -> None:
    flat = torch.full((2, 3, 16, 16), 0.4)
    np.testing.assert_allclose(gaussian_blur(flat, 1.0, (1.0, 1.0)).numpy(), flat.numpy(), atol=1e-6)
    cfg = AugmentConfig(color_p=0.0)
    x = torch.rand(2, 3, 8, 8)
    assert torch.equal(color_jitter(x, cfg), x)


def test_full_scale_crop_without_aspect_change_is_identity(batch: torch.Tensor) -> None:
    out = random_resized_crop(batch, 24, (1.0, 1.0), ratio=(1.0, 1.0))
    np.testing.assert_allclose(out.numpy(), batch.numpy(), atol=1e-5)


def test_multicrop_makes_view_major_normalised_views() -> None:
    tiles = torch.randint(0, 256, (4, 3, 40, 40), dtype=torch.uint8)
    views = MultiCrop(CropConfig(n_global=2, n_local=3, global_size=32, local_size=16), AugmentConfig())(tiles)
    assert views.global_views.shape == (8, 3, 32, 32)
    assert views.local_views is not None and views.local_views.shape == (12, 3, 16, 16)
    assert torch.isfinite(views.global_views).all()
    # Normalised with ImageNet statistics: values in [(0 - mean) / std, (1 - mean) / std].
    assert float(views.global_views.min()) >= -2.2 and float(views.global_views.max()) <= 2.7


def test_folded_colour_jitter_equals_the_sequential_transforms() -> None:
    """The one-matrix colour jitter equals brightness, contrast, saturation, hue applied in turn."""
    cfg = AugmentConfig(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.05, color_p=1.0)
    x = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(5)) * 0.5 + 0.25
    got = color_jitter(x, cfg, torch.Generator().manual_seed(9))
    g = torch.Generator().manual_seed(9)  # replay the draws in the same order
    torch.rand(4, generator=g)  # which samples are jittered (all, p = 1)
    f_b, f_c, f_s = (1 + s * (2 * torch.rand(4, generator=g) - 1) for s in (0.2, 0.2, 0.2))
    angle = 0.05 * 2 * np.pi * (2 * torch.rand(4, generator=g) - 1)
    w = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    y = x * f_b.view(-1, 1, 1, 1)
    m = (y * w).sum(1, keepdim=True).mean(dim=(2, 3), keepdim=True)
    y = (y - m) * f_c.view(-1, 1, 1, 1) + m
    grey = (y * w).sum(1, keepdim=True)
    y = (y - grey) * f_s.view(-1, 1, 1, 1) + grey
    # Hue: rotate each pixel about the grey axis (1, 1, 1) / sqrt(3) by angle (Rodrigues).
    axis = torch.ones(3) / np.sqrt(3)
    ref = torch.empty_like(y)
    for i in range(4):
        c, s = torch.cos(angle[i]), torch.sin(angle[i])
        v = y[i].reshape(3, -1).t()
        rot = v * c + torch.cross(axis.expand_as(v), v, dim=1) * s + axis * (v @ axis)[:, None] * (1 - c)
        ref[i] = rot.t().reshape(3, 8, 8)
    np.testing.assert_allclose(got.numpy(), ref.clamp(0, 1).numpy(), atol=1e-5)


def test_folded_hed_jitter_equals_the_round_trip_through_stain_space() -> None:
    x = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(6)).double() * 0.6 + 0.2
    got = hed_jitter(x, 0.1, 0.05, torch.Generator().manual_seed(4))
    g = torch.Generator().manual_seed(4)
    alpha = 1 + 0.1 * torch.randn(3, 3, generator=g)
    beta = 0.05 * torch.randn(3, 3, generator=g)
    hed = rgb_to_hed(x)
    positive = (hed > 0).all(1, keepdim=True).expand_as(x)  # where the clip of rgb2hed does nothing
    ref = hed_to_rgb(hed * alpha.double()[:, :, None, None] + beta.double()[:, :, None, None])
    assert positive.any()
    np.testing.assert_allclose(got[positive].numpy(), ref[positive].numpy(), atol=1e-5)
