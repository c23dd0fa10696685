"""Bad input fails one slide with a clear message, never the run, and never loses finished work."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import tifffile

from wsi_ssl.cli import main
from wsi_ssl.stores.tile_store import TileStore, is_complete
from wsi_ssl.synthetic import write_slide


def rows(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "manifest.csv") as f:
        return {r["slide_id"]: r for r in csv.DictReader(f)}


@pytest.fixture()
def bad_dir(tmp_path: Path, one_slide: Path) -> Path:
    d = one_slide.parent
    (d / "corrupt.svs").write_bytes(b"not a slide at all" * 100)
    data = d.parent / "full.tiff"
    write_slide(data, width=1536, height=1024, mpp=0.5, levels=2, seed=8)
    raw = data.read_bytes()
    (d / "truncated.tiff").write_bytes(raw[: len(raw) // 3])
    data.unlink()
    write_slide(d / "nompp.tiff", width=1536, height=1024, levels=2, seed=9, write_mpp=False)
    blank = np.full((1024, 1536, 3), 243, np.uint8)
    tifffile.imwrite(
        d / "blank.tiff",
        blank,
        tile=(256, 256),
        resolution=(1e4 / 0.5, 1e4 / 0.5),
        resolutionunit="CENTIMETER",
        photometric="rgb",
    )
    return d


def test_each_bad_slide_fails_alone(bad_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code = main(["tile", str(bad_dir), "--out", str(out), "--no-progress", "--workers", "2"])
    assert code == 1
    r = rows(out)
    assert r["one"]["status"] == "done" and is_complete(out / "one.zarr")
    assert r["corrupt"]["status"] == "failed" and "not a TIFF" in r["corrupt"]["error"]
    assert r["truncated"]["status"] == "failed" and "truncated or corrupt (size" in r["truncated"]["error"]
    assert not any(r[s]["error"].split(":")[0].endswith("Error") for s in ("corrupt", "truncated", "nompp", "blank"))
    assert r["nompp"]["status"] == "failed" and "--mpp-override" in r["nompp"]["error"]
    assert r["blank"]["status"] == "failed" and "no tissue" in r["blank"]["error"]
    err = capsys.readouterr().err
    for sid in ("corrupt", "truncated", "nompp", "blank"):
        assert f"failed: {sid}" in err
    # Nothing half-written is left visible.
    assert sorted(p.name for p in out.glob("*.zarr")) == ["one.zarr"]
    assert not list(out.glob(".*partial*"))


def test_mpp_override_rescues_a_slide_without_mpp(bad_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert (
        main(
            [
                "tile",
                str(bad_dir / "nompp.tiff"),
                "--out",
                str(out),
                "--mpp-override",
                "0.5",
                "--no-progress",
                "--workers",
                "1",
            ]
        )
        == 0
    )
    s = TileStore(out / "nompp.zarr")
    assert s.attrs["mpp_source"] == "override" and s.attrs["slide_mpp"] == 0.5


def test_slides_csv_gives_ids_and_per_slide_mpp(bad_dir: Path, tmp_path: Path) -> None:
    table = tmp_path / "slides.csv"
    table.write_text(f"slide_id,path,mpp\npatient7-A,{bad_dir / 'nompp.tiff'},0.5\n")
    out = tmp_path / "out"
    assert main(["tile", str(table), "--out", str(out), "--no-progress", "--workers", "1"]) == 0
    assert TileStore(out / "patient7-A.zarr").slide_id == "patient7-A"


def test_unwritable_output_is_a_clear_error(
    one_slide: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert main(["tile", str(one_slide), "--out", str(blocker / "out"), "--no-progress"]) == 1
    assert "not writable" in capsys.readouterr().err


def test_missing_input_and_bad_config_values(
    one_slide: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tile", str(tmp_path / "nope.svs"), "--out", str(tmp_path / "o")]) == 2
    assert "input not found" in capsys.readouterr().err
    assert main(["tile", str(one_slide), "--out", str(tmp_path / "o"), "--set", "tissue.mask_mpp=-1"]) == 2
    assert "tissue.mask_mpp" in capsys.readouterr().err
    assert main(["tile", str(one_slide), "--out", str(tmp_path / "o"), "--min-tissue", "1.5"]) == 2
    assert "min_tissue" in capsys.readouterr().err
    assert main(["tile", str(one_slide), "--out", str(tmp_path / "o"), "--set", "tissue.colour=red"]) == 2
    assert "tissue.colour" in capsys.readouterr().err
    assert main(["tile", str(one_slide), "--out", str(tmp_path / "o"), "--overlap", "300"]) == 2
    assert "overlap" in capsys.readouterr().err
    assert main(["tile", str(one_slide), "--out", str(tmp_path / "o"), "--shard", "3/2"]) == 2
    assert "--shard" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # nothing started before the config was valid
