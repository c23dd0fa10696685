"""Batched pathology augmentations on float images in [0, 1], shape [B, 3, H, W].

Every transform draws its randomness per sample and works on whole batches with tensor ops, so
they run on the GPU next to the model instead of image by image in DataLoader workers.

- flips in both axes and 90-degree rotations (tissue has no up or left),
- HED stain jitter: convert to haematoxylin/eosin/DAB optical density (Ruifrok & Johnston),
  scale and shift each stain, convert back; it mimics staining variation between labs,
- mild colour jitter (brightness, contrast, saturation, hue),
- Gaussian blur (focus variation of scanners).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from wsi_ssl.pretrain.config import AugmentConfig

# skimage.color.rgb_from_hed: rows are the H, E and DAB stain vectors in RGB optical density.
RGB_FROM_HED = torch.tensor([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]], dtype=torch.float64)
HED_FROM_RGB = torch.linalg.inv(RGB_FROM_HED)
_LOG_ADJUST = math.log(1e-6)  # skimage's floor for optical density


def _rand(b: int, like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return torch.rand(b, generator=generator, device=like.device, dtype=torch.float32)


def flip_rotate(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random horizontal/vertical flip and rotation by k*90 degrees, per sample (square images)."""
    b = x.shape[0]
    hflip = _rand(b, x, generator) < 0.5
    vflip = _rand(b, x, generator) < 0.5
    x = torch.where(hflip[:, None, None, None], x.flip(-1), x)
    x = torch.where(vflip[:, None, None, None], x.flip(-2), x)
    if x.shape[-1] == x.shape[-2]:
        rot = _rand(b, x, generator) < 0.5  # with both flips, one transpose reaches all 8 symmetries
        x = torch.where(rot[:, None, None, None], x.transpose(-1, -2), x)
    return x


def hed_jitter(x: torch.Tensor, sigma: float, bias: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Scale each stain by 1 + N(0, sigma) and shift it by N(0, bias), per sample.

    Done as one per-sample 3x3 map in optical-density space: with row vectors, ``hed = od @ Minv``
    and ``od' = (hed * a + b) @ M = od @ (Minv diag(a) M) + b @ M``, so RGB -> OD -> RGB costs a
    log, one small matmul and an exp. Unlike a round trip through stain concentrations (skimage's rgb2hed, then hed2rgb) it does not
    clip negative concentrations, so it is invertible and zero strength changes nothing; with
    ``sigma == bias == 0`` ``x`` is returned as is.
    """
    if sigma == 0 and bias == 0:
        return x
    b = x.shape[0]
    m = RGB_FROM_HED.to(device=x.device, dtype=torch.float32)
    minv = HED_FROM_RGB.to(device=x.device, dtype=torch.float32)
    alpha = 1 + sigma * torch.randn(b, 3, generator=generator, device=x.device, dtype=torch.float32)
    beta = bias * torch.randn(b, 3, generator=generator, device=x.device, dtype=torch.float32)
    k = minv[None] * alpha[:, None, :] @ m  # [B, 3, 3]: Minv diag(alpha) M
    shift = (beta @ m) * _LOG_ADJUST  # [B, 3], in log-RGB units
    log_rgb = torch.log(x.clamp_min(1e-6))
    out = torch.einsum("bchw,bcd->bdhw", log_rgb, k.to(x.dtype)) + shift.to(x.dtype)[:, :, None, None]
    return torch.exp(out).clamp(0, 1)


def _gray(x: torch.Tensor) -> torch.Tensor:
    return 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]


def _hue_matrix(angle: torch.Tensor) -> torch.Tensor:
    """[B, 3, 3] rotations by ``angle`` about the grey axis (Rodrigues), a linear hue shift."""
    cos, sin = torch.cos(angle)[:, None, None], torch.sin(angle)[:, None, None]
    k = 1.0 / 3.0
    cross = torch.tensor([[0.0, -1.0, 1.0], [1.0, 0.0, -1.0], [-1.0, 1.0, 0.0]], device=angle.device) * math.sqrt(k)
    eye = torch.eye(3, device=angle.device)
    return cos * eye + sin * cross + (1 - cos) * k


def color_jitter(x: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator | None = None) -> torch.Tensor:
    """Mild brightness, contrast, saturation and hue changes, applied to a ``cfg.color_p`` share.

    All four are linear in RGB, so they are composed into one per-sample 3x3 matrix plus an
    offset (brightness f_b, contrast f_c about the image's mean grey m, saturation S, hue
    rotation R about the grey axis): ``y = f_c f_b R S x + (1 - f_c) f_b m``, clipped once.
    """
    b = x.shape[0]
    apply = (_rand(b, x, generator) < cfg.color_p)[:, None, None, None]

    def factor(strength: float) -> torch.Tensor:
        return 1 + strength * (2 * _rand(b, x, generator) - 1)

    f_b, f_c, f_s = factor(cfg.brightness), factor(cfg.contrast), factor(cfg.saturation)
    w = torch.tensor([0.299, 0.587, 0.114], device=x.device)
    eye = torch.eye(3, device=x.device)
    sat = f_s[:, None, None] * eye + (1 - f_s)[:, None, None] * w[None, None, :].expand(b, 3, 3)
    angle = cfg.hue * 2 * math.pi * (2 * _rand(b, x, generator) - 1) if cfg.hue > 0 else torch.zeros(b, device=x.device)
    mat = (f_c * f_b)[:, None, None] * (_hue_matrix(angle) @ sat)
    mean_grey = _gray(x).mean(dim=(1, 2, 3))
    offset = ((1 - f_c) * f_b * mean_grey.float())[:, None, None, None]
    y = torch.einsum("bij,bjhw->bihw", mat.to(x.dtype), x) + offset.to(x.dtype)
    return torch.where(apply, y.clamp(0, 1), x)


def gaussian_blur(
    x: torch.Tensor, p: float, sigma_range: tuple[float, float], generator: torch.Generator | None = None
) -> torch.Tensor:
    """Separable Gaussian blur with a per-sample sigma, applied to a ``p`` share of the batch."""
    if p <= 0:
        return x
    b, c, h, w = x.shape
    lo, hi = sigma_range
    sigma = lo + (hi - lo) * _rand(b, x, generator)
    radius = max(1, min(int(math.ceil(3 * hi)), (min(h, w) - 1) // 2))
    offsets = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    kernel = torch.exp(-(offsets[None] ** 2) / (2 * sigma[:, None].to(x.dtype) ** 2))
    kernel = kernel / kernel.sum(-1, keepdim=True)  # [B, K]
    k = kernel.shape[-1]
    # Grouped convolution: one group per (sample, channel), so each sample uses its own kernel.
    flat = x.reshape(1, b * c, h, w)
    kx = kernel.repeat_interleave(c, 0).view(b * c, 1, 1, k)
    ky = kernel.repeat_interleave(c, 0).view(b * c, 1, k, 1)
    y = F.conv2d(F.pad(flat, (radius, radius, 0, 0), mode="reflect"), kx, groups=b * c)
    y = F.conv2d(F.pad(y, (0, 0, radius, radius), mode="reflect"), ky, groups=b * c)
    y = y.view(b, c, h, w)
    apply = (_rand(b, x, generator) < p)[:, None, None, None]
    return torch.where(apply, y, x)


def augment(x: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator | None = None) -> torch.Tensor:
    """The full pathology augmentation of one batch of views (values stay in [0, 1])."""
    if cfg.flips:
        x = flip_rotate(x, generator)
    x = hed_jitter(x, cfg.hed_sigma, cfg.hed_bias, generator)
    x = color_jitter(x, cfg, generator)
    x = gaussian_blur(x, cfg.blur_p, cfg.blur_sigma, generator)
    return x


def normalize(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    m = torch.tensor(mean, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
    s = torch.tensor(std, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
    return (x - m) / s
