"""DICOM files become slides by the UIDs in their headers, wherever they sit, and never hide the
other slides of a folder. Built from the shared DICOM slide plus a second series (fresh UIDs)."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from slide_files import DICOM_NAME, copy_series

from wsi_ssl.cli import main
from wsi_ssl.slide.discover import discover_slides
from wsi_ssl.slide.readers import SlideRefusedError, open_slide


def series_uid(path: Path) -> str:
    return str(pydicom.dcmread(path, stop_before_pixels=True).SeriesInstanceUID)


@pytest.fixture(scope="module")
def flat(dicom_src: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One flat folder: the shared series (files a-*) and a second series (files b-*)."""
    d = tmp_path_factory.mktemp("flat")
    copy_series(dicom_src, d, "a-", new_uids=False)
    copy_series(dicom_src, d, "b-", new_uids=True)
    return d


def test_a_flat_folder_with_two_series_is_two_slides(flat: Path, dicom_src: Path) -> None:
    entries = discover_slides([flat])
    assert len(entries) == 2
    uids = {series_uid(e.path) for e in entries}
    assert {e.slide_id for e in entries} == uids  # no label: the SeriesInstanceUID names the slide
    assert series_uid(next(dicom_src.glob("*.dcm"))) in uids
    for e in entries:
        assert e.path.name.endswith("level-0-frames-0-30.dcm")  # the largest level's file
        with open_slide(e.path) as slide:  # each opens its own series only
            assert slide.properties.get("dicom.SeriesInstanceUID") == e.slide_id
            assert len(slide.levels) == 12 and slide.dimensions == (2220, 2967)


def test_a_dcm_file_named_on_its_own_is_named_by_its_series(flat: Path) -> None:
    b = next(iter(sorted(flat.glob("b-level-0-*.dcm"))))
    (entry,) = discover_slides([b])
    assert entry.slide_id == series_uid(b) and entry.path == b  # not the file name "b-level-0-frames-0-30"
    labelled = flat.parent / "labelled.dcm"
    ds = pydicom.dcmread(b)
    ds.ContainerIdentifier = "S-2026-0042"
    ds.save_as(labelled)
    assert [e.slide_id for e in discover_slides([labelled])] == ["S-2026-0042"]  # the scanner's label


def test_a_series_over_sub_folders_is_one_slide(dicom_src: Path, tmp_path: Path, shared_data: Path) -> None:
    root = tmp_path / "case7"
    for f in sorted(dicom_src.glob("*.dcm")):
        level = int(f.name.split("-")[1])
        dest = root / ("high" if level < 2 else "low")
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, dest / f.name)
    (entry,) = discover_slides([tmp_path])
    assert entry.slide_id == "case7" and entry.path == root
    with open_slide(entry.path) as slide, open_slide(shared_data / "wsi" / "CMU-1-Small-Region.svs") as svs:
        assert slide.backend == "wsidicom" and slide.dimensions == (2220, 2967)
        assert slide.mpp == pytest.approx(0.499) and slide.ycbcr_fix  # same colour fix as through OpenSlide
        got = slide.read_region(600, 800, 0, 256, 256).astype(float)
        ref = svs.read_region(600, 800, 0, 256, 256).astype(float)
        assert np.abs(got - ref).mean() < 3  # the README's SVS-vs-DICOM error is about 1.5


def test_one_dcm_beside_svs_files_hides_nothing(dicom_src: Path, shared_data: Path, tmp_path: Path) -> None:
    """The issue's case: a single-file DICOM WSI next to SVS slides; every slide is found and tiled."""
    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(shared_data / "wsi" / "CMU-1-Small-Region.svs", folder)
    single = folder / "slide-0.dcm"
    shutil.copy(dicom_src / "level-0-frames-0-30.dcm", single)
    entries = {e.slide_id: e for e in discover_slides([folder])}
    uid = series_uid(single)
    assert set(entries) == {"CMU-1-Small-Region", uid} and entries[uid].path == single
    out = tmp_path / "out"
    code = main(["tile", str(folder), "--out", str(out), "--no-progress", "--workers", "1", "--no-qc"])
    assert code == 0
    with open(out / "manifest.csv") as f:
        rows = {r["slide_id"]: r for r in csv.DictReader(f)}
    assert rows[uid]["status"] == rows["CMU-1-Small-Region"]["status"] == "done"
    assert rows[uid]["n_tiles"] == rows["CMU-1-Small-Region"]["n_tiles"]  # same region, same grid


def test_csv_names_a_series_folder_and_non_wsi_dicom_is_explained(flat: Path, tmp_path: Path) -> None:
    sub = tmp_path / "only_b"
    sub.mkdir()
    for f in flat.glob("b-*.dcm"):
        shutil.copy(f, sub / f.name)
    table = tmp_path / "slides.csv"
    table.write_text(f"slide_id,path\npatient-12,{sub}\n")
    (entry,) = discover_slides([table])
    assert entry.slide_id == "patient-12" and entry.path.suffix == ".dcm"
    ct = tmp_path / "ct.dcm"
    ds = pydicom.dcmread(next(sub.glob("*level-11*.dcm")))
    ds.SOPClassUID = pydicom.uid.CTImageStorage
    ds.save_as(ct)
    with pytest.raises(SlideRefusedError, match="a DICOM CT Image Storage file, not a whole-slide image"):
        open_slide(ct)
    assert [e.slide_id for e in discover_slides([tmp_path / "ct.dcm"])] == ["ct"]


def test_dry_run_lists_slides_readers_and_failures(
    flat: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "cohort"
    shutil.copytree(flat, folder)
    (folder / "scan.isyntax").write_bytes(b"\0" * 64)
    assert main(["tile", str(folder), "--dry-run"]) == 1
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if ln.startswith(("1.", "scan"))]
    assert len(lines) == 3
    assert sum("openslide  0.499 (metadata)  2220x2967" in ln for ln in lines) == 2
    assert "would fail: scan: scan.isyntax: Philips iSyntax files are not supported" in out
    assert "dry run: 3 slides found, 2 would tile, 1 would fail" in out
    assert not list(folder.glob("*.zarr")) and DICOM_NAME  # nothing written


def test_fluorescence_dicom_is_refused_with_its_optical_paths(dicom_src: Path, tmp_path: Path) -> None:
    """A DICOM WSI of grey frames with several optical paths (one per fluorophore), from headers."""
    from pydicom.dataset import Dataset

    ds = pydicom.dcmread(dicom_src / "level-11-frames-0-1.dcm")
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    paths = []
    for i, name in enumerate(("DAPI", "FITC", "Cy3", "Cy5")):
        item = Dataset()
        item.OpticalPathIdentifier, item.OpticalPathDescription = str(i), name
        paths.append(item)
    ds.OpticalPathSequence = paths
    path = tmp_path / "fluo.dcm"
    ds.save_as(path)
    with pytest.raises(SlideRefusedError, match=r"with 4 channels \(DAPI, FITC, Cy3, Cy5\): this pipeline tiles"):
        open_slide(path)
