"""Small generated slides shared by the synthetic tests (written once per session, ~0.1 s each)."""

from __future__ import annotations

from pathlib import Path

import pytest

from wsi_ssl.synthetic import SlideTruth, write_slide


@pytest.fixture(scope="session")
def small_slide(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SlideTruth]:
    path = tmp_path_factory.mktemp("synthetic") / "small.tiff"
    truth = write_slide(path, width=1280, height=960, levels=3, seed=3, mpp=0.5, tumor_fraction=0.35)
    return path, truth
