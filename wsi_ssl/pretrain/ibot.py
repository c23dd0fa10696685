"""iBOT's masked-patch self-distillation (Zhou et al. 2022; the patch loss of DINOv2).

The student sees global views with a random share of patch embeddings replaced by a learned mask
token; for each masked patch it predicts the teacher's (unmasked, centred, sharpened) prototype
distribution of that patch. Also home of the token-level ViT forward that masking needs.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from wsi_ssl.pretrain.dino import all_reduce_mean


def num_prefix_tokens(backbone: nn.Module) -> int:
    return int(getattr(backbone, "num_prefix_tokens", 1))


def vit_tokens(
    backbone: Any, x: torch.Tensor, mask: torch.Tensor | None = None, mask_token: torch.Tensor | None = None
) -> torch.Tensor:
    """All output tokens [B, prefix + N, D] of a timm VisionTransformer.

    With ``mask`` [B, N] (True = masked) the masked patch embeddings are replaced by
    ``mask_token`` [D] before position embeddings are added, as in iBOT/DINOv2.
    """
    if mask is None:
        return backbone.forward_features(x)  # type: ignore[operator]
    t = backbone.patch_embed(x)  # [B, N, D], or [B, H, W, D] with dynamic_img_size
    shape = t.shape
    flat = t.reshape(shape[0], -1, shape[-1])
    flat = torch.where(mask[..., None], mask_token.to(flat.dtype), flat)  # type: ignore[union-attr]
    t = flat.reshape(shape)
    t = backbone._pos_embed(t)  # type: ignore[operator]
    t = backbone.patch_drop(t)  # type: ignore[operator]
    t = backbone.norm_pre(t)  # type: ignore[operator]
    t = backbone.blocks(t)  # type: ignore[operator]
    return backbone.norm(t)  # type: ignore[operator]


def random_patch_mask(
    batch: int,
    n_patches: int,
    ratio: tuple[float, float],
    prob: float,
    device: torch.device,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """[B, N] bool; a ``prob`` share of samples get a ratio ~ U(ratio) of their patches masked."""
    r = ratio[0] + (ratio[1] - ratio[0]) * torch.rand(batch, 1, device=device, generator=generator)
    r = torch.where(torch.rand(batch, 1, device=device, generator=generator) < prob, r, torch.zeros_like(r))
    n_mask = (r * n_patches).round().long()
    noise = torch.rand(batch, n_patches, device=device, generator=generator)
    ranks = noise.argsort(dim=1).argsort(dim=1)
    return ranks < n_mask


class IBOTPatchLoss(nn.Module):
    """Cross-entropy over masked patches, averaged per image and then over masked images."""

    center: torch.Tensor  # a buffer (registered in __init__), declared for type checkers

    def __init__(self, out_dim: int, student_temp: float = 0.1, center_momentum: float = 0.9) -> None:
        super().__init__()
        self.student_temp = student_temp
        self.center_momentum = center_momentum
        self.register_buffer("center", torch.zeros(1, 1, out_dim))

    def forward(
        self,
        student_patch_logits: torch.Tensor,
        teacher_patch_logits: torch.Tensor,
        mask: torch.Tensor,
        teacher_temp: float,
    ) -> torch.Tensor:
        """Logits [B, N, K] for the same global views; ``mask`` [B, N] marks the student's masked patches."""
        q = F.softmax((teacher_patch_logits.float() - self.center) / teacher_temp, dim=-1)
        logp = F.log_softmax(student_patch_logits.float() / self.student_temp, dim=-1)
        ce = -(q * logp).sum(-1)  # [B, N]
        m = mask.float()
        per_image = (ce * m).sum(-1) / m.sum(-1).clamp_min(1.0)
        has_mask = (m.sum(-1) > 0).float()
        loss = (per_image * has_mask).sum() / has_mask.sum().clamp_min(1.0)
        self.update_center(teacher_patch_logits)
        return loss

    def forward_flat(
        self, student_masked: torch.Tensor, teacher_masked: torch.Tensor, mask: torch.Tensor, teacher_temp: float
    ) -> torch.Tensor:
        """Same loss from the masked tokens only ([M, K], in ``mask.nonzero()`` order).

        Running the heads on masked tokens alone saves most of the head cost (DINOv2 does this);
        the loss equals :meth:`forward` on full logits; the centre follows the masked tokens (as DINOv2).
        """
        q = F.softmax((teacher_masked.float() - self.center[0]) / teacher_temp, dim=-1)
        ce = -(q * F.log_softmax(student_masked.float() / self.student_temp, dim=-1)).sum(-1)  # [M]
        counts = mask.sum(-1).float()  # [B]
        weights = (1.0 / counts.clamp_min(1.0))[mask.nonzero()[:, 0]]
        n_images = (counts > 0).sum().clamp_min(1)
        loss = (ce * weights).sum() / n_images
        self.update_center_flat(teacher_masked)
        return loss

    @torch.no_grad()
    def update_center_flat(self, teacher_masked: torch.Tensor) -> None:
        batch_center = all_reduce_mean(teacher_masked.float().mean(dim=0, keepdim=True))[None]
        self.center.mul_(self.center_momentum).add_(batch_center, alpha=1 - self.center_momentum)

    @torch.no_grad()
    def update_center(self, teacher_patch_logits: torch.Tensor) -> None:
        batch_center = all_reduce_mean(teacher_patch_logits.float().mean(dim=(0, 1), keepdim=True))
        self.center.mul_(self.center_momentum).add_(batch_center, alpha=1 - self.center_momentum)
