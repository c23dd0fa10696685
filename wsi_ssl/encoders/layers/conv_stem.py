"""CTransPath's convolutional stem, which replaces Swin-T's patch embedding (Wang et al. 2022).

Follows ``ConvStem`` of the authors' TransPath code (Xiyue-Wang/TransPath ``ctran.py``): two 3x3
stride-2 conv + BN + ReLU stages (embed_dim/8 then /4 channels) and a 1x1 projection, for a 4x
downsampling like the patch embedding it replaces. The output is channels-last ``[B, H, W, C]``,
the layout timm >= 0.9 Swin stages take. Key names (``proj.0`` ... ``proj.6``) are the checkpoint's.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class ConvStem(nn.Module):
    def __init__(
        self,
        img_size: Any = 224,
        patch_size: Any = 4,
        in_chans: int = 3,
        embed_dim: int = 768,
        norm_layer: Any = None,
        flatten: bool = False,
        output_fmt: str = "NHWC",
        **unused: Any,
    ) -> None:
        super().__init__()
        from timm.layers import to_2tuple

        if to_2tuple(patch_size) != (4, 4) or embed_dim % 8 != 0:
            raise ValueError(
                f"ConvStem downsamples 4x into a multiple of 8 channels, got patch {patch_size}, dim {embed_dim}"
            )
        img = to_2tuple(img_size)
        self.img_size, self.patch_size = img, (4, 4)
        self.grid_size = (img[0] // 4, img[1] // 4)
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        layers: list[nn.Module] = []
        in_dim, out_dim = in_chans, embed_dim // 8
        for _ in range(2):
            layers += [
                nn.Conv2d(in_dim, out_dim, kernel_size=3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(out_dim),
                nn.ReLU(inplace=True),
            ]
            in_dim, out_dim = out_dim, out_dim * 2
        layers.append(nn.Conv2d(in_dim, embed_dim, kernel_size=1))
        self.proj = nn.Sequential(*layers)
        self.norm = norm_layer(embed_dim) if norm_layer else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(x).permute(0, 2, 3, 1))
