"""``PooledEncoder``: a backbone plus its named pooling, so every encoder answers ``model(x) -> [B, D]``.

The embed stage, the API's tile encoder and evaluation all call the model the same way whatever
its family; what differs (how tokens are read out of a timm or a transformers model, how many
prefix tokens precede the patches, which pooling the authors use) is fixed here at build time.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from wsi_ssl.encoders.pooling import get_pooling

TokensFn = Callable[[nn.Module, torch.Tensor], torch.Tensor]


def timm_tokens(backbone: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """timm's ``forward_features``: final-normed tokens [B, T, D]; a Swin map [B, H, W, C] is flattened."""
    y = backbone.forward_features(x)  # type: ignore[operator]
    return y.flatten(1, 2) if y.ndim == 4 else y


def transformers_tokens(backbone: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """transformers' ``last_hidden_state``: after the final layer norm in ViTModel and Dinov2Model."""
    return backbone(pixel_values=x).last_hidden_state


def module_output(backbone: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """A model of our own that pools by itself (a learned attention pool, as CONCH v1.5 has)."""
    return backbone(x)


TOKENS: dict[str, TokensFn] = {"timm": timm_tokens, "transformers": transformers_tokens, "module": module_output}


class PooledEncoder(nn.Module):
    """``forward(x) = pooling(tokens(backbone, x))``; the backbone's own weights are under ``backbone.``."""

    def __init__(self, backbone: nn.Module, builder: str, pooling: str, num_prefix_tokens: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.builder, self.pooling, self.num_prefix_tokens = builder, pooling, int(num_prefix_tokens)
        self._tokens = TOKENS[builder]
        self._pool = get_pooling(pooling)
        config = getattr(backbone, "config", None)  # transformers models name their width hidden_size
        self.num_features = int(getattr(backbone, "num_features", None) or getattr(config, "hidden_size", 0) or 0)

    def forward_tokens(self, x: torch.Tensor) -> torch.Tensor:
        return self._tokens(self.backbone, x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._pool(self.forward_tokens(x), self.num_prefix_tokens)

    def extra_repr(self) -> str:
        return f"builder={self.builder}, pooling={self.pooling}, num_prefix_tokens={self.num_prefix_tokens}"
