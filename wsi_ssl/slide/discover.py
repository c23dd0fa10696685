"""Turn command-line inputs (files, folders, a slides CSV) into a list of uniquely named slides.

Slide files are found by suffix, recursively. DICOM files are grouped into slides by the
Study/Series UIDs in their headers (``dicom_series.py``), wherever they sit: a flat folder with
several series gives several slides, a series spread over sub-folders is one slide, and ``.dcm``
files never hide the other slides of a folder. A series is named after its folder when that folder
holds this one series and nothing else (the usual one-slide-per-folder export), else by its
ContainerIdentifier (the slide's label) or, failing that, its SeriesInstanceUID. MIRAX ``.mrxs``
files come with a data folder of the same name, which is not searched; ``.zarr`` folders are
slides when they carry OME-Zarr (NGFF) multiscales metadata (tile stores do not).
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

from wsi_ssl.slide.dicom_series import DicomSeries, read_series
from wsi_ssl.slide.sniff import UNSUPPORTED_FORMATS
from wsi_ssl.storage.paths import AnyPath, as_path, is_url

log = logging.getLogger(__name__)

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
    ".czi",
    *UNSUPPORTED_FORMATS,  # found, so the manifest names the format instead of silently skipping it
}


class SlideListError(ValueError):
    """Inputs that do not name a usable, unambiguous set of slides."""


@dataclass(frozen=True)
class SlideEntry:
    slide_id: str
    path: AnyPath  # a local file or folder, or a slide URL read in place (wsi_ssl/storage)
    mpp: float | None = None  # per-slide MPP from the CSV, for files without it


def _is_ome_zarr(folder: Path) -> bool:
    from wsi_ssl.slide.sniff import ome_multiscales

    return ome_multiscales(folder) is not None


def _zarr_id(folder: Path) -> str:
    """``image.ome.zarr`` -> ``image``."""
    name = folder.name.removesuffix(".zarr")
    return name.removesuffix(".ome")


def _walk(folder: Path, slides: list[Path], dicoms: list[Path]) -> None:
    """Slide files (and OME-Zarr folders) into ``slides``, every ``.dcm`` into ``dicoms``."""
    mrxs_dirs = {p.with_suffix("") for p in folder.glob("*.mrxs")}
    for child in sorted(folder.iterdir()):
        if child.name.startswith("."):
            continue
        if child.is_dir():
            if child.suffix == ".zarr":
                if _is_ome_zarr(child):
                    slides.append(child)
            elif child not in mrxs_dirs:
                _walk(child, slides, dicoms)
        elif child.suffix.lower() == ".dcm":
            dicoms.append(child)
        elif child.suffix.lower() in SLIDE_SUFFIXES:
            slides.append(child)


def _series_entry(series: DicomSeries, all_series: list[DicomSeries], slides: list[Path]) -> SlideEntry:
    """One slide per series: a file of it when it sits in one folder (OpenSlide reads the folder's
    files of that series), else the folder holding all of it (read through wsidicom)."""
    folder = series.folder
    others = [s for s in all_series if s is not series and any(f.is_relative_to(folder) for f in s.files)]
    alone = not others and not any(p.is_relative_to(folder) for p in slides)
    slide_id = folder.name if alone else (series.container_id or series.series_uid)
    if series.single_folder or others:
        if not series.single_folder:
            log.warning("DICOM series %s spans folders shared with other series; reading %s", slide_id, folder)
        return SlideEntry(slide_id, series.files[0])
    return SlideEntry(slide_id, folder)


def dicom_entries(files: list[Path], slides: list[Path] | None = None) -> list[SlideEntry]:
    """Slides of the ``.dcm`` files; ``slides`` (other slide files found beside them) only affect
    naming. Non-WSI DICOM files are left out with a warning; unreadable ones are kept as slides, so
    the run reports why they fail."""
    series, unreadable = read_series(files)
    wsi = [s for s in series if s.is_wsi]
    for s in series:
        if not s.is_wsi:
            log.warning("skipping DICOM series %s (%s): not a whole-slide image", s.series_uid, s.files[0])
    entries = [_series_entry(s, wsi, slides or []) for s in wsi]
    ids = [e.slide_id for e in entries]
    entries = [  # two series with one label: fall back to their UIDs
        SlideEntry(s.series_uid, e.path) if ids.count(e.slide_id) > 1 else e for s, e in zip(wsi, entries)
    ]
    return entries + [SlideEntry(f.stem, f) for f in unreadable]


def _search_folder(folder: Path) -> list[SlideEntry]:
    slides: list[Path] = []
    dicoms: list[Path] = []
    _walk(folder, slides, dicoms)
    entries = [SlideEntry(_zarr_id(p) if p.is_dir() else p.stem, p) for p in slides]
    return entries + (dicom_entries(dicoms, slides) if dicoms else [])


def folder_slide(folder: Path) -> SlideEntry | None:
    """The one slide a folder named as a slide holds (a DICOM series folder, an OME-Zarr image);
    None when it holds none; a ``SlideListError`` when it holds several."""
    if folder.suffix == ".zarr" and _is_ome_zarr(folder):
        return SlideEntry(_zarr_id(folder), folder)
    found = _search_folder(folder)
    if len(found) > 1:
        raise SlideListError(
            f"{folder} holds {len(found)} slides ({', '.join(e.slide_id for e in found[:4])}"
            f"{', ...' if len(found) > 4 else ''}); name one of their files"
        )
    return found[0] if found else None


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
            p = as_path(raw)  # a path, or an s3://, gs://, https:// URL
            if isinstance(p, Path) and not p.is_absolute():
                p = (path.parent / p).resolve()
            sid = (row.get("slide_id") or "").strip() or (p.name if p.is_dir() else p.stem)
            mpp_txt = (row.get("mpp") or "").strip()
            try:
                mpp = float(mpp_txt) if mpp_txt else None
            except ValueError:
                raise SlideListError(f"{path}, line {row_no}: mpp {mpp_txt!r} is not a number") from None
            if isinstance(p, Path) and p.is_dir():
                d = folder_slide(p)
                if d is None:
                    raise SlideListError(f"{path}, line {row_no}: {p} is a folder without a slide (.dcm files)")
                p = d.path
            entries.append(SlideEntry(sid, p, mpp))
        return entries


def _dicom_file_entry(path: Path) -> SlideEntry:
    """A ``.dcm`` file named on its own: named by its series (the scanner's container identifier,
    else the SeriesInstanceUID), as in a folder, not by its file name. A file that is not a
    whole-slide image, or whose header is unreadable, keeps its stem: the run reports why it fails."""
    series, _ = read_series([path])
    if not series or not series[0].is_wsi:
        return SlideEntry(path.stem, path)
    return SlideEntry(series[0].container_id or series[0].series_uid, path)


def _remote_dicom_entries(url: str) -> list[SlideEntry]:
    """The DICOM series under a URL prefix (headers read with ranged requests), named as in a
    local folder; one ``.dcm`` URL is one slide, its series gathered when it is opened."""
    root = as_path(url)
    if root.suffix.lower() == ".dcm":
        return [SlideEntry(root.stem, root)]
    if not root.is_dir():
        return []
    found = sorted((p for p in root.rglob("*.dcm") if not p.name.startswith(".")), key=str)
    return dicom_entries(found) if found else []


def discover_slides(inputs: list[str | Path]) -> list[SlideEntry]:
    """Slides named by files, folders (searched recursively) and CSVs; slide_ids must be unique."""
    entries: list[SlideEntry] = []
    for raw in inputs:
        if is_url(raw):  # a slide URL, or a prefix searched for slide files
            from wsi_ssl.slide.readers.remote import list_remote_slides

            entries.extend(SlideEntry(sid, url) for sid, url in list_remote_slides(str(raw), SLIDE_SUFFIXES))
            entries.extend(_remote_dicom_entries(str(raw)))
            continue
        p = Path(raw)
        if p.suffix.lower() == ".csv" and p.is_file():
            entries.extend(_read_csv(p))
        elif p.is_dir():
            if p.suffix == ".zarr" and _is_ome_zarr(p):
                entries.append(SlideEntry(_zarr_id(p), p))
            else:
                entries.extend(_search_folder(p))
        elif p.exists() and p.suffix.lower() == ".dcm":
            entries.append(_dicom_file_entry(p))
        elif p.exists():
            entries.append(SlideEntry(p.stem, p))
        else:
            raise SlideListError(f"input not found: {p}")
    seen: dict[str, AnyPath] = {}
    for e in entries:
        if e.slide_id in seen and seen[e.slide_id] != e.path:
            raise SlideListError(
                f"two slides share the id {e.slide_id!r}: {seen[e.slide_id]} and {e.path}; name them in a slides CSV"
            )
        seen[e.slide_id] = e.path
    unique = {e.slide_id: e for e in entries}
    return sorted(unique.values(), key=lambda e: e.slide_id)
