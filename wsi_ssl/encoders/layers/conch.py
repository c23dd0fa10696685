"""CONCH v1.5's vision tower: a timm ViT-L/16 trunk and a learned one-query attention pool.

Mirrors ``EncoderWithAttentionalPooler`` and ``AttentionalPooler`` of the authors' TITAN code
(``MahmoodLab/TITAN``, ``conch_v1_5``; reproduced in TRIDENT's ``model_zoo/conchv1_5``): the pool
attends over every trunk token (class token included, after the trunk's final norm) with 8 heads,
all projections without bias, then ``ln_contrast``. The 768-d output is the embedding used for
linear probing; the contrastive projection and L2 normalisation are not applied.
Key names (``trunk.*``, ``attn_pool_contrast.*``, ``ln_contrast.*``) are the checkpoint's own.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class AttentionalPooler(nn.Module):
    def __init__(self, d_model: int, context_dim: int, n_head: int = 8, n_queries: int = 1) -> None:
        super().__init__()
        self.query = nn.Parameter(torch.randn(n_queries, d_model))
        dim_head = d_model // n_head
        self.scale = dim_head**-0.5
        self.heads = n_head
        inner_dim = dim_head * n_head
        self.ln_k = nn.LayerNorm(context_dim)  # torch's default eps 1e-5, as upstream (the trunk uses 1e-6)
        self.ln_q = nn.LayerNorm(d_model)
        self.to_q = nn.Linear(d_model, inner_dim, bias=False)
        self.to_kv = nn.Linear(context_dim, inner_dim * 2, bias=False)
        self.to_out = nn.Linear(inner_dim, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` [B, N, context_dim] -> [B, n_queries, d_model]."""
        b, n, _ = x.shape
        q = self.to_q(self.ln_q(self.query)).expand(b, -1, -1)
        k, v = self.to_kv(self.ln_k(x)).chunk(2, dim=-1)

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(b, t.shape[1], self.heads, -1).transpose(1, 2)  # [B, h, T, d]

        q, k, v = heads(q) * self.scale, heads(k), heads(v)
        sim = q @ k.transpose(-1, -2)
        attn = (sim - sim.amax(dim=-1, keepdim=True).detach()).softmax(dim=-1)
        out = (attn @ v).transpose(1, 2).reshape(b, -1, self.heads * v.shape[-1])
        return self.to_out(out)


class ConchVisionTower(nn.Module):
    """``forward(x) -> [B, embed_dim]``: trunk tokens -> attention pool (query 0) -> LayerNorm."""

    def __init__(
        self, trunk_kwargs: dict[str, Any], embed_dim: int = 768, pooler_heads: int = 8, pooler_queries: int = 1
    ) -> None:
        super().__init__()
        import timm

        trunk: Any = timm.create_model(
            "vit_large_patch16_224", pretrained=False, num_classes=0, global_pool="", **trunk_kwargs
        )
        self.trunk = trunk
        self.attn_pool_contrast = AttentionalPooler(embed_dim, int(trunk.num_features), pooler_heads, pooler_queries)
        self.ln_contrast = nn.LayerNorm(embed_dim)
        self.num_features = embed_dim
        self.num_prefix_tokens = 0

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        tokens: torch.Tensor = self.trunk.forward_features(x)
        return tokens

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ln_contrast(self.attn_pool_contrast(self.forward_features(x))[:, 0])
