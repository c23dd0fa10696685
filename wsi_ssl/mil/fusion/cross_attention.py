"""``cross_attention``: covariate and omics tokens attend to the tiles, and the tiles attend back.

After BioFusionNet's co-dual cross-attention (Mondol et al. 2024, IEEE JBHI; code:
github.com/raktim-mondol/BioFusionNet, ``co_dual_cross_attention.py``), at the token level:

1. tokens: one per covariate (its encoded value(s) through a per-covariate embedding, or that
   covariate's learned "missing" token) and one omics token (an MLP of the encoded omics, or the
   learned "omics absent" token);
2. modality -> tiles: each token queries the bag's (real) tiles, T' = T + MHA(T, h, h);
3. tiles -> modality: each tile queries the updated tokens, h' = h + MHA(h, T', T');
4. the aggregator pools h' (so the heatmaps are the fused model's tile attention) and the head
   reads [pooled h', mean of T'].

Where this departs from BioFusionNet: there, the tiles are first pooled by self-attention into
one image vector and the co-attention and dual cross-attention run between that vector and the
(VAE-compressed) gene vector, followed by a transformer encoder; clinical data (4 values) are
concatenated late, before the last two layers. Here the attention runs between the individual
tiles and the covariate/omics tokens (so a token can pick out tiles and the tiles read the
clinical context before pooling), clinical covariates are tokens like the omics, there is no
transformer-encoder stage, missing values are learned tokens, and the omics compression is an
optional PCA (``data.omics_components``) rather than a VAE. Its weighted Cox loss is
``task.cox_weighting: balanced``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from wsi_ssl.mil.clinical.encoder import SideEncoder, SideInputs
from wsi_ssl.mil.fusion.base import Fusion, side_mlp
from wsi_ssl.mil.fusion.late import _no_critical_instance
from wsi_ssl.mil.fusion.registry import register_fusion

if TYPE_CHECKING:
    from wsi_ssl.mil.config import FusionConfig


def _check(cfg: Any) -> None:
    _no_critical_instance(cfg)
    width = cfg.aggregator.hidden_dim
    if width and width % cfg.model.fusion.n_heads:
        raise ValueError("model.fusion.n_heads must divide aggregator.hidden_dim for cross_attention")


class CrossAttentionFusion(Fusion):
    uses_side = True

    def __init__(self, cfg: FusionConfig, width: int, encoder: SideEncoder) -> None:
        super().__init__()
        if width % cfg.n_heads:
            raise ValueError(f"model.fusion.n_heads ({cfg.n_heads}) must divide the instance width {width}")
        self.width = width
        wc, n_cov, p, pm = encoder.out_widths
        self.register_buffer("groups", encoder.groups.clone(), persistent=False)
        self.n_cov = n_cov
        self.value_embed = nn.Parameter(torch.randn(wc, width) * 0.1)  # column -> its covariate's token
        self.cov_bias = nn.Parameter(torch.zeros(n_cov, width))
        self.cov_missing = nn.Parameter(torch.randn(n_cov, width) * 0.1)  # learned "missing" tokens
        self.has_omics = p > 0
        if self.has_omics:
            self.omics = nn.Sequential(side_mlp(p + pm, cfg.hidden_dim, cfg.dropout), nn.Linear(cfg.hidden_dim, width))
            self.omics_absent = nn.Parameter(torch.randn(width) * 0.1)
        self.to_tiles = nn.MultiheadAttention(width, cfg.n_heads, dropout=cfg.dropout, batch_first=True)
        self.to_tokens = nn.MultiheadAttention(width, cfg.n_heads, dropout=cfg.dropout, batch_first=True)
        self.norm_t = nn.LayerNorm(width)
        self.norm_h = nn.LayerNorm(width)

    def tokens(self, side: SideInputs) -> torch.Tensor:
        """[B, C (+1), width]: one token per covariate, and one for the omics."""
        parts = []
        if self.n_cov:
            per_col = side.cov_values.unsqueeze(-1) * self.value_embed  # [B, Wc, width]
            cov = per_col.new_zeros(per_col.shape[0], self.n_cov, self.width).index_add(
                1, self.get_buffer("groups"), per_col
            )
            cov = cov + self.cov_bias
            miss = side.cov_missing.unsqueeze(-1) > 0
            parts.append(torch.where(miss, self.cov_missing.expand_as(cov), cov))
        if self.has_omics:
            om = self.omics(torch.cat([side.omics_values, side.omics_missing], dim=1))
            om = torch.where(side.omics_absent.unsqueeze(-1), self.omics_absent.expand_as(om), om)
            parts.append(om.unsqueeze(1))
        return torch.cat(parts, dim=1)

    def instances(
        self, h: torch.Tensor, mask: torch.Tensor, side: SideInputs | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        assert side is not None
        t = self.tokens(side)
        t = self.norm_t(t + self.to_tiles(t, h, h, key_padding_mask=~mask, need_weights=False)[0])
        h2 = self.norm_h(h + self.to_tokens(h, t, t, need_weights=False)[0])
        return h2 * mask.unsqueeze(-1).to(h2.dtype), t.mean(dim=1)

    def out_dim(self, embedding_dim: int) -> int:
        return embedding_dim + self.width

    def bag(self, embedding: torch.Tensor, side: SideInputs | None, context: torch.Tensor | None) -> torch.Tensor:
        assert context is not None, "instances() gives the pooled tokens"
        return torch.cat([embedding, context], dim=1)


@register_fusion("cross_attention", check=_check)
def _build(cfg: FusionConfig, width: int, encoder: SideEncoder) -> Fusion:
    return CrossAttentionFusion(cfg, width, encoder)
