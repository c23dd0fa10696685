"""Masked autoencoding (He et al. 2022): the backbone encodes the kept patches, a light decoder
(``pretrain/mae.py``) reconstructs the masked ones. One augmented view per tile, no teacher."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import torch
from torch import nn

from wsi_ssl.pretrain.mae import MAE
from wsi_ssl.pretrain.methods.base import PretrainMethod
from wsi_ssl.pretrain.multicrop import single_view

if TYPE_CHECKING:
    from wsi_ssl.pretrain.module import PretrainModule


class MAEMethod(PretrainMethod):
    """Adds ``mae`` (the student as its encoder, plus the decoder) to the module."""

    name = "mae"

    def build(self, module: PretrainModule) -> None:
        module.mae = MAE(module.student, self.cfg.crops.global_size, self.cfg.mae)

    def losses(self, module: PretrainModule, tiles: torch.Tensor) -> dict[str, torch.Tensor]:
        x = single_view(tiles, self.cfg.crops.global_size, self.cfg.augment, train=True)
        loss, _ = cast(MAE, module.mae)(x)
        return {"loss": loss}

    def encoder(self, module: PretrainModule) -> nn.Module:
        return module.student
