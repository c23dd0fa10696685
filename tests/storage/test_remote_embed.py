"""Embed from tile stores in a bucket into a bucket against moto's S3 server; a run killed while
publishing leaves no partial feature file, and the rerun embeds only what is missing.

Reference: the same command on local copies of the same stores.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

import fsspec
import numpy as np
import pytest

from wsi_ssl.cli import main
from wsi_ssl.storage.paths import AnyPath
from wsi_ssl.stores import atomic
from wsi_ssl.stores.features import read_features
from wsi_ssl.stores.tile_store import TileArraysSpec, create_tile_arrays, mark_complete, store_path, write_tiles

RunKilled = Callable[[list[str], Callable[[], None]], int]
SLIDES = ("b1", "b2")


def _tile_stores(folder: Path) -> None:
    """Two small complete stores of 32-px tiles (the tiny encoder's input size)."""
    rng = np.random.default_rng(0)
    for sid in SLIDES:
        tiles = np.repeat(np.repeat(rng.integers(0, 256, (24, 8, 8, 3), dtype=np.uint8), 4, 1), 4, 2)
        coords = np.stack([np.arange(24) * 32, np.zeros(24)], axis=1).astype(np.int64)
        create_tile_arrays(
            store_path(folder, sid),
            TileArraysSpec(24, 32, shard_tiles=8),
            coords,
            np.ones(24),
            {"slide_id": sid, "mpp": 0.5, "tile_size": 32},
        )
        write_tiles(store_path(folder, sid), 0, tiles)
        mark_complete(store_path(folder, sid))


def _die_publishing(name: str) -> Callable[[], None]:
    """Arm a run to be SIGKILLed when it starts publishing ``name`` (its local temporary h5 is
    complete, its upload not begun): the run's last moment before that file would appear."""

    def arm() -> None:
        real = atomic.upload

        def upload(local: Path, remote: AnyPath) -> None:
            if remote.name == name:
                os.kill(os.getpid(), signal.SIGKILL)
            real(local, remote)  # type: ignore[arg-type]

        atomic.upload = upload  # type: ignore[assignment]

    return arm


def test_embed_from_bucket_into_bucket_is_killed_resumes_and_matches_local(
    bucket: str, tiny_encoder: Path, tmp_path: Path, run_killed: RunKilled, monkeypatch: pytest.MonkeyPatch
) -> None:
    local_tiles = tmp_path / "tiles"
    _tile_stores(local_tiles)
    fs = fsspec.filesystem("s3")
    fs.put(str(local_tiles) + "/", f"{bucket}/tiles/", recursive=True)
    fs.invalidate_cache()
    embed = ["embed", "--encoder", str(tiny_encoder), "--device", "cpu", "--workers", "0", "--no-progress"]
    embed += ["--threads", "1"]  # the same arithmetic in every run (and no OpenMP pool across the fork)
    remote = [*embed, "--tiles", f"{bucket}/tiles", "--out", f"{bucket}/features"]

    # The reference first: it also imports what embed needs, so the forked run starts warm.
    assert main([*embed, "--tiles", str(local_tiles), "--out", str(tmp_path / "features")]) == 0

    # Killed as it starts publishing the second slide: the first is complete, the second absent.
    assert run_killed(remote, _die_publishing("b2.h5")) == -signal.SIGKILL
    fs.invalidate_cache()
    listing = sorted(p.rsplit("/", 1)[-1] for p in fs.ls(f"{bucket}/features"))
    assert listing == ["b1.h5", "embed_config.yaml"]  # no partial or temporary object

    # The rerun publishes only the missing slide (one upload), skipping the complete one.
    published: list[str] = []
    real_upload = atomic.upload

    def spy(local: Path, final: AnyPath) -> None:
        published.append(final.name)
        real_upload(local, final)  # type: ignore[arg-type]

    monkeypatch.setattr(atomic, "upload", spy)
    assert main(remote) == 0
    assert [name for name in published if name.endswith(".h5")] == ["b2.h5"]

    for sid in SLIDES:
        got, ref = read_features(f"{bucket}/features/{sid}.h5"), read_features(tmp_path / "features" / f"{sid}.h5")
        np.testing.assert_array_equal(got.features, ref.features)
        np.testing.assert_array_equal(got.coords, ref.coords)
        assert got.attrs["tile_store"] == f"{bucket}/tiles/{sid}.zarr"
    fs.invalidate_cache()
    assert sorted(p.rsplit("/", 1)[-1] for p in fs.ls(f"{bucket}/features")) == ["b1.h5", "b2.h5", "embed_config.yaml"]
