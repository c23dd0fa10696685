"""Contract 1: the tile store, a zarr v3 group per slide (``OUT/<slide_id>.zarr``).

- ``tiles``: uint8 [N, T, T, 3], one tile per chunk, chunks grouped into shard files.
- ``coords``: int64 [N, 2], (x, y) of each tile's top-left corner in level-0 pixels.
- ``tissue``: float32 [N], tissue fraction of each tile.
- attrs: see ``REQUIRED_ATTRS``; ``complete: true`` is written last.

The writer builds the store under a temporary name and renames it into place once complete, so
a store under its final name is complete; ``complete`` is checked as well, so a store copied
half-way or written by another tool without it is refused too. On object storage (no rename) the
store is written in place and ``complete``, written last, is the only mark (docs/storage.md).
Paths may be URLs (``s3://...``): zarr reads and writes them through fsspec.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import zarr

from wsi_ssl.storage.paths import AnyPath, as_path
from wsi_ssl.stores import codecs as _codecs  # noqa: F401  (registers the tile codecs with zarr)
from wsi_ssl.stores.atomic import PARTIAL_TAG

TILE_STORE_FORMAT_VERSION = 1
STORE_SUFFIX = ".zarr"
REQUIRED_ATTRS = (
    "format_version",
    "slide_id",
    "source_path",
    "backend",
    "mpp",
    "slide_mpp",
    "level",
    "downsample",
    "tile_size",
    "stride",
    "complete",
)


class TileStoreError(ValueError):
    """A tile store that is missing, unfinished, or not shaped like Contract 1."""


class IncompleteStoreError(TileStoreError):
    """A store without ``complete: true``: an interrupted or still-running write."""


def store_path(out_dir: str | AnyPath, slide_id: str) -> AnyPath:
    return as_path(out_dir) / f"{slide_id}{STORE_SUFFIX}"


def complete_attrs(path: str | AnyPath) -> dict[str, Any] | None:
    """A complete store's attrs (one metadata read), or None if it is missing or unfinished."""
    try:
        attrs = dict(zarr.open_group(str(path), mode="r", zarr_format=3).attrs)
    except Exception:
        return None
    return attrs if attrs.get("complete", False) else None


def is_complete(path: str | AnyPath) -> bool:
    return complete_attrs(path) is not None


class TileStore:
    """Read access to one slide's tiles; cheap to open, arrays are read lazily.

    Picklable by path (DataLoader workers reopen it), so hand stores to workers freely.
    """

    def __init__(self, path: str | AnyPath) -> None:
        self.path = as_path(path)
        self._group: Any = None
        self._tiles: Any = None
        self._coords: np.ndarray | None = None
        self._tissue: np.ndarray | None = None
        self._open()

    def _open(self) -> None:
        if not self.path.exists():
            raise TileStoreError(f"tile store not found: {self.path}")
        try:
            group = zarr.open_group(str(self.path), mode="r", zarr_format=3)
        except Exception as exc:
            raise TileStoreError(f"{self.path}: not a zarr v3 group ({exc})") from None
        if not group.attrs.get("complete", False):
            raise IncompleteStoreError(
                f"{self.path}: tile store is incomplete (no 'complete' attr); rerun `wsi-ssl tile` to finish it"
            )
        for name in ("tiles", "coords", "tissue"):
            if name not in group:
                raise TileStoreError(f"{self.path}: missing array {name!r}")
        self._group = group
        self._tiles = group["tiles"]

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"])  # type: ignore[misc]

    # -- metadata -----------------------------------------------------------------------------
    @property
    def attrs(self) -> dict[str, Any]:
        return dict(self._group.attrs)

    @property
    def slide_id(self) -> str:
        return str(self._group.attrs["slide_id"])

    @property
    def mpp(self) -> float:
        return float(self._group.attrs["mpp"])

    @property
    def tile_size(self) -> int:
        return int(self._group.attrs["tile_size"])

    @property
    def coords(self) -> np.ndarray:
        if self._coords is None:
            self._coords = np.asarray(self._group["coords"][:], dtype=np.int64)
        return self._coords

    @property
    def tissue(self) -> np.ndarray:
        if self._tissue is None:
            self._tissue = np.asarray(self._group["tissue"][:], dtype=np.float32)
        return self._tissue

    def __len__(self) -> int:
        return int(self._tiles.shape[0])

    # -- pixels -------------------------------------------------------------------------------
    def tile(self, index: int) -> np.ndarray:
        """One tile, uint8 [T, T, 3]."""
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"tile {index} out of range for {self.slide_id} ({n} tiles)")
        return np.asarray(self._tiles[index])

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """``(tile, coord)`` for one index."""
        return self.tile(index), self.coords[index]

    def tiles(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """A contiguous batch of tiles, uint8 [n, T, T, 3] (one read per shard touched)."""
        return np.asarray(self._tiles[start:stop])

    def take(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Tiles at arbitrary indices, in the order given."""
        idx = np.asarray(indices, dtype=np.int64)
        if idx.size == 0:
            t = self.tile_size
            return np.empty((0, t, t, 3), dtype=np.uint8)
        order = np.argsort(idx, kind="stable")
        got = np.asarray(self._tiles.get_orthogonal_selection((idx[order],)))
        out = np.empty_like(got)
        out[order] = got
        return out

    def iter_batches(self, batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray, int]]:
        """Yield ``(tiles, coords, start)`` over the whole store in order."""
        for start in range(0, len(self), batch_size):
            stop = min(start + batch_size, len(self))
            yield self.tiles(start, stop), self.coords[start:stop], start

    @property
    def shard_size(self) -> int:
        shards = getattr(self._tiles, "shards", None)
        return int(shards[0]) if shards else 1

    def __repr__(self) -> str:
        return f"TileStore({self.path}, n={len(self)}, tile={self.tile_size}, mpp={self.mpp})"


def open_tile_store(path: str | AnyPath) -> TileStore:
    return TileStore(path)


def find_tile_stores(folder: str | AnyPath) -> list[AnyPath]:
    """All ``*.zarr`` stores directly in ``folder`` (complete or not), sorted; partials skipped."""
    folder = as_path(folder)
    if not folder.is_dir():
        raise TileStoreError(f"not a folder of tile stores: {folder}")
    return sorted(
        p
        for p in folder.glob(f"*{STORE_SUFFIX}")
        if p.is_dir() and not p.name.startswith(".") and PARTIAL_TAG not in p.name
    )


@dataclass
class TileArraysSpec:
    n_tiles: int
    tile_size: int
    shard_tiles: int = 256
    codec: str = "jpeg"
    quality: int = 90


def create_tile_arrays(
    group_path: str | AnyPath, spec: TileArraysSpec, coords: np.ndarray, tissue: np.ndarray, attrs: dict[str, Any]
) -> None:
    """Lay out a new (incomplete) store: empty sharded ``tiles``, filled ``coords``/``tissue``, attrs.

    Tiles are then written shard by shard (possibly by several processes, each its own shards),
    and ``mark_complete`` closes the store.
    """
    from wsi_ssl.stores.codecs import tile_codec_kwargs

    t = spec.tile_size
    group = zarr.open_group(str(group_path), mode="w", zarr_format=3)
    n = spec.n_tiles
    shard = max(1, min(spec.shard_tiles, n)) if n else 1
    group.create_array(
        "tiles",
        shape=(n, t, t, 3),
        chunks=(1, t, t, 3),
        shards=(shard, t, t, 3),
        dtype="uint8",
        fill_value=0,
        **tile_codec_kwargs(spec.codec, spec.quality),  # type: ignore[arg-type]
    )
    group.create_array("coords", data=np.asarray(coords, dtype=np.int64).reshape(n, 2), chunks=(max(n, 1), 2))
    group.create_array("tissue", data=np.asarray(tissue, dtype=np.float32).reshape(n), chunks=(max(n, 1),))
    group.attrs.update(
        {
            **attrs,
            "format_version": TILE_STORE_FORMAT_VERSION,
            "complete": False,
            "n_tiles": n,
            "codec": spec.codec,
            "shard_tiles": shard,
        }
    )


def write_tiles(group_path: str | AnyPath, start: int, tiles: np.ndarray) -> None:
    """Write a block of tiles at ``start``; callers align blocks to shards to avoid read-modify-write."""
    arr = zarr.open_array(str(as_path(group_path) / "tiles"), mode="r+")
    arr[start : start + len(tiles)] = tiles


def mark_complete(group_path: str | AnyPath, extra_attrs: dict[str, Any] | None = None) -> None:
    """Set ``complete: true`` (one write of the group's ``zarr.json``, after every shard)."""
    group = zarr.open_group(str(group_path), mode="r+", zarr_format=3)
    group.attrs.update({**(extra_attrs or {}), "complete": True})
