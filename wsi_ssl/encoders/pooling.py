"""How a token sequence becomes one tile embedding: named, tested transforms, never inline slicing.

A wrong pooling gives plausible, wrong features, so each model's rule is one of these names,
recorded in its preset and in the encoder dir's ``config.json``. ``tokens`` is the backbone's
final-normed output ``[B, T, D]``; its first ``num_prefix_tokens`` rows are the class token
followed by any register tokens, the rest are patch tokens. Registers are never pooled.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported when a pooling runs, not when presets are listed
    import torch

PoolFn = Callable[["torch.Tensor", int], "torch.Tensor"]
POOLINGS: dict[str, PoolFn] = {}
# Output width as a multiple of the token width, so the embedding dim is known without a forward.
WIDTH_FACTOR: dict[str, int] = {}


def register_pooling(name: str, width_factor: int = 1) -> Callable[[PoolFn], PoolFn]:
    def deco(fn: PoolFn) -> PoolFn:
        POOLINGS[name] = fn
        WIDTH_FACTOR[name] = width_factor
        return fn

    return deco


def _patches(tokens: torch.Tensor, num_prefix_tokens: int) -> torch.Tensor:
    if tokens.shape[1] <= num_prefix_tokens:
        raise ValueError(
            f"{tokens.shape[1]} tokens, of which {num_prefix_tokens} are prefix tokens: no patch tokens to pool"
        )
    return tokens[:, num_prefix_tokens:]


@register_pooling("cls")
def cls_token(tokens: torch.Tensor, num_prefix_tokens: int) -> torch.Tensor:
    """The class token (row 0): UNI, UNI2-h, H-optimus, Prov-GigaPath, Phikon, DINOv2 ..."""
    if num_prefix_tokens < 1:
        raise ValueError("cls pooling needs a class token, but this backbone has no prefix tokens")
    return tokens[:, 0]


@register_pooling("cls+mean_patch", width_factor=2)
def cls_and_mean_patch(tokens: torch.Tensor, num_prefix_tokens: int) -> torch.Tensor:
    """The class token concatenated with the mean of the patch tokens (Virchow, Virchow2, Midnight)."""
    import torch

    return torch.cat([cls_token(tokens, num_prefix_tokens), _patches(tokens, num_prefix_tokens).mean(dim=1)], dim=-1)


@register_pooling("mean_patch")
def mean_patch(tokens: torch.Tensor, num_prefix_tokens: int) -> torch.Tensor:
    """The mean of the patch tokens; for a CNN-style map (Swin, CTransPath) the spatial mean."""
    return _patches(tokens, num_prefix_tokens).mean(dim=1)


@register_pooling("model")
def model_pooled(tokens: torch.Tensor, num_prefix_tokens: int) -> torch.Tensor:
    """The model pooled by itself with learned weights (CONCH v1.5's attention pool); ``tokens`` is [B, D]."""
    if tokens.ndim != 2:
        raise ValueError(f"'model' pooling expects the model's own pooled output [B, D], got {tuple(tokens.shape)}")
    return tokens


def pool(name: str, tokens: torch.Tensor, num_prefix_tokens: int) -> torch.Tensor:
    return get_pooling(name)(tokens, num_prefix_tokens)


def get_pooling(name: str) -> PoolFn:
    try:
        return POOLINGS[name]
    except KeyError:
        raise ValueError(f"unknown pooling {name!r}; known: {', '.join(sorted(POOLINGS))}") from None
