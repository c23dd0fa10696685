"""Generated slides for the tiler's tests (small, so the suite stays fast)."""

from __future__ import annotations

from pathlib import Path

import pytest

from wsi_ssl.synthetic import write_slide


@pytest.fixture(scope="session")
def slides_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three generated slides: 0.5 um/px (3 levels), 0.25 um/px (4 levels), and one with pen marks."""
    d = tmp_path_factory.mktemp("slides")
    write_slide(d / "s050.tiff", width=2048, height=1536, mpp=0.5, levels=3, seed=1, compression="none")
    write_slide(d / "s025.tiff", width=3072, height=2304, mpp=0.25, levels=4, seed=2, compression="none")
    write_slide(d / "pen.tiff", width=2048, height=1536, mpp=0.5, levels=3, seed=3, pen_marks=True)
    return d


@pytest.fixture()
def one_slide(tmp_path: Path) -> Path:
    path = tmp_path / "in" / "one.tiff"
    write_slide(path, width=1536, height=1024, mpp=0.5, levels=2, seed=7)
    return path
