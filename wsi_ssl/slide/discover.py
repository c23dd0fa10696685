"""Turn command-line inputs (files, folders, a slides CSV) into a list of uniquely named slides.

A DICOM whole-slide image is a folder of ``.dcm`` files: the folder is one slide, named after it,
opened through any one of its files. MIRAX ``.mrxs`` files come with a data folder of the same name,
which is not searched.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

SLIDE_SUFFIXES = {
    ".svs",
    ".tif",
    ".tiff",
    ".ndpi",
    ".mrxs",
    ".scn",
    ".vms",
    ".vmu",
    ".bif",
    ".svslide",
    ".qptiff",
    ".btf",
}


class SlideListError(ValueError):
    """Inputs that do not name a usable, unambiguous set of slides."""


@dataclass(frozen=True)
class SlideEntry:
    slide_id: str
    path: Path
    mpp: float | None = None  # per-slide MPP from the CSV, for files without it


def _dicom_entry(folder: Path) -> SlideEntry | None:
    files = sorted(folder.glob("*.dcm"))
    return SlideEntry(folder.name, files[0]) if files else None


def _search_folder(folder: Path) -> list[SlideEntry]:
    found: list[SlideEntry] = []
    dicom = _dicom_entry(folder)
    if dicom:
        return [dicom]
    mrxs_dirs = {p.with_suffix("") for p in folder.glob("*.mrxs")}
    for child in sorted(folder.iterdir()):
        if child.name.startswith("."):
            continue
        if child.is_dir():
            if child in mrxs_dirs or child.suffix == ".zarr":
                continue
            found.extend(_search_folder(child))
        elif child.suffix.lower() in SLIDE_SUFFIXES:
            found.append(SlideEntry(child.stem, child))
    return found


def _read_csv(path: Path) -> list[SlideEntry]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        cols = set(reader.fieldnames or [])
        if "path" not in cols:
            raise SlideListError(
                f"{path}: a slides CSV needs a 'path' column (and optionally slide_id, mpp); found {sorted(cols)}"
            )
        entries = []
        for row_no, row in enumerate(reader, start=2):
            raw = (row.get("path") or "").strip()
            if not raw:
                raise SlideListError(f"{path}, line {row_no}: empty path")
            p = Path(raw)
            if not p.is_absolute():
                p = (path.parent / p).resolve()
            sid = (row.get("slide_id") or "").strip() or (p.name if p.is_dir() else p.stem)
            mpp_txt = (row.get("mpp") or "").strip()
            try:
                mpp = float(mpp_txt) if mpp_txt else None
            except ValueError:
                raise SlideListError(f"{path}, line {row_no}: mpp {mpp_txt!r} is not a number") from None
            if p.is_dir():
                d = _dicom_entry(p)
                if d is None:
                    raise SlideListError(f"{path}, line {row_no}: {p} is a folder without .dcm files")
                p = d.path
            entries.append(SlideEntry(sid, p, mpp))
        return entries


def discover_slides(inputs: list[str | Path]) -> list[SlideEntry]:
    """Slides named by files, folders (searched recursively) and CSVs; slide_ids must be unique."""
    entries: list[SlideEntry] = []
    for raw in inputs:
        p = Path(raw)
        if p.suffix.lower() == ".csv" and p.is_file():
            entries.extend(_read_csv(p))
        elif p.is_dir():
            entries.extend(_search_folder(p))
        elif p.exists():
            entries.append(SlideEntry(p.stem, p))
        else:
            raise SlideListError(f"input not found: {p}")
    seen: dict[str, Path] = {}
    for e in entries:
        if e.slide_id in seen and seen[e.slide_id] != e.path:
            raise SlideListError(
                f"two slides share the id {e.slide_id!r}: {seen[e.slide_id]} and {e.path}; name them in a slides CSV"
            )
        seen[e.slide_id] = e.path
    unique = {e.slide_id: e for e in entries}
    return sorted(unique.values(), key=lambda e: e.slide_id)
