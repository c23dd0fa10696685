"""Write whole shards of the tile array in one go, bypassing zarr's per-chunk machinery.

Measured here (benchmarks/tile.py, docs/benchmarks.md, tiling throughput): zarr 3.1's sharded write path
costs about 1.6 ms per 224-px chunk on top of the codec itself (asyncio task, buffer objects and
index bookkeeping per chunk), five times the 0.3 ms a libjpeg-turbo encode takes. The tiler writes
tens of thousands of tiles per slide, so it encodes the tiles itself and lays out each shard file
exactly as zarr's ShardingCodec does (the v3 sharding spec: inner chunks back to back, then the
index of (offset, nbytes) uint64 pairs, little-endian, followed by its crc32c). Anything else (a
remote store, other index codecs) falls back to zarr's own writer; the tests read every layout
back through plain zarr. A store on object storage (zarr's FsspecStore) gets the same fast path:
each shard is one PUT of the whole file, which the store makes visible whole or not at all.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import google_crc32c
import numpy as np
import zarr
from zarr.codecs import BytesCodec, Crc32cCodec, ShardingCodec
from zarr.storage import FsspecStore, LocalStore

from wsi_ssl.storage.paths import AnyPath, as_path
from wsi_ssl.stores.codecs import _ImageCodec

EMPTY = np.uint64(2**64 - 1)
_DIRECT = (LocalStore, FsspecStore)  # stores whose shard files this module writes itself


@lru_cache(maxsize=8)
def _layout(array_path: str) -> tuple[zarr.Array[Any], _ImageCodec | None, int]:
    arr = zarr.open_array(array_path, mode="r+")
    codecs: tuple[Any, ...] = tuple(getattr(arr.metadata, "codecs", ()))  # zarr v3 only; a v2 array: no fast path
    fast: _ImageCodec | None = None
    if len(codecs) == 1 and isinstance(codecs[0], ShardingCodec) and isinstance(arr.store_path.store, _DIRECT):
        sc = codecs[0]
        inner, index = sc.codecs, sc.index_codecs
        index_ok = (
            len(index) == 2
            and isinstance(index[0], BytesCodec)
            and isinstance(index[1], Crc32cCodec)
            and (index[0].endian is None or index[0].endian.value == "little")
            and sc.index_location.value == "end"
        )
        if index_ok and len(inner) == 1 and isinstance(inner[0], _ImageCodec):
            fast = inner[0]
    shard_len = int(arr.shards[0]) if arr.shards else 1
    return arr, fast, shard_len


def shard_bytes(encoded: list[bytes], shard_len: int) -> bytes:
    """One shard file: chunks, then the (offset, nbytes) index with its crc32c."""
    index = np.full((shard_len, 2), EMPTY, dtype="<u8")
    offset = 0
    for i, blob in enumerate(encoded):
        index[i] = (offset, len(blob))
        offset += len(blob)
    index_bytes = index.tobytes()
    crc = np.uint32(google_crc32c.value(index_bytes)).astype("<u4").tobytes()
    return b"".join([*encoded, index_bytes, crc])


@dataclass(frozen=True)
class ShardTarget:
    """Where and how to write whole shards of one store's ``tiles``, worked out once from its
    metadata, so a process that writes shards needs no zarr at all (the tiler's workers)."""

    codec: _ImageCodec
    shard_len: int
    n_tiles: int
    paths: tuple[str, ...]  # the file of each shard, by shard index

    def write(self, start: int, encoded: list[bytes]) -> None:
        """Write already-encoded tiles (``codec.encode_image`` of each) as one whole shard."""
        n = len(encoded)
        if start % self.shard_len or not (n == self.shard_len or start + n == self.n_tiles) or n == 0:
            raise ValueError(f"tiles {start}..{start + n} are not one whole shard of {self.paths[0]}")
        data = shard_bytes(encoded, self.shard_len)
        if "://" in self.paths[0]:  # object storage: one PUT, no temporary name (there is no rename)
            import fsspec

            fs, key = fsspec.core.url_to_fs(self.paths[start // self.shard_len])
            fs.pipe_file(key, data)
            return
        path = Path(self.paths[start // self.shard_len])
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)


def shard_target(store_path: str | AnyPath) -> ShardTarget | None:
    """The store's shard target when whole shards can be written directly (see module docstring)."""
    arr, codec, shard_len = _layout(str(as_path(store_path) / "tiles"))
    if codec is None:
        return None
    n = int(arr.shape[0])
    store = arr.store_path.store
    keys = [arr.metadata.encode_chunk_key((k, 0, 0, 0)) for k in range(max(1, -(-n // shard_len)))]
    if isinstance(store, FsspecStore):
        protocol = store.fs.protocol if isinstance(store.fs.protocol, str) else store.fs.protocol[0]
        parts = [part.strip("/") for part in (store.path, arr.store_path.path)]
        root_url = f"{protocol}://" + "/".join(part for part in parts if part)
        return ShardTarget(codec, shard_len, n, tuple(f"{root_url}/{key.lstrip('/')}" for key in keys))
    assert isinstance(store, LocalStore)  # _layout gives a codec only for local and fsspec stores
    root = Path(store.root) / arr.store_path.path
    return ShardTarget(codec, shard_len, n, tuple(str(root / key) for key in keys))


def write_shard(store_path: str | AnyPath, start: int, tiles: np.ndarray) -> None:
    """Write tiles ``start .. start+len(tiles)`` of ``<store>/tiles``; must be exactly one whole shard
    (or the last, shorter one). Other block shapes go through zarr."""
    arr, _, shard_len = _layout(str(as_path(store_path) / "tiles"))
    n = len(tiles)
    aligned = start % shard_len == 0 and (n == shard_len or start + n == arr.shape[0])
    target = shard_target(store_path) if aligned and n > 0 else None
    if target is None:
        arr[start : start + n] = tiles
        return
    target.write(start, [target.codec.encode_image(np.ascontiguousarray(t)) for t in tiles])
