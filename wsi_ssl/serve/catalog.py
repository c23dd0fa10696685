"""Cohorts of feature caches (Contract 3), served read-only without restarts.

Each cohort is a folder of ``<slide_id>.h5`` files. The catalog answers three questions
cheaply and safely under concurrent requests:

* which slides a cohort holds: the folder listing is cached and redone when the folder's
  mtime changes, so a slide written by ``wsi-ssl embed`` (temp file renamed into place) shows
  up on the next request without a restart;
* one slide's tiles: files are opened read-only (``"r"``; on NFS, where HDF5's file locking
  fails, set ``HDF5_USE_FILE_LOCKING=FALSE``: the files are immutable once renamed into place)
  and kept in a small LRU of open handles, checked against the file's inode/mtime/size on every request so a
  rewritten file is reopened rather than served stale;
* derived values (the mean embedding): computed once per file version and cached on its handle.

Files should be replaced by rename (``wsi-ssl embed`` does): readers then see the old file or
the new one, never a mix. A file rewritten in place (same inode) is noticed by its stamp too;
its old handle is closed before the file is opened again, because HDF5 shares one open file
per inode within a process and would otherwise serve the old file's cached metadata against
the new bytes. A file that cannot be read while it is changing (a writer mid-way) is tried
once more, then reported as :class:`FeatureFileBusy` (a 503 with Retry-After), not as broken.

h5py serialises all HDF5 calls behind one global lock, so sharing handles across the server's
threads is safe; the catalog's own state is guarded by its lock.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from wsi_ssl.serve.config import MAX_SLIDE_ID
from wsi_ssl.serve.feature_rows import FeatureRows
from wsi_ssl.serve.slide_attrs import public_attrs
from wsi_ssl.stores.features import FeatureFileError, feature_path, iter_feature_files, read_features

# A slide id in a URL must name a file inside the cohort folder and nothing else, and one that
# the file system can hold: "<id>.h5" within the 255-byte file-name limit (ids are ASCII).
_SLIDE_ID_RE = re.compile(rf"^[A-Za-z0-9_][A-Za-z0-9 ._+=,@()\[\]-]{{0,{MAX_SLIDE_ID - 1}}}$")
_MEAN_CHUNK = 8192
# What h5py and the checks of read_features raise on a file that changes under them.
READ_ERRORS = (FeatureFileError, OSError, KeyError, ValueError, RuntimeError)
RETRY_DELAY_S = 0.05
# A file that cannot be read and was modified this recently is taken to be mid-write.
BUSY_WINDOW_S = 10.0


class SlideNotFound(LookupError):
    """A slide that does not exist, or that the caller's key may not see (answered the same)."""


class FeatureFileBusy(Exception):
    """A feature file that could not be read twice in a row while it was being written."""

    def __init__(self, slide_id: str, reason: str) -> None:
        super().__init__(slide_id, reason)

    def __str__(self) -> str:
        return f"slide {self.args[0]!r}: feature file busy ({self.args[1]})"


@dataclass(frozen=True)
class FileStamp:
    """What identifies one version of a file: a rename or rewrite changes at least one field."""

    dev: int
    ino: int
    mtime_ns: int
    size: int

    @classmethod
    def of(cls, path: Path | str) -> FileStamp | None:
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        return cls(st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


@dataclass
class SlideHandle:
    """One open, validated feature file; shared by requests until the file changes."""

    cohort: str
    slide_id: str
    path: Path
    stamp: FileStamp
    file: h5py.File
    coords: np.ndarray  # [N, 2] int64, small enough to keep in memory
    n_tiles: int
    dim: int
    dtype: str
    attrs: dict[str, Any]
    _leading_one: bool = False  # CLAM's older [1, N, D] layout
    rows: FeatureRows | None = None  # the features mapped from the file, where its layout allows
    # Re-entrant: one derived value may be computed from another (the embedding from the mean).
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _derived: dict[str, Any] = field(default_factory=dict)

    @property
    def path_str(self) -> str:
        return str(self.path)

    def current(self) -> bool:
        """Whether the file on disk is still the version this handle opened."""
        return self.stamp == FileStamp.of(self.path_str)

    def read_one_version(self) -> bool:
        """Whether reads through this handle saw one version of the file: it is unchanged, or was
        replaced by rename (gone or a new inode: the handle read the complete old file)."""
        now = FileStamp.of(self.path_str)
        return now is None or now == self.stamp or (now.dev, now.ino) != (self.stamp.dev, self.stamp.ino)

    def close(self) -> None:
        """Close the HDF5 file (a request still reading it gets an error, and retries)."""
        self.rows = None
        try:
            self.file.close()
        except Exception:  # noqa: BLE001 - closing a file HDF5 already gave up on
            pass

    def features(self, start: int, stop: int) -> np.ndarray:
        rows = self.rows  # once: close() may clear it meanwhile (the mapping lives while we hold it)
        if rows is not None:
            return rows.read(start, stop)
        ds = self.file["features"]
        return np.asarray(ds[0, start:stop] if self._leading_one else ds[start:stop])

    def copy_features_into(self, start: int, stop: int, out: np.ndarray) -> None:
        """Rows ``start .. stop`` as bytes into ``out`` (uint8 ``[n, dim * itemsize]``, may be strided)."""
        if stop <= start:
            return
        rows = self.rows
        if rows is not None:
            rows.copy_into(start, stop, out)
        else:
            feats = np.ascontiguousarray(self.features(start, stop))
            out[:] = feats.astype(feats.dtype.newbyteorder("<"), copy=False).view(np.uint8).reshape(stop - start, -1)

    def cached(self, name: str) -> Any:
        """A derived value if it was computed already, else None (never computes)."""
        return self._derived.get(name)

    def derived(self, name: str, compute: Any) -> Any:
        """A value computed once per file version (``compute(handle)``), e.g. the mean embedding."""
        if name in self._derived:
            return self._derived[name]
        with self._lock:
            if name not in self._derived:
                self._derived[name] = compute(self)
            return self._derived[name]

    def mean_embedding(self) -> np.ndarray | None:
        """Mean of the tile embeddings in float64 accumulation, returned as float32; None if no tiles."""

        def compute(handle: SlideHandle) -> np.ndarray | None:
            if handle.n_tiles == 0:
                return None
            total = np.zeros(handle.dim, dtype=np.float64)
            for start in range(0, handle.n_tiles, _MEAN_CHUNK):
                total += handle.features(start, min(start + _MEAN_CHUNK, handle.n_tiles)).sum(axis=0, dtype=np.float64)
            return (total / handle.n_tiles).astype(np.float32)

        return self.derived("mean", compute)


def _open_handle(cohort: str, slide_id: str, path: Path, stamp: FileStamp, mmap_features: bool = True) -> SlideHandle:
    # read_features validates the Contract 3 shapes and reads coords + attrs; the features
    # themselves stay on disk and are sliced per request.
    meta = read_features(path, mmap_coords_only=True)
    f = h5py.File(path, "r")
    ds = f["features"]
    return SlideHandle(
        cohort=cohort,
        slide_id=slide_id,
        path=path,
        stamp=stamp,
        file=f,
        coords=meta.coords,
        n_tiles=len(meta.coords),
        dim=meta.dim,
        dtype=str(ds.dtype),
        attrs=public_attrs(meta.attrs, path.parent),
        _leading_one=len(ds.shape) == 3,
        rows=FeatureRows.map(path, ds) if mmap_features else None,
    )


class Catalog:
    """The cohorts a server exposes, their slides, and open handles to their feature files."""

    def __init__(self, cohorts: dict[str, Path], open_files: int = 64, mmap_features: bool = True) -> None:
        self.cohorts = {name: Path(folder) for name, folder in cohorts.items()}
        self.open_files = open_files
        self.mmap_features = mmap_features
        self._lock = threading.Lock()
        self._handles: OrderedDict[Path, SlideHandle] = OrderedDict()
        self._by_id: dict[tuple[str, str], SlideHandle] = {}
        self._listings: dict[str, tuple[int, list[str]]] = {}

    def check_folders(self) -> list[str]:
        """Problems with the configured folders, for the command to report at startup."""
        return [
            f"cohort {name!r}: folder {folder} does not exist"
            for name, folder in self.cohorts.items()
            if not folder.is_dir()
        ]

    def slide_ids(self, cohort: str) -> list[str]:
        """Sorted slide ids of a cohort; re-listed only when the folder's mtime changed."""
        folder = self.cohorts.get(cohort)
        if folder is None:
            raise KeyError(cohort)
        try:
            mtime = os.stat(folder).st_mtime_ns
        except FileNotFoundError:
            return []
        cached = self._listings.get(cohort)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        ids = [p.stem for p in iter_feature_files(folder) if _SLIDE_ID_RE.match(p.stem)]
        with self._lock:
            self._listings[cohort] = (mtime, ids)
        return ids

    def peek(self, cohort: str, slide_id: str) -> SlideHandle | None:
        """The handle if it is already open and current, without touching the file's contents.

        Cheap enough (one stat) for the event loop; ``open`` may read the file and belongs in
        a worker thread.
        """
        handle = self._by_id.get((cohort, slide_id))
        if handle is None or not handle.current():
            return None
        return handle

    def open(self, cohort: str, slide_id: str) -> SlideHandle:
        """The open handle of a slide, reopened if the file changed; SlideNotFound otherwise.

        A file that cannot be opened is tried once more after ``RETRY_DELAY_S``; if it still
        fails and it was modified in the last ``BUSY_WINDOW_S``, it is being written:
        FeatureFileBusy. A file that fails and has not changed for longer is damaged.
        """
        folder = self.cohorts.get(cohort)
        if folder is None or not _SLIDE_ID_RE.match(slide_id):
            raise SlideNotFound(slide_id)
        path = feature_path(folder, slide_id)
        try:
            return self._open(cohort, slide_id, path)
        except READ_ERRORS:
            time.sleep(RETRY_DELAY_S)
            try:
                return self._open(cohort, slide_id, path)
            except READ_ERRORS as exc:
                stamp = FileStamp.of(path)
                if stamp is None:
                    raise SlideNotFound(slide_id) from None
                if time.time() - stamp.mtime_ns / 1e9 < BUSY_WINDOW_S:
                    raise FeatureFileBusy(slide_id, str(exc)) from None
                raise FeatureFileError(
                    f"slide {slide_id!r} in cohort {cohort!r}: unreadable feature file ({exc})"
                ) from None

    def forget(self, handle: SlideHandle) -> None:
        """Drop and close a handle whose reads failed, so the next open reads the file afresh."""
        with self._lock:
            if self._handles.get(handle.path) is handle:
                del self._handles[handle.path]
            if self._by_id.get((handle.cohort, handle.slide_id)) is handle:
                del self._by_id[(handle.cohort, handle.slide_id)]
        handle.close()

    def _open(self, cohort: str, slide_id: str, path: Path) -> SlideHandle:
        stamp = FileStamp.of(path)
        if stamp is None:
            raise SlideNotFound(slide_id)
        with self._lock:
            handle = self._handles.get(path)
            if handle is not None and handle.stamp == stamp:
                self._handles.move_to_end(path)
                return handle
            if handle is not None and (handle.stamp.dev, handle.stamp.ino) == (stamp.dev, stamp.ino):
                # Rewritten in place: HDF5 would reuse this open file's stale metadata.
                del self._handles[path]
                self._by_id.pop((cohort, slide_id), None)
                handle.close()
        try:
            handle = _open_handle(cohort, slide_id, path, stamp, self.mmap_features)
        except FileNotFoundError:
            raise SlideNotFound(slide_id) from None
        if FileStamp.of(path) != stamp:  # changed while it was being read: not one version
            handle.close()
            raise FeatureFileError(f"{path.name} changed while it was opened")
        with self._lock:
            # Old handles are not closed here: a request may still be reading one. h5py closes
            # a file when its last reference goes away.
            self._handles[path] = handle
            self._handles.move_to_end(path)
            self._by_id[(cohort, slide_id)] = handle
            while len(self._handles) > self.open_files:
                _, dropped = self._handles.popitem(last=False)
                self._by_id.pop((dropped.cohort, dropped.slide_id), None)
        return handle
