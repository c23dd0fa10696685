"""The slide reader registry: every backend name in one place, unknown names answered with the known
ones, ``auto``'s order and fallback, and a new reader that needs nothing but its own class."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from wsi_ssl.cli import build_parser, main
from wsi_ssl.slide.readers import (
    READERS,
    ReaderBase,
    SlideOpenError,
    SlideReader,
    backend_names,
    open_slide,
    register_reader,
)
from wsi_ssl.slide.readers.registry import auto_order
from wsi_ssl.tiling.config import TileConfig

KNOWN = "auto, czi, ome-zarr, openslide, tiffslide, wsidicom"


class FakeReader(ReaderBase):
    """A 2-level in-memory gradient slide at 0.5 um/px: what a new backend module looks like."""

    backend = "fake"
    auto_rank = -1  # before OpenSlide
    image = np.dstack([*np.meshgrid(np.arange(320) % 256, np.arange(200) % 256), np.full((200, 320), 7)]).astype(
        np.uint8
    )

    def _open(self) -> None:
        self.calls: list[tuple[int, ...]] = []

    def _read_properties(self) -> dict[str, str]:
        return {"fake.mpp": "0.5"}

    def _vendor(self) -> str:
        return "fake"

    def _metadata_mpp(self) -> float | None:
        return 0.5

    def _level_geometry(self) -> list[tuple[tuple[int, int], float]]:
        return [((320, 200), 1.0), ((160, 100), 2.0)]

    def _read_raw(self, x0: int, y0: int, level: int, width: int, height: int) -> np.ndarray:
        self.calls.append((x0, y0, level, width, height))
        out = np.full((height, width, 3), 255, np.uint8)
        src = self.image[:: 2**level, :: 2**level]
        x, y = x0 >> level, y0 >> level
        part = src[y : y + height, x : x + width]
        out[: part.shape[0], : part.shape[1]] = part
        return out


class RefusingReader(FakeReader):
    backend = "refuser"

    def _open(self) -> None:
        raise OSError("not my format")


def test_registry_lists_the_backends_once_for_config_and_cli() -> None:
    assert {"openslide", "tiffslide"} <= set(READERS)
    assert all(cls.backend == name for name, cls in READERS.items())
    assert backend_names()[0] == "auto" and set(backend_names()[1:]) == set(READERS)
    assert auto_order()[:2] == ["openslide", "tiffslide"]  # OpenSlide first, tiffslide as fallback
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices  # type: ignore[attr-defined]
    for command in ("tile", "info"):
        backend = next(a for a in sub[command]._actions if a.dest == "backend")
        assert list(backend.choices) == backend_names()
    for name in backend_names():
        assert TileConfig(backend=name).backend == name


def test_unknown_backend_is_an_error_naming_the_known_ones(
    one_slide: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ValueError, match=f"'bogus'; known backends: {KNOWN}"):
        open_slide(one_slide, "bogus")
    with pytest.raises(ValidationError, match=f"'bogus'; known backends: {KNOWN}"):
        TileConfig(backend="bogus")
    assert main(["tile", str(one_slide), "--out", str(tmp_path / "o"), "--set", "backend=bogus"]) == 2
    assert f"known backends: {KNOWN}" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["info", str(one_slide), "--backend", "bogus"])
    assert "invalid choice: 'bogus'" in capsys.readouterr().err


def test_every_tiff_reader_satisfies_the_protocol(one_slide: Path) -> None:
    """The general readers on one TIFF; the format readers (czi, ome-zarr, wsidicom) are held to
    the same protocol on their own files in tests/slide/test_formats.py."""
    pixels = []
    for name in ("openslide", "tiffslide"):
        with open_slide(one_slide, name, fast_reads=False) as reader:
            assert isinstance(reader, SlideReader) and reader.backend == name
            assert reader.mpp == pytest.approx(0.5) and [lv.mpp for lv in reader.levels] == pytest.approx([0.5, 1.0])
            pixels.append(reader.read_region(100, 80, 1, 64, 48))
            thumb = reader.thumbnail((128, 128))
            assert thumb.dtype == np.uint8 and thumb.shape[2] == 3 and max(thumb.shape[:2]) == 128
    assert all(np.array_equal(p, pixels[0]) for p in pixels)


def test_a_new_reader_is_one_class(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "slide.fake"
    path.write_bytes(b"")
    monkeypatch.setitem(READERS, "fake", FakeReader)
    assert "fake" in backend_names() and TileConfig(backend="fake").backend == "fake"
    assert auto_order()[0] == "fake"
    with open_slide(path) as reader:  # auto tries it first
        assert isinstance(reader, FakeReader) and reader.pixel_backend == "fake"
        assert reader.describe()["levels"][1] == {
            "level": 1,
            "width": 160,
            "height": 100,
            "downsample": 2.0,
            "mpp": 1.0,
        }
        assert np.array_equal(reader.read_region(10, 20, 0, 30, 40), FakeReader.image[20:60, 10:40])
        assert reader.best_level_for_downsample(3.0) == 1 and reader.require_mpp() == 0.5


def test_auto_moves_on_only_when_a_library_refuses(monkeypatch: pytest.MonkeyPatch, one_slide: Path) -> None:
    monkeypatch.setitem(READERS, "refuser", RefusingReader)
    with open_slide(one_slide) as reader:
        assert reader.backend == "openslide"
    with pytest.raises(SlideOpenError, match="^cannot open .*: refuser: not my format$"):
        open_slide(one_slide, "refuser")
    not_a_slide = one_slide.with_suffix(".txt")
    not_a_slide.write_text("hello")
    with pytest.raises(SlideOpenError) as err:
        open_slide(not_a_slide)
    assert str(err.value).startswith(f"cannot open {not_a_slide}: refuser: not my format; openslide: ")
    assert "; tiffslide: " in str(err.value)
    # A backend that opened the file but finds it unusable is not second-guessed by the next one.
    with pytest.raises(ValueError, match="mpp_override must be > 0"):
        open_slide(one_slide, mpp_override=-1.0)


def test_register_reader_refuses_a_taken_or_reserved_name() -> None:
    for name in ("openslide", "auto"):
        with pytest.raises(ValueError, match=repr(name)):
            register_reader(name)(type("Dup", (ReaderBase,), {}))
