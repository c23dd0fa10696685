"""`wsi-ssl info`, slide discovery, and sharding of a cohort over an array of jobs."""

from __future__ import annotations

from pathlib import Path

import pytest

from wsi_ssl.cli import main
from wsi_ssl.shard import Shard, parse_shard
from wsi_ssl.slide.discover import SlideListError, discover_slides
from wsi_ssl.stores.tile_store import find_tile_stores


def test_info_on_real_svs(shared_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(shared_data / "wsi" / "CMU-1-Small-Region.svs")]) == 0
    out = capsys.readouterr().out
    for text in ("aperio", "2220 x 2967", "0.4990 um/px", "20.0", "label, macro, thumbnail"):
        assert text in out


def test_info_on_dicom_folder_and_json(shared_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    assert main(["info", str(shared_data / "wsi" / "dicom_cmu1_small_region_12levels"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["vendor"] == "dicom" and len(info["levels"]) == 12 and info["color_fix"] == "ycbcr->rgb"


def test_info_on_garbage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.svs"
    bad.write_bytes(b"\x00" * 100)
    assert main(["info", str(bad)]) == 1
    assert "not a TIFF" in capsys.readouterr().err


def test_discovery(shared_data: Path, tmp_path: Path) -> None:
    found = {e.slide_id: e for e in discover_slides([shared_data / "wsi"])}
    assert set(found) == {"CMU-1-Small-Region", "openslide-python_small", "dicom_cmu1_small_region_12levels"}
    assert found["dicom_cmu1_small_region_12levels"].path.suffix == ".dcm"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "x.svs").write_bytes(b"1")
    (tmp_path / "b" / "x.svs").write_bytes(b"2")
    with pytest.raises(SlideListError, match="share the id 'x'"):
        discover_slides([tmp_path])


def test_shard_parsing_and_partition() -> None:
    assert parse_shard("1/3") == Shard(1, 3)
    assert parse_shard(
        None, {"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "1"}
    ) == Shard(1, 4)
    assert parse_shard(None, {}) == Shard(0, 1)
    with pytest.raises(ValueError):
        parse_shard("2/2")
    items = [f"s{i}" for i in range(10)]
    parts = [Shard(i, 3).select(items, key=str) for i in range(3)]
    assert sorted(sum(parts, [])) == sorted(items) and not set(parts[0]) & set(parts[1])


def test_sharded_tiling_covers_the_cohort_once(slides_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    for i in range(2):
        assert main(
            ["tile", str(slides_dir), "--out", str(out), "--shard", f"{i}/2", "--no-progress", "--workers", "1"]
        ) in (0, 1)
    assert sorted(p.stem for p in find_tile_stores(out)) == ["pen", "s025", "s050"]
    assert (out / "manifest.shard-0-of-2.csv").is_file() and (out / "manifest.shard-1-of-2.csv").is_file()
