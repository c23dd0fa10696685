"""The zarr shard layout that ``stores/shard_writer.py`` writes by hand is still zarr's.

The tiler bypasses zarr's per-chunk write path and lays shard files out itself (inner chunks back
to back, then an index of little-endian uint64 ``(offset, nbytes)`` pairs, ``2**64-1`` for an
empty chunk, then the index's crc32c), reading zarr's codec classes to decide when it may. zarr
is pinned in pyproject.toml to the minor version this was checked with; before widening the pin,
these tests say whether a new zarr still writes, names and describes shards that way. A change
fails here, loudly, rather than as unreadable tile stores or a silent fall back to the slow path.
"""

from __future__ import annotations

from pathlib import Path

import google_crc32c
import numpy as np
import pytest
import zarr

from wsi_ssl.stores.shard_writer import EMPTY, shard_target, write_shard
from wsi_ssl.stores.tile_store import TileArraysSpec, create_tile_arrays, write_tiles

N_TILES, SHARD, SIZE = 7, 4, 16  # a full shard and a short last one (3 tiles + 1 empty index slot)
CHANGED = f"zarr {zarr.__version__} changed the shard layout that wsi_ssl/stores/shard_writer.py writes by hand"


def parse_shard(blob: bytes, shard_len: int) -> list[bytes | None]:
    """The inner chunks of one shard file, read with the layout the writer assumes (None = empty)."""
    index_nbytes = 16 * shard_len
    index_bytes, crc = blob[-index_nbytes - 4 : -4], blob[-4:]
    assert int.from_bytes(crc, "little") == google_crc32c.value(index_bytes), f"{CHANGED}: index crc32c"
    index = np.frombuffer(index_bytes, dtype="<u8").reshape(shard_len, 2)
    chunks: list[bytes | None] = []
    expected_offset = 0
    for offset, nbytes in index:
        if offset == EMPTY and nbytes == EMPTY:
            chunks.append(None)
            continue
        assert offset == expected_offset, f"{CHANGED}: chunks are no longer back to back from byte 0"
        chunks.append(blob[int(offset) : int(offset + nbytes)])
        expected_offset += int(nbytes)
    assert expected_offset == len(blob) - index_nbytes - 4, f"{CHANGED}: bytes between the chunks and the index"
    return chunks


def _tiles() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (N_TILES, SIZE, SIZE, 3), dtype=np.uint8)


def _store(path: Path) -> Path:
    create_tile_arrays(
        path,
        TileArraysSpec(N_TILES, SIZE, shard_tiles=SHARD, codec="png"),
        np.zeros((N_TILES, 2)),
        np.ones(N_TILES),
        {},
    )
    return path


def test_metadata_still_describes_the_layout_the_writer_takes_its_fast_path_for(tmp_path: Path) -> None:
    store = _store(tmp_path / "s.zarr")
    meta = zarr.open_array(str(store / "tiles")).metadata.to_dict()
    (sharding,) = meta["codecs"]
    assert sharding["name"] == "sharding_indexed", CHANGED
    config = sharding["configuration"]
    assert list(config["chunk_shape"]) == [1, SIZE, SIZE, 3], CHANGED
    assert [c["name"] for c in config["index_codecs"]] == ["bytes", "crc32c"], CHANGED
    assert config["index_codecs"][0].get("configuration", {}).get("endian", "little") == "little", CHANGED
    assert config["index_location"] == "end", CHANGED
    target = shard_target(store)
    assert target is not None, f"{CHANGED}: the writer no longer recognises the store and falls back to zarr"
    assert [Path(p).relative_to(store / "tiles").as_posix() for p in target.paths] == ["c/0/0/0/0", "c/1/0/0/0"], (
        f"{CHANGED}: shard file names"
    )


@pytest.mark.parametrize("writer", ["zarr", "shard_writer"])
def test_shard_files_have_the_assumed_layout_and_read_back_through_zarr(tmp_path: Path, writer: str) -> None:
    """zarr's own shards parse with the writer's layout, and the writer's shards read back through zarr."""
    tiles = _tiles()
    store = _store(tmp_path / f"{writer}.zarr")
    for start in range(0, N_TILES, SHARD):
        (write_tiles if writer == "zarr" else write_shard)(store, start, tiles[start : start + SHARD])
    for shard, first in enumerate(range(0, N_TILES, SHARD)):
        chunks = parse_shard((store / "tiles" / "c" / str(shard) / "0" / "0" / "0").read_bytes(), SHARD)
        want = min(SHARD, N_TILES - first)
        assert all(c for c in chunks[:want]) and all(c is None for c in chunks[want:]), f"{CHANGED}: empty slots"
        assert [bytes(c[:8]) for c in chunks[:want] if c] == [b"\x89PNG\r\n\x1a\n"] * want, f"{CHANGED}: inner chunks"
    assert np.array_equal(zarr.open_array(str(store / "tiles"), mode="r")[:], tiles), f"{CHANGED}: read back"
