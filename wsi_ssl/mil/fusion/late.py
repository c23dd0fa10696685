"""``late``: the head reads [slide embedding, encoded covariates/omics, a small MLP of them].

The encoded side inputs themselves (z-scored values and missing indicators) go in beside the
MLP, so the head has a linear path on the covariates: with uninformative tiles the model is a
linear Cox / logistic / linear model on them (the GBSG2 check against scikit-survival's CoxPH).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from wsi_ssl.mil.clinical.encoder import SideEncoder, SideInputs
from wsi_ssl.mil.fusion.base import Fusion, side_mlp
from wsi_ssl.mil.fusion.registry import register_fusion

if TYPE_CHECKING:
    from wsi_ssl.mil.config import FusionConfig


def _no_critical_instance(cfg: Any) -> None:
    if cfg.aggregator.kind == "dsmil":
        raise ValueError(
            f"model.fusion.kind: {cfg.model.fusion.kind} widens the head's input, which DSMIL's instance classifier shares; use film or another aggregator"
        )


class LateFusion(Fusion):
    uses_side = True

    def __init__(self, cfg: FusionConfig, encoder: SideEncoder) -> None:
        super().__init__()
        self.side_width = encoder.flat_width
        self.hidden = cfg.hidden_dim
        self.mlp = side_mlp(self.side_width, cfg.hidden_dim, cfg.dropout)

    def out_dim(self, embedding_dim: int) -> int:
        return embedding_dim + self.side_width + self.hidden

    def bag(self, embedding: torch.Tensor, side: SideInputs | None, context: torch.Tensor | None) -> torch.Tensor:
        assert side is not None
        flat = side.flat()
        return torch.cat([embedding, flat, self.mlp(flat)], dim=1)


@register_fusion("late", check=_no_critical_instance)
def _build(cfg: FusionConfig, width: int, encoder: SideEncoder) -> Fusion:
    return LateFusion(cfg, encoder)
