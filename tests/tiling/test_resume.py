"""Resumable and safe: skip complete stores, redo incomplete ones, survive a kill at any moment."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import zarr

from wsi_ssl.cli import main
from wsi_ssl.stores.tile_store import TileStore, find_tile_stores, is_complete
from wsi_ssl.synthetic import write_slide


def status(out: Path) -> dict[str, str]:
    with open(out / "manifest.csv") as f:
        return {r["slide_id"]: r["status"] for r in csv.DictReader(f)}


def test_rerun_skips_complete_and_redoes_incomplete(slides_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["tile", str(slides_dir), "--out", str(out), "--no-progress", "--workers", "1"]
    assert main(args) == 0
    first = {p.stem: TileStore(p).tiles() for p in find_tile_stores(out)}
    assert main(args) == 0
    assert set(status(out).values()) == {"skipped"}
    zarr.open_group(str(out / "pen.zarr"), mode="r+").attrs["complete"] = False  # as if interrupted
    assert main(args) == 0
    st = status(out)
    assert st["pen"] == "done" and st["s050"] == "skipped"
    assert np.array_equal(TileStore(out / "pen.zarr").tiles(), first["pen"])


def test_kill_at_any_moment_then_rerun(tmp_path: Path) -> None:
    src = tmp_path / "slides"
    for i in range(3):
        write_slide(src / f"k{i}.tiff", width=2560, height=2048, mpp=0.5, levels=2, seed=20 + i)
    ref_out = tmp_path / "ref"
    assert main(["tile", str(src), "--out", str(ref_out), "--no-progress", "--workers", "1"]) == 0
    reference = {p.stem: TileStore(p).tiles() for p in find_tile_stores(ref_out)}
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "wsi_ssl.cli", "tile", str(src), "--out", str(out), "--no-progress", "--workers", "2"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for delay in (1.5, 3.0, 4.5):  # kill during start-up, planning and shard writing
        proc = subprocess.Popen(
            cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        time.sleep(delay)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        for p in out.glob("*.zarr"):  # whatever is visible is complete
            assert is_complete(p)
    assert subprocess.run(cmd, env=env, capture_output=True).returncode == 0
    stores = {p.stem: TileStore(p) for p in find_tile_stores(out)}
    assert set(stores) == set(reference)
    for sid, s in stores.items():
        assert np.array_equal(s.tiles(), reference[sid])
    assert not list(out.glob(".*partial*"))
