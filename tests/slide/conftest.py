"""Generated files for every format and failure the readers face (written once per session)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from slide_files import (
    DICOM_NAME,
    he_image,
    write_czi,
    write_fluorescence_ome_tiff,
    write_ome_tiff,
    write_ome_zarr,
    write_qptiff,
)

from wsi_ssl.synthetic import write_slide


@pytest.fixture(scope="session")
def dicom_src(shared_data: Path) -> Path:
    src = shared_data / "wsi" / DICOM_NAME
    if not src.is_dir():
        pytest.skip(f"{src} not found")
    return src


@pytest.fixture(scope="session")
def he_truth() -> np.ndarray:
    """The pixels every generated brightfield file holds."""
    return he_image()


@pytest.fixture(scope="session")
def formats_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("formats")
    img = he_image()
    write_ome_tiff(d / "brightfield.ome.tif", img)
    write_fluorescence_ome_tiff(d / "fluo.ome.tif")
    write_qptiff(d / "multiplex.qptiff")
    write_czi(d / "czi_bf.czi", img)
    write_czi(d / "czi_fluo.czi", channels=("DAPI", "FITC", "TRITC", "Cy5"))
    write_ome_zarr(d / "zarr_bf.ome.zarr", img)
    write_ome_zarr(d / "zarr_fluo.ome.zarr", img, channels=6)
    write_slide(d / "plain.tiff", width=1536, height=1024, mpp=0.5, levels=2, seed=4)
    return d
