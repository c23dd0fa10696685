"""Writers of generated slide files for every format and failure the readers face (small)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import tifffile

DICOM_NAME = "dicom_cmu1_small_region_12levels"


def he_image(height: int = 1024, width: int = 1536) -> np.ndarray:
    """Glass with a pink-purple 'tissue' block and texture: enough for tissue detection."""
    rng = np.random.default_rng(0)
    img = np.full((height, width, 3), 240, np.uint8)
    y0, y1, x0, x1 = height // 5, 4 * height // 5, width // 5, 4 * width // 5
    block = np.array([200, 120, 180], np.int16) + rng.integers(-25, 25, (y1 - y0, x1 - x0, 1))
    img[y0:y1, x0:x1] = np.clip(block, 0, 255).astype(np.uint8)
    return img


def write_ome_tiff(path: Path, img: np.ndarray, mpp: float = 0.5) -> None:
    """A brightfield pyramidal OME-TIFF (levels in SubIFDs, as bfconvert/QuPath write them)."""
    meta = {"axes": "YXS", "PhysicalSizeX": mpp, "PhysicalSizeY": mpp}
    with tifffile.TiffWriter(path, bigtiff=True) as tw:
        tw.write(img, subifds=2, tile=(256, 256), photometric="rgb", compression="zlib", metadata=meta)
        for ds in (2, 4):
            tw.write(img[::ds, ::ds], subfiletype=1, tile=(256, 256), photometric="rgb", compression="zlib")


def write_fluorescence_ome_tiff(path: Path) -> None:
    data = np.random.default_rng(1).integers(0, 255, (5, 512, 512), dtype=np.uint8)
    names = ["DAPI", "CD3", "CD8", "PanCK", "FOXP3"]
    meta = {"axes": "CYX", "Channel": {"Name": names}, "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5}
    tifffile.imwrite(path, data, photometric="minisblack", tile=(256, 256), metadata=meta)


def write_qptiff(path: Path, names: tuple[str, ...] = ("DAPI", "CD8", "PD-L1", "CK", "Autofluorescence")) -> None:
    """A multiplex QPTIFF as Akoya/PerkinElmer write it: one grey page per channel, each with a
    PerkinElmer-QPI XML description naming its biomarker."""
    rng = np.random.default_rng(2)
    with tifffile.TiffWriter(path) as tw:
        for name in names:
            desc = (
                '<?xml version="1.0" encoding="utf-8"?><PerkinElmer-QPI-ImageDescription>'
                f"<DescriptionVersion>2</DescriptionVersion><ImageType>FullResolution</ImageType>"
                f"<Name>{name}</Name></PerkinElmer-QPI-ImageDescription>"
            )
            page = rng.integers(0, 60, (512, 512), dtype=np.uint8)
            tw.write(page, photometric="minisblack", tile=(256, 256), description=desc, software="PerkinElmer-QPI")


def write_czi(path: Path, img: np.ndarray | None = None, channels: tuple[str, ...] = ()) -> None:
    """A CZI through pylibCZIrw's writer: brightfield BGR in one channel, or grey channels."""
    from pylibCZIrw import czi as pyczi

    with pyczi.create_czi(str(path), exist_ok=True) as w:
        if img is not None:
            w.write(data=np.ascontiguousarray(img[..., ::-1]), plane={"C": 0, "T": 0, "Z": 0}, location=(0, 0))
        for c, _ in enumerate(channels):
            grey = np.random.default_rng(c).integers(0, 255, (256, 256), dtype=np.uint8)
            w.write(data=grey, plane={"C": c, "T": 0, "Z": 0}, location=(0, 0))
        w.write_metadata(
            document_name=path.stem, channel_names=dict(enumerate(channels)) or None, scale_x=0.5e-6, scale_y=0.5e-6
        )


def write_ome_zarr(path: Path, img: np.ndarray, mpp: float = 0.5, channels: int = 3) -> None:
    """An NGFF 0.4 OME-Zarr image (zarr v2): axes c, y, x, two levels, micrometre scales."""
    import zarr

    root = zarr.open_group(str(path), mode="w", zarr_format=2)
    data = np.moveaxis(img, 2, 0) if channels == 3 else np.zeros((channels, *img.shape[:2]), np.uint8)
    datasets = []
    for i, ds in enumerate((1, 2)):
        level = np.ascontiguousarray(data[:, ::ds, ::ds])
        arr = root.create_array(str(i), shape=level.shape, chunks=(channels, 256, 256), dtype="uint8")
        arr[...] = level
        datasets.append(
            {"path": str(i), "coordinateTransformations": [{"type": "scale", "scale": [1.0, mpp * ds, mpp * ds]}]}
        )
    axes = [
        {"name": "c", "type": "channel"},
        {"name": "y", "type": "space", "unit": "micrometer"},
        {"name": "x", "type": "space", "unit": "micrometer"},
    ]
    root.attrs["multiscales"] = [{"version": "0.4", "axes": axes, "datasets": datasets}]


def copy_series(src: Path, dst: Path, prefix: str, new_uids: bool) -> list[Path]:
    """Copy a DICOM series into ``dst`` (files prefixed), optionally as a new series (fresh UIDs)."""
    import pydicom
    from pydicom.uid import generate_uid

    dst.mkdir(parents=True, exist_ok=True)
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    out = []
    for f in sorted(src.glob("*.dcm")):
        target = dst / f"{prefix}{f.name}"
        if new_uids:
            ds = pydicom.dcmread(f)
            ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
            ds.SOPInstanceUID = generate_uid()
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.save_as(target)
        else:
            shutil.copy(f, target)
        out.append(target)
    return out
