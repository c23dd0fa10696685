"""Masked autoencoder (He et al. 2022) around any timm VisionTransformer.

The encoder sees only the kept 25% of patches (plus its prefix tokens), which is what makes MAE
cheap; a light transformer decoder re-inserts mask tokens and predicts each masked patch's
pixels, normalised per patch (the "normalised-pixel" target).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from wsi_ssl.pretrain.config import MaeConfig
from wsi_ssl.pretrain.ibot import num_prefix_tokens


def patchify(x: torch.Tensor, p: int) -> torch.Tensor:
    """[B, C, H, W] -> [B, N, p*p*C] in row-major patch order (as the ViT patch embedding)."""
    b, c, h, w = x.shape
    x = x.reshape(b, c, h // p, p, w // p, p)
    return x.permute(0, 2, 4, 3, 5, 1).reshape(b, (h // p) * (w // p), p * p * c)


def random_keep(
    batch: int, n: int, ratio: float, device: torch.device, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of kept patches [B, n_keep] and the mask [B, N] (True = masked, to reconstruct)."""
    n_keep = max(1, int(round(n * (1 - ratio))))
    noise = torch.rand(batch, n, device=device, generator=generator)
    order = noise.argsort(dim=1)
    keep = order[:, :n_keep].sort(dim=1).values
    mask = torch.ones(batch, n, dtype=torch.bool, device=device)
    mask.scatter_(1, keep, False)
    return keep, mask


class MAEDecoder(nn.Module):
    """Linear in, mask tokens, learned position embeddings, a few ViT blocks, linear to pixels."""

    def __init__(self, enc_dim: int, n_patches: int, patch_size: int, cfg: MaeConfig) -> None:
        super().__init__()
        from timm.models.vision_transformer import Block

        d = cfg.decoder_dim
        self.embed = nn.Linear(enc_dim, d)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, d))
        self.pos = nn.Parameter(torch.zeros(1, n_patches, d))
        self.blocks = nn.Sequential(
            *[Block(d, cfg.decoder_heads, mlp_ratio=4.0, qkv_bias=True) for _ in range(cfg.decoder_depth)]
        )
        self.norm = nn.LayerNorm(d)
        self.pred = nn.Linear(d, patch_size * patch_size * 3)
        nn.init.normal_(self.mask_token, std=0.02)
        nn.init.trunc_normal_(self.pos, std=0.02)

    def forward(self, kept_tokens: torch.Tensor, keep: torch.Tensor, n_patches: int) -> torch.Tensor:
        b, _, _ = kept_tokens.shape
        z = self.embed(kept_tokens)
        full = self.mask_token.expand(b, n_patches, -1).to(z.dtype).clone()
        full.scatter_(1, keep[..., None].expand(-1, -1, z.shape[-1]), z)
        full = self.blocks(full + self.pos.to(z.dtype))
        return self.pred(self.norm(full))


class MAE(nn.Module):
    """Encoder (the timm backbone being pretrained) + decoder; ``forward`` returns the loss."""

    def __init__(self, backbone: nn.Module, image_size: int, cfg: MaeConfig) -> None:
        super().__init__()
        self.backbone = backbone
        self.cfg = cfg
        p: Any = backbone.patch_embed.patch_size  # type: ignore[union-attr]
        self.patch_size = int(p[0] if isinstance(p, (tuple, list)) else p)
        if image_size % self.patch_size:
            raise ValueError(f"MAE: image size {image_size} is not a multiple of the patch size {self.patch_size}")
        self.n_patches = (image_size // self.patch_size) ** 2
        self.decoder = MAEDecoder(int(backbone.num_features), self.n_patches, self.patch_size, cfg)  # type: ignore[arg-type]

    def encode_kept(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """Encoder output tokens of the kept patches only [B, n_keep, D] (prefix tokens dropped)."""
        bb = self.backbone
        t = bb._pos_embed(bb.patch_embed(x))  # type: ignore[operator]
        npre = num_prefix_tokens(bb)
        patches = t[:, npre:].gather(1, keep[..., None].expand(-1, -1, t.shape[-1]))
        t = torch.cat([t[:, :npre], patches], dim=1)
        t = bb.norm(bb.blocks(bb.norm_pre(t)))  # type: ignore[operator]
        return t[:, npre:]

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``x``: normalised images [B, 3, S, S]. Returns (loss, per-patch predictions [B, N, p*p*3])."""
        keep, mask = random_keep(x.shape[0], self.n_patches, self.cfg.mask_ratio, x.device, generator)
        pred = self.decoder(self.encode_kept(x, keep), keep, self.n_patches)
        loss = mae_loss(pred, patchify(x.float(), self.patch_size), mask, self.cfg.norm_pix_loss)
        return loss, pred


def mae_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, norm_pix: bool) -> torch.Tensor:
    """Mean squared error on masked patches; with ``norm_pix`` each target patch is standardised."""
    if norm_pix:
        mean = target.mean(dim=-1, keepdim=True)
        var = target.var(dim=-1, keepdim=True)
        target = (target - mean) / (var + 1e-6) ** 0.5
    per_patch = ((pred.float() - target) ** 2).mean(dim=-1)
    m = mask.float()
    return (per_patch * m).sum() / m.sum().clamp_min(1.0)
