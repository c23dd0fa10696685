"""MIL aggregators behind one interface (see :mod:`wsi_ssl.mil.aggregators.base`)."""

from __future__ import annotations

from wsi_ssl.mil.aggregators.abmil import AttentionMIL
from wsi_ssl.mil.aggregators.base import AggOutput, Aggregator, masked_softmax
from wsi_ssl.mil.aggregators.dsmil import DSMIL
from wsi_ssl.mil.aggregators.mean import MeanPool
from wsi_ssl.mil.aggregators.transmil import TransMIL
from wsi_ssl.mil.config import AggregatorConfig

__all__ = ["AggOutput", "Aggregator", "AttentionMIL", "DSMIL", "MeanPool", "TransMIL", "build_aggregator", "masked_softmax"]


def build_aggregator(cfg: AggregatorConfig, in_dim: int) -> Aggregator:
    """The aggregator ``cfg.kind`` over instances of width ``in_dim`` (after any projection)."""
    if cfg.kind == "mean":
        return MeanPool(in_dim)
    if cfg.kind == "abmil":
        return AttentionMIL(in_dim, cfg.attn_dim, gated=cfg.gated, dropout=cfg.dropout)
    if cfg.kind == "dsmil":
        return DSMIL(in_dim, cfg.attn_dim, dropout=cfg.dropout)
    return TransMIL(in_dim, n_heads=cfg.n_heads, n_layers=cfg.n_layers, dropout=cfg.dropout)
