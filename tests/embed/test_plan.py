"""Which slides a job and a rank embed, and which are refused, decided from the files alone."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from wsi_ssl.embed.plan import SlideJob, assign_to_rank, mpp_mismatch, plan_slides
from wsi_ssl.shard import Shard
from wsi_ssl.stores.features import write_features


def job(name: str, n: int, tile_size: int = 224) -> SlideJob:
    return SlideJob(name, Path(f"{name}.zarr"), Path(f"{name}.h5"), n, tile_size, 0.5)


def test_ranks_get_disjoint_covering_balanced_sets() -> None:
    rng = np.random.default_rng(0)
    jobs = [job(f"s{i:02d}", int(n)) for i, n in enumerate(rng.integers(10, 5000, size=37))]
    for world in (1, 2, 3, 8):
        parts = [assign_to_rank(jobs, r, world) for r in range(world)]
        names = [j.slide_id for part in parts for j in part]
        assert sorted(names) == sorted(j.slide_id for j in jobs) and len(set(names)) == len(names)
        loads = [sum(j.n_tiles for j in part) for part in parts]
        assert max(loads) - min(loads) <= max(j.n_tiles for j in jobs)  # greedy LPT bound
        assert parts == [assign_to_rank(list(reversed(jobs)), r, world) for r in range(world)]  # order-free


def test_mpp_tolerance_is_relative_and_names_both_mpps() -> None:
    assert mpp_mismatch(0.55, 0.5, 0.10) is None
    assert mpp_mismatch(0.45, 0.5, 0.10) is None
    msg = mpp_mismatch(0.56, 0.5, 0.10)
    assert msg is not None and "0.56 um/px" in msg and "0.5 um/px" in msg and "12%" in msg
    assert mpp_mismatch(2.0, None, 0.10) is None  # encoder MPP unknown: cannot check


def test_job_shards_partition_the_stores(store_factory: Callable[..., Any], tmp_path: Path) -> None:
    for i in range(5):
        store_factory(f"s{i}", 1)
    seen: list[str] = []
    for i in range(3):
        plan = plan_slides(
            tmp_path / "tiles",
            tmp_path / "out",
            encoder_mpp=0.5,
            encoder_sha256="x",
            mpp_tolerance=0.1,
            shard=Shard(i, 3),
        )
        seen += [j.slide_id for j in plan.todo]
    assert sorted(seen) == [f"s{i}" for i in range(5)]


def test_a_file_from_another_encoder_is_refused_not_skipped(store_factory: Callable[..., Any], tmp_path: Path) -> None:
    store_factory("mine", 2)
    store_factory("theirs", 2)
    out = tmp_path / "out"
    write_features(out / "mine.h5", np.zeros((2, 4)), np.zeros((2, 2)), {"encoder_sha256": "aaa"})
    write_features(out / "theirs.h5", np.zeros((2, 4)), np.zeros((2, 2)), {"encoder_sha256": "bbb"})
    plan = plan_slides(
        tmp_path / "tiles", out, encoder_mpp=0.5, encoder_sha256="aaa", mpp_tolerance=0.1, shard=Shard(0, 1)
    )
    assert plan.skipped == ["mine"] and not plan.todo
    assert "another encoder" in plan.failed["theirs"]


def test_missing_tiles_folder_is_a_clear_error(tmp_path: Path) -> None:
    from wsi_ssl.stores.tile_store import TileStoreError

    with pytest.raises(TileStoreError, match="not a folder of tile stores"):
        plan_slides(
            tmp_path / "nope",
            tmp_path / "out",
            encoder_mpp=None,
            encoder_sha256="",
            mpp_tolerance=0.1,
            shard=Shard(0, 1),
        )


def test_batches_pack_across_slides_in_order() -> None:
    from wsi_ssl.embed.dataset import pack_batches

    jobs = [job("a", 21), job("b", 0), job("c", 5), job("d", 14)]
    batches = pack_batches(jobs, 8)
    assert [sum(s.stop - s.start for s in b) for b in batches] == [8, 8, 8, 8, 8]
    rows = [(s.job, t) for b in batches for s in b for t in range(s.start, s.stop)]
    assert rows == [(j, t) for j, jb in enumerate(jobs) for t in range(jb.n_tiles)]
    assert [(s.job, s.start, s.stop) for s in batches[2]] == [(0, 16, 21), (2, 0, 3)]
    # A change of tile size ends the batch early, so every batch stacks into one tensor.
    mixed = pack_batches([job("a", 5), job("b", 5, tile_size=256), job("c", 2, tile_size=256)], 8)
    assert [[(s.job, s.start, s.stop) for s in b] for b in mixed] == [[(0, 0, 5)], [(1, 0, 5), (2, 0, 2)]]
