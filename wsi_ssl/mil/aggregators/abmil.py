"""Attention-based MIL (Ilse, Tomczak & Welling 2018), plain and gated.

Plain:  a_k = softmax_k( w^T tanh(V h_k) )
Gated:  a_k = softmax_k( w^T (tanh(V h_k) * sigmoid(U h_k)) )
The bag embedding is sum_k a_k h_k; the softmax runs over real instances only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from wsi_ssl.mil.aggregators.base import AggOutput, Aggregator, Head, masked_softmax
from wsi_ssl.mil.aggregators.registry import register_aggregator

if TYPE_CHECKING:
    from wsi_ssl.mil.config import AggregatorConfig


class AttentionMIL(Aggregator):
    def __init__(self, in_dim: int, attn_dim: int = 128, gated: bool = True, dropout: float = 0.0) -> None:
        super().__init__()
        self.out_dim = in_dim
        self.gated = gated
        self.V = nn.Linear(in_dim, attn_dim)
        self.U = nn.Linear(in_dim, attn_dim) if gated else None
        self.w = nn.Linear(attn_dim, 1)
        self.drop = nn.Dropout(dropout)

    def attention_logits(self, h: torch.Tensor) -> torch.Tensor:
        a = torch.tanh(self.V(h))
        if self.U is not None:
            a = a * torch.sigmoid(self.U(h))
        return self.w(self.drop(a)).squeeze(-1)  # [B, N]

    def forward(self, h: torch.Tensor, mask: torch.Tensor, head: Head | None = None) -> AggOutput:
        if h.device.type != "cpu" or bool(mask.all()):
            # On a GPU scoring padded rows costs less than the host sync that ``h[mask]`` needs;
            # masked_softmax gives them zero weight either way.
            logits = self.attention_logits(h)
        else:  # on a CPU score real instances only: padded rows cost no attention FLOPs
            logits = h.new_full(mask.shape, float("-inf")).index_put((mask,), self.attention_logits(h[mask]))
        weights = masked_softmax(logits, mask)
        embedding = torch.bmm(weights.unsqueeze(1), h).squeeze(1)
        return AggOutput(embedding=embedding, scores=weights)


@register_aggregator("abmil")
def _build(cfg: AggregatorConfig, in_dim: int) -> Aggregator:
    return AttentionMIL(in_dim, cfg.attn_dim, gated=cfg.gated, dropout=cfg.dropout)
