"""wsidicom: DICOM whole-slide images whose series OpenSlide cannot gather.

OpenSlide reads a DICOM WSI through any one of its files, collecting the files of that series
from the same folder. A series spread over sub-folders (``slide/level0/*.dcm``,
``slide/level1/*.dcm``) is out of its reach; discovery then names the folder holding the whole
series, and this reader opens it: every ``.dcm`` below the folder, grouped by series UID
(``dicom_series.py``), handed to ``WsiDicom.open``. Given one ``.dcm`` file it opens that file's
series from the file's folder, as OpenSlide would (the fallback when OpenSlide refuses a file).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from wsi_ssl.slide.dicom_series import read_series
from wsi_ssl.slide.readers.base import ReaderBase, SlideRefusedError
from wsi_ssl.slide.readers.registry import register_reader
from wsi_ssl.slide.sniff import FileFacts
from wsi_ssl.storage.paths import open_binary


def series_files(path: Path) -> list[Path]:
    """The files of the one DICOM WSI series at ``path`` (a folder, or one of the series' files)."""
    if path.is_dir():
        series, _ = read_series(sorted(path.rglob("*.dcm")))
        series = [s for s in series if s.is_wsi]
        if len(series) > 1:
            raise SlideRefusedError(
                f"{path} holds {len(series)} DICOM whole-slide series; name one of their files "
                "(wsi-ssl tile FOLDER lists them as separate slides)"
            )
        if not series:
            raise ValueError(f"{path} holds no DICOM whole-slide image")
        return list(series[0].files)
    series, _ = read_series(sorted(path.parent.glob("*.dcm")))
    for s in series:
        if path in s.files:
            return list(s.files)
    raise ValueError(f"{path.name}: DICOM header unreadable")


@register_reader("wsidicom", auto_rank=2)
class WsiDicomReader(ReaderBase):
    """A DICOM series opened with ``wsidicom.WsiDicom``; reads are in the level's own pixels."""

    _slide: Any
    _files: list[Path]

    @classmethod
    def claims(cls, facts: FileFacts) -> bool:
        return facts.format == "dicom-folder"

    def _open(self) -> None:
        import logging

        import wsidicom

        # It warns once per instance whose frame of reference differs from the base level's and
        # leaves that level out; the levels it keeps are what ``info`` shows.
        logging.getLogger("wsidicom").setLevel(logging.ERROR)
        self._files = series_files(self.path)
        self._slide = wsidicom.WsiDicom.open(self._files)

    def _close(self) -> None:
        self._slide.close()

    def _color_probe_path(self) -> Path:
        return self._files[0]  # the largest level's file: its first JPEG frame tells the colour space

    def _read_properties(self) -> dict[str, str]:
        import pydicom

        with open_binary(self._files[0]) as fh:  # a local file, or a URL (remote_dicom.py)
            ds = pydicom.dcmread(fh, stop_before_pixels=True)
        props = {
            "openslide.vendor": "dicom",  # the key the DICOM colour check (color.py) keys on
            "dicom.PhotometricInterpretation": str(ds.get("PhotometricInterpretation", "")),
            "dicom.TransferSyntaxUID": str(ds.file_meta.get("TransferSyntaxUID", "")),
            "dicom.SeriesInstanceUID": str(ds.get("SeriesInstanceUID", "")),
            "dicom.StudyInstanceUID": str(ds.get("StudyInstanceUID", "")),
            "wsidicom.files": str(len(self._files)),
        }
        return props

    def _vendor(self) -> str:
        return "dicom"

    def _metadata_mpp(self) -> float | None:
        mpp = self._slide.levels[0].mpp  # SizeMm, but in microns per pixel
        return (float(mpp.width) + float(mpp.height)) / 2 if mpp is not None else None

    def _level_geometry(self) -> list[tuple[tuple[int, int], float]]:
        w0 = int(self._slide.levels[0].size.width)
        return [((int(lv.size.width), int(lv.size.height)), w0 / int(lv.size.width)) for lv in self._slide.levels]

    def _read_raw(self, x0: int, y0: int, level: int, width: int, height: int) -> np.ndarray:
        lv = self._slide.levels[level]
        ds = self.levels[level].downsample
        image = self._slide.read_region((int(round(x0 / ds)), int(round(y0 / ds))), lv.level, (width, height))
        return np.asarray(image.convert("RGB"))

    def source_tile_size(self, level: int) -> int | None:
        size = self._slide.levels[level].tile_size
        return int(size.width) if size.width == size.height else None
