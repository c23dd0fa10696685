"""Group DICOM files into whole-slide images by the UIDs in their headers, wherever they sit.

A DICOM WSI is a *series* (one SeriesInstanceUID inside one StudyInstanceUID) of instances, one
file per pyramid level or per part of one. Folders mean nothing to the standard: a flat export
folder may hold several series, and an archive may spread one series over sub-folders. So we read
headers (pydicom, pixel data skipped) and group by (study, series); folder names are only used to
name a slide when its folder holds that one series and nothing else.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from wsi_ssl.slide.sniff import VL_WSI_SOP_CLASS
from wsi_ssl.storage.paths import open_binary

log = logging.getLogger(__name__)

_TAGS = [
    "SOPClassUID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "ContainerIdentifier",
    "ImageType",
    "TotalPixelMatrixColumns",
]


@dataclass(frozen=True)
class DicomSeries:
    study_uid: str
    series_uid: str
    files: tuple[Path, ...]  # sorted; the largest level (most pixel columns) first
    container_id: str  # the slide's barcode/label identifier, if the scanner wrote one
    is_wsi: bool  # VL Whole Slide Microscopy Image Storage

    @property
    def folder(self) -> Path:
        """The deepest folder holding every file of the series."""
        parents = [f.parent for f in self.files]
        common = parents[0]
        while not all(p == common or common in p.parents for p in parents):
            common = common.parent
        return common

    @property
    def single_folder(self) -> bool:
        return len({f.parent for f in self.files}) == 1


def read_series(files: list[Path]) -> tuple[list[DicomSeries], list[Path]]:
    """The series among ``files``, and the files whose header pydicom cannot read."""
    import pydicom

    groups: dict[tuple[str, str], list[tuple[int, Path]]] = defaultdict(list)
    meta: dict[tuple[str, str], tuple[str, bool]] = {}
    unreadable: list[Path] = []
    for f in sorted(files):
        try:
            with open_binary(f) as fh:  # a local file, or a URL read with ranged requests
                ds = pydicom.dcmread(fh, stop_before_pixels=True, specific_tags=_TAGS)
        except Exception:  # noqa: BLE001 - not DICOM, or truncated: the caller reports it as a slide
            unreadable.append(f)
            continue
        key = (str(ds.get("StudyInstanceUID", "")), str(ds.get("SeriesInstanceUID", "")))
        if not key[1]:
            unreadable.append(f)
            continue
        cols = int(ds.get("TotalPixelMatrixColumns", 0) or 0)
        groups[key].append((-cols, f))
        is_wsi = str(ds.get("SOPClassUID", "")) == VL_WSI_SOP_CLASS
        prev = meta.get(key, ("", False))
        meta[key] = (prev[0] or str(ds.get("ContainerIdentifier", "") or "").strip(), prev[1] or is_wsi)
    series = [
        DicomSeries(study, uid, tuple(f for _, f in sorted(members)), *meta[(study, uid)])
        for (study, uid), members in groups.items()
    ]
    return sorted(series, key=lambda s: (s.study_uid, s.series_uid)), unreadable
