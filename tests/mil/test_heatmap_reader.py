"""Heatmaps read slides through the reader protocol: a newly registered reader is all they need,
and the tile size over the slide comes from the reader's MPP, not from one library's properties."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from wsi_ssl.mil.bags import Bag
from wsi_ssl.slide.readers import READERS, ReaderBase


class GradientReader(ReaderBase):
    """An in-memory 1024 x 768 slide at 0.25 um/px that logs what it is asked for."""

    backend = "gradient"
    auto_rank = -1  # ``auto`` tries it before OpenSlide
    image = np.dstack([*np.meshgrid(np.arange(1024) % 256, np.arange(768) % 256), np.full((768, 1024), 99)]).astype(
        np.uint8
    )
    calls: ClassVar[list[str]] = []

    def _open(self) -> None:
        GradientReader.calls.append("open")

    def _close(self) -> None:
        GradientReader.calls.append("close")

    def _read_properties(self) -> dict[str, str]:
        return {}

    def _vendor(self) -> str:
        return "gradient"

    def _metadata_mpp(self) -> float | None:
        return 0.25

    def _level_geometry(self) -> list[tuple[tuple[int, int], float]]:
        return [((1024, 768), 1.0)]

    def _read_raw(self, x0: int, y0: int, level: int, width: int, height: int) -> np.ndarray:
        GradientReader.calls.append(f"read {x0},{y0} {width}x{height}")
        return self.image[y0 : y0 + height, x0 : x0 + width]


@pytest.fixture()
def gradient_slide(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setitem(READERS, "gradient", GradientReader)
    GradientReader.calls = []
    path = tmp_path / "s1.gradient"
    path.write_bytes(b"")  # the reader needs an existing file, not a format any library knows
    return path


def test_heatmap_reads_the_slide_through_a_registered_reader(gradient_slide: Path, tmp_path: Path) -> None:
    from wsi_ssl.mil.heatmaps import slide_heatmap

    coords = np.array([(x, y) for y in range(0, 768, 128) for x in range(0, 1024, 128)])
    scores = np.arange(len(coords), dtype=np.float32)
    written = slide_heatmap(coords, scores, tmp_path / "h.png", tile_px=128, slide_path=gradient_slide, top_k=2)
    assert set(written) == {"heatmap", "top_tiles_csv", "top_tiles"}
    # The thumbnail (the whole single level) then the two best tiles, then the reader is closed.
    assert GradientReader.calls == [
        "open",
        "read 0,0 1024x768",
        "read 896,640 128x128",
        "read 768,640 128x128",
        "close",
    ]
    montage = np.asarray(Image.open(written["top_tiles"]))
    best = np.asarray(Image.fromarray(GradientReader.image[640:768, 896:1024]).resize((160, 160)))
    assert np.array_equal(montage[:, :160], best)


def test_write_heatmaps_sizes_tiles_from_the_readers_mpp(
    gradient_slide: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from wsi_ssl.mil import experiment, heatmaps

    seen: dict[str, Any] = {}
    monkeypatch.setattr(experiment, "read_feature_attrs", lambda path: {"tile_size": 224, "mpp": 0.5})
    monkeypatch.setattr(
        heatmaps,
        "slide_heatmap",
        lambda coords, scores, out, tile_px, path, **kw: seen.update(tile_px=tile_px, path=path),
    )
    coords = np.array([[0, 0], [448, 0]])
    bag = Bag("s1", "p1", np.zeros((2, 4), np.float32), np.array(1), ["s1"], coords, np.zeros(2, int))
    df = pd.DataFrame({"slide_id": ["s1"], "path": [str(gradient_slide)]})
    n = experiment.write_heatmaps([bag], {"s1": np.ones(2)}, tmp_path, tmp_path / "maps", df, None, limit=1, top_k=1)
    assert n == 1 and seen == {"tile_px": 448, "path": gradient_slide}  # 224 px at 0.5 um/px on a 0.25 um/px slide
    assert GradientReader.calls == ["open", "close"]
