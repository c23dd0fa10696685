"""Bags' features held as tensors on one device, so a training epoch moves no features.

MIL training reads the same bags every epoch. Where they live decides what a step costs on a
GPU. Copied from the host each step, a batch of 16 bags of ~2,750 tiles of 384-d float32 is
70 MB: about 3 ms over PCIe at 25 GB/s, by estimate several times the ~35 GFLOP of its forward
and backward passes on an H100 (not measured: no GPU was lent to this work). Uploaded once per
fold in their stored dtype (float16 with ``wsi-ssl embed --dtype float16``), later steps only
gather on the device. On a CPU the bank is the bags' own arrays (no copy), and batches are
packed from them directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch

from wsi_ssl.mil.bags import Bag, Batch, pack, subsample, to_device

Placement = Literal["auto", "device", "host"]

# ``auto`` uploads a fold's bags when they take at most this share of the device's free memory,
# leaving the rest for activations (a 16-bag batch of 8,192 tiles at hidden 256 is ~0.5 GB).
DEVICE_SHARE = 0.4


def device_fits(nbytes: int, device: torch.device, share: float = DEVICE_SHARE) -> bool:
    if device.type != "cuda":
        return False
    free, _ = torch.cuda.mem_get_info(device)
    return nbytes <= share * free


class FeatureBank:
    """Per-bag feature tensors (stored dtype) and targets, on ``device`` or on the host."""

    def __init__(self, bags: Sequence[Bag], device: torch.device | str = "cpu", placement: Placement = "auto") -> None:
        device = torch.device(device)
        nbytes = sum(b.features.nbytes for b in bags)
        if placement == "device" and device.type == "cpu":
            placement = "host"
        on_device = device.type != "cpu" and (
            placement == "device" or (placement == "auto" and device_fits(nbytes, device))
        )
        self.device = device if on_device else torch.device("cpu")
        self.target_device = device
        self.keys = [b.key for b in bags]
        self.lengths = [len(b) for b in bags]
        self.features = [torch.from_numpy(np.ascontiguousarray(b.features)).to(self.device) for b in bags]
        self.targets = [np.asarray(b.target) for b in bags]
        # raw covariate/omics rows, stacked once: a step gathers its rows instead of re-stacking
        has_side = bool(bags) and all(b.side is not None for b in bags)
        self.sides = torch.from_numpy(np.stack([np.asarray(b.side, np.float32) for b in bags])) if has_side else None
        self.nbytes = nbytes

    @property
    def on_device(self) -> bool:
        return self.device.type != "cpu"

    def __len__(self) -> int:
        return len(self.features)

    def batch(
        self, idx: Sequence[int], max_instances: int | None = None, rng: np.random.Generator | None = None
    ) -> Batch:
        """The bags ``idx`` as one packed batch on the target device.

        Bags above ``max_instances`` are subsampled only when an ``rng`` is given (training);
        evaluation passes none and sees every tile. Host banks pack into pinned memory when the
        target is a GPU, so the copy runs asynchronously with the previous step's kernels.
        """
        parts = []
        for i in idx:
            keep = subsample(self.lengths[i], max_instances, rng)
            parts.append(
                self.features[i] if keep is None else self.features[i][to_device(torch.from_numpy(keep), self.device)]
            )
        batch = pack(
            parts,
            [self.targets[i] for i in idx],
            [self.keys[i] for i in idx],
            pin=not self.on_device and self.target_device.type == "cuda",
            sides=None if self.sides is None else self.sides[torch.as_tensor(list(idx))],
        )
        return batch.to(self.target_device)
