"""``transformer``: a TransMIL-style transformer with exact attention and a 1-D positional conv.

The layout of TransMIL (Shao et al. 2021): a class token, self-attention layers and a
positional conv between the first two; the class token's output is the bag embedding. It is
*not* the published TransMIL (that is ``transmil``, :mod:`wsi_ssl.mil.aggregators.transmil`):
attention is exact softmax attention through ``scaled_dot_product_attention`` with a key padding
mask (memory-efficient kernels keep 5,000-tile bags cheap) instead of the Nystrom approximation,
and the positional conv runs depthwise 1-D convolutions (kernels 7, 5, 3) along the instance
sequence with padded rows zeroed, instead of 2-D convolutions over the bag reshaped to a padded
square. (Until the aggregator registry this kind was called ``transmil``; run dirs of model
format 1 are read with that name mapped to this one.) Instance scores for heatmaps are the class
token's attention in the last layer, averaged over heads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from wsi_ssl.mil.aggregators.base import (
    AggOutput,
    Aggregator,
    Head,
    check_attention_widths,
    masked_softmax,
)
from wsi_ssl.mil.aggregators.registry import register_aggregator

if TYPE_CHECKING:
    from wsi_ssl.mil.config import AggregatorConfig


class _SelfAttentionLayer(nn.Module):
    def __init__(self, dim: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.n_heads = n_heads
        self.dropout = dropout

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, want_cls_attn: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        b, n, d = x.shape
        q, k, v = self.qkv(self.norm(x)).view(b, n, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        attn_mask = mask[:, None, None, :]  # [B, 1, 1, N]: every query ignores padded keys
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, dropout_p=self.dropout if self.training else 0.0
        )
        cls_attn = None
        if want_cls_attn:
            logits = torch.einsum("bhd,bhnd->bhn", q[:, :, 0], k) / (q.shape[-1] ** 0.5)
            cls_attn = masked_softmax(logits, mask[:, None, :]).mean(dim=1)  # [B, N]
        out = out.transpose(1, 2).reshape(b, n, d)
        return x + self.proj(out), cls_attn


class _PPEG1d(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv1d(dim, dim, k, padding=k // 2, groups=dim) for k in (7, 5, 3))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        cls, tokens = x[:, :1], x[:, 1:]
        m = mask[:, 1:].unsqueeze(-1).to(x.dtype)
        t = (tokens * m).transpose(1, 2)  # [B, D, N], padding zeroed so it looks like conv padding
        t = t + sum(conv(t) for conv in self.convs)
        return torch.cat([cls, t.transpose(1, 2) * m], dim=1)


class TransformerMIL(Aggregator):
    def __init__(self, in_dim: int, n_heads: int = 4, n_layers: int = 2, dropout: float = 0.0) -> None:
        super().__init__()
        self.out_dim = in_dim
        self.cls = nn.Parameter(torch.zeros(1, 1, in_dim))
        nn.init.normal_(self.cls, std=0.02)
        self.layers = nn.ModuleList(_SelfAttentionLayer(in_dim, n_heads, dropout) for _ in range(n_layers))
        self.ppeg = _PPEG1d(in_dim)
        self.norm = nn.LayerNorm(in_dim)

    def forward(self, h: torch.Tensor, mask: torch.Tensor, head: Head | None = None) -> AggOutput:
        b = h.shape[0]
        x = torch.cat([self.cls.expand(b, -1, -1), h], dim=1)
        full_mask = torch.cat([torch.ones(b, 1, dtype=torch.bool, device=mask.device), mask], dim=1)
        cls_attn = None
        for i, layer in enumerate(self.layers):
            x, cls_attn = layer(x, full_mask, want_cls_attn=i == len(self.layers) - 1)
            if i == 0:
                x = self.ppeg(x, full_mask)
        scores = None
        if cls_attn is not None:
            scores = cls_attn[:, 1:]
            scores = scores / scores.sum(dim=1, keepdim=True).clamp(min=1e-12)
        return AggOutput(embedding=self.norm(x[:, 0]), scores=scores)


@register_aggregator("transformer", check=check_attention_widths)
def _build(cfg: AggregatorConfig, in_dim: int) -> Aggregator:
    return TransformerMIL(in_dim, n_heads=cfg.n_heads, n_layers=cfg.n_layers, dropout=cfg.dropout)
