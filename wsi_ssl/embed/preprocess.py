"""The encoder's own input transform: uint8 tiles -> normalised float images of its input size.

The numbers come from the encoder's config (Contract 2: ``input_size``, ``mean``, ``std``), never
from the tile store, so features match what the encoder saw in training. A tile of another size
is resized (bilinear, antialiased) to ``input_size``; docs/embed.md says so.

The same function runs in a DataLoader worker (CPU runs, so the forward's cores never wait on
it) or on the GPU after a uint8 copy (4x fewer bytes over PCIe than float32).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Preprocess:
    """``input_size`` square output, per-channel ``mean``/``std`` in [0, 1] units."""

    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @classmethod
    def from_encoder_config(cls, config: Any) -> Preprocess:
        return cls(int(config.input_size), _triple(config.mean), _triple(config.std))

    def __call__(self, tiles: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """``tiles`` uint8 [B, T, T, 3] (channels last, as stored) -> ``dtype`` [B, 3, S, S]."""
        if tiles.ndim != 4 or tiles.shape[-1] != 3:
            raise ValueError(f"expected uint8 tiles [B, T, T, 3], got {tuple(tiles.shape)}")
        x = tiles.permute(0, 3, 1, 2).to(torch.float32)
        if x.shape[-2:] != (self.input_size, self.input_size):
            x = F.interpolate(
                x, size=(self.input_size, self.input_size), mode="bilinear", antialias=True, align_corners=False
            )
        mean = torch.tensor(self.mean, dtype=torch.float32, device=x.device).view(1, 3, 1, 1) * 255.0
        inv_std = 1.0 / (torch.tensor(self.std, dtype=torch.float32, device=x.device).view(1, 3, 1, 1) * 255.0)
        x = (x - mean).mul_(inv_std)
        return x.contiguous().to(dtype)


def _triple(values: Sequence[float]) -> tuple[float, float, float]:
    vals = tuple(float(v) for v in values)
    if len(vals) == 1:
        vals = vals * 3
    if len(vals) != 3:
        raise ValueError(f"mean/std must have 1 or 3 values, got {values!r}")
    return vals  # type: ignore[return-value]
