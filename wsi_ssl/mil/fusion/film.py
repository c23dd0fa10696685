"""``film``: the covariates and omics scale and shift every tile embedding before attention.

h'_k = h_k * (1 + gamma(s)) + beta(s), gamma and beta from a small MLP of the encoded side s
(Perez et al. 2018, FiLM). The last layer starts at zero, so training starts from the histology
model; the attention heatmaps are the pooled, modulated tiles' weights.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from wsi_ssl.mil.clinical.encoder import SideEncoder, SideInputs
from wsi_ssl.mil.fusion.base import Fusion, side_mlp
from wsi_ssl.mil.fusion.registry import register_fusion

if TYPE_CHECKING:
    from wsi_ssl.mil.config import FusionConfig


class FiLMFusion(Fusion):
    uses_side = True

    def __init__(self, cfg: FusionConfig, width: int, encoder: SideEncoder) -> None:
        super().__init__()
        self.mlp = side_mlp(encoder.flat_width, cfg.hidden_dim, cfg.dropout)
        self.film = nn.Linear(cfg.hidden_dim, 2 * width)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)

    def instances(
        self, h: torch.Tensor, mask: torch.Tensor, side: SideInputs | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        assert side is not None
        gamma, beta = self.film(self.mlp(side.flat())).unsqueeze(1).chunk(2, dim=-1)
        return (h * (1 + gamma) + beta) * mask.unsqueeze(-1).to(h.dtype), None  # padding stays zero


@register_fusion("film")
def _build(cfg: FusionConfig, width: int, encoder: SideEncoder) -> Fusion:
    return FiLMFusion(cfg, width, encoder)
