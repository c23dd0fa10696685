"""Tiny generated cohorts for the MIL tests: feature files on disk plus slide tables."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch

from wsi_ssl.stores.features import write_features

DIM = 8


def write_cohort(
    root: Path, n_patients: int = 24, slides_per_patient: int = 1, clam_style: bool = False, seed: int = 0
) -> tuple[Path, pd.DataFrame]:
    """Feature files whose label/risk is carried by a few strong tiles, and their slide table.

    ``clam_style`` writes files the way CLAM does: [1, N, D] features, no slide attrs.
    """
    rng = np.random.default_rng(seed)
    feats_dir = root / "features"
    feats_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for p in range(n_patients):
        label = p % 2
        time = rng.exponential(30.0 if label == 0 else 8.0) + 1.0
        event = int(rng.random() < 0.8)
        for s in range(slides_per_patient):
            sid = f"P{p:03d}_S{s}"
            n = int(rng.integers(12, 40))
            xy = np.stack(np.meshgrid(np.arange(8), np.arange(8)), -1).reshape(-1, 2)[:n] * 256 + 100
            x = rng.normal(size=(n, DIM)).astype(np.float32)
            if label:
                x[: max(2, n // 6), 0] += 4.0
            if clam_style:
                with h5py.File(feats_dir / f"{sid}.h5", "w") as f:
                    f.create_dataset("features", data=x[None])
                    f.create_dataset("coords", data=xy[None].astype(np.int64))
            else:
                write_features(
                    feats_dir / f"{sid}.h5",
                    x,
                    xy,
                    {"slide_id": sid, "encoder": "test", "encoder_sha256": "", "mpp": 0.5, "tile_size": 256},
                )
            rows.append(
                {
                    "slide_id": sid,
                    "patient_id": f"P{p:03d}",
                    "label": "pos" if label else "neg",
                    "score": float(x[:, 0].max()),
                    "time": round(time, 2),
                    "event": event,
                }
            )
    return feats_dir, pd.DataFrame(rows)


@pytest.fixture()
def make_cohort() -> Callable[..., tuple[Path, pd.DataFrame]]:
    """The cohort writer, as a fixture (test modules cannot import conftest by name)."""
    return write_cohort


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """Tiny models on a shared 2-core machine: thread hand-offs cost more than they give
    (a 16-wide transformer epoch went from 4 s to 0.2 s). Restored after each test."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
