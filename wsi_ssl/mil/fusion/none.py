"""``none``: histology only; covariates and omics (if configured) feed only the baselines."""

from __future__ import annotations

from typing import Any

from wsi_ssl.mil.fusion.base import Fusion
from wsi_ssl.mil.fusion.registry import register_fusion


@register_fusion("none", needs_side=False)
def _build(cfg: Any, width: int, encoder: Any) -> Fusion:
    return Fusion()
