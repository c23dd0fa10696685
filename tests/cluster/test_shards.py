"""Job-array shards: the index from SLURM or a Kubernetes Indexed Job, and merged tiling manifests."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from wsi_ssl.cli import main
from wsi_ssl.shard import Shard, parse_shard
from wsi_ssl.synthetic import write_slide
from wsi_ssl.tiling.manifest import read_merged_manifest


@pytest.mark.parametrize(
    ("text", "env", "want"),
    [
        ("2/5", {"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "3"}, Shard(2, 5)),  # given wins
        (None, {"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "1"}, Shard(3, 4)),
        (
            None,
            {
                "SLURM_ARRAY_TASK_ID": "6",
                "SLURM_ARRAY_TASK_COUNT": "4",
                "SLURM_ARRAY_TASK_MIN": "0",
                "SLURM_ARRAY_TASK_STEP": "2",
            },
            Shard(3, 4),
        ),  # --array=0-6:2
        ("auto", {"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "2", "SLURM_ARRAY_TASK_MIN": "0"}, Shard(1, 2)),
        ("auto/3", {"JOB_COMPLETION_INDEX": "2"}, Shard(2, 3)),
        (None, {}, Shard(0, 1)),
    ],
)
def test_the_index_comes_from_the_flag_or_the_scheduler(text: str | None, env: dict[str, str], want: Shard) -> None:
    assert parse_shard(text, env) == want


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        (None, {"JOB_COMPLETION_INDEX": "0"}, "pass --shard auto/N"),  # every pod would do everything
        ("auto", {"JOB_COMPLETION_INDEX": "0"}, "does not say how many completions"),
        ("auto/2", {"JOB_COMPLETION_INDEX": "2"}, "outside 0..1"),
        ("auto/4", {}, "no job-array index"),
        ("auto/4", {"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "2"}, "has 2 tasks, not 4"),
        (None, {"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_COUNT": "2", "SLURM_ARRAY_TASK_MIN": "1"}, "evenly"),
        ("3/3", {}, "0 <= I < N"),
        ("half", {}, "expected I/N"),
    ],
)
def test_impossible_shards_are_named(text: str | None, env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_shard(text, env)


def _write(path: Path, rows: list[tuple[str, str]], mtime: int) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["slide_id", "path", "status", "n_tiles", "mpp", "seconds", "error"])
        w.writerows([(sid, f"/s/{sid}.svs", status, 1, 0.5, 0, "") for sid, status in rows])
    os.utime(path, ns=(mtime, mtime))


def test_the_newest_manifest_wins_per_slide_and_missing_shards_are_named(tmp_path: Path) -> None:
    _write(tmp_path / "manifest.shard-0-of-3.csv", [("a", "failed"), ("c", "done")], 1_000)
    _write(tmp_path / "manifest.shard-1-of-3.csv", [("b", "done")], 2_000)
    _write(tmp_path / "manifest.csv", [("a", "done")], 3_000)  # an unsharded rerun of 'a' came later
    _write(tmp_path / "manifest-old.csv", [("z", "done")], 500)  # not a manifest name: ignored
    merged = read_merged_manifest(tmp_path)
    assert {sid: r["status"] for sid, r in merged.rows.items()} == {"a": "done", "b": "done", "c": "done"}
    assert merged.missing == ["2/3"]
    assert [p.name for p in merged.files] == ["manifest.shard-0-of-3.csv", "manifest.shard-1-of-3.csv", "manifest.csv"]


def test_sharded_tiling_then_merge_manifests(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    slides, out = tmp_path / "slides", tmp_path / "tiles"
    for i in range(3):
        write_slide(slides / f"s{i}.tiff", width=1024, height=768, mpp=0.5, levels=2, seed=i)
    base = [
        "tile",
        str(slides),
        "--out",
        str(out),
        "--no-progress",
        "--workers",
        "1",
        "--no-qc",
        "--mpp",
        "2.0",
        "--tile-size",
        "64",
    ]
    assert main([*base, "--shard", "0/2"]) == 0
    assert main(["tile", "--merge-manifests", str(out)]) == 1  # shard 1/2 has not run: said, exit 1
    assert "no manifest yet from shard(s) 1/2" in capsys.readouterr().err
    assert main([*base, "--shard", "1/2"]) == 0
    assert main(["tile", "--merge-manifests", str(out)]) == 0
    assert "3 slides (3 done)" in capsys.readouterr().out
    with open(out / "manifest.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["slide_id"] for r in rows] == ["s0", "s1", "s2"] and all(int(r["n_tiles"]) > 0 for r in rows)
    assert main(["tile", "--merge-manifests", str(tmp_path / "nothing")]) == 2
    assert main(["tile", "--out", str(out)]) == 2  # no slides and no merge: named
    assert "give SLIDES" in capsys.readouterr().err
