"""Contract 3: the per-slide feature cache (h5).

``<slide_id>.h5`` holds ``features`` [N, D] (float32 or float16) and ``coords`` [N, 2] (int64,
level-0 x/y of each tile's top-left corner, same order), plus attrs. These are the dataset names
CLAM and TRIDENT write, so their files open here unchanged and ours open in their tools.
A file exists under its final name only once complete (written to a temporary name, renamed;
on object storage written locally and published with one upload, docs/storage.md). Paths may be
URLs (``s3://...``); a remote file is read with ranged reads, not downloaded whole.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import h5py
import numpy as np

from wsi_ssl.storage.paths import AnyPath, as_path, open_h5
from wsi_ssl.stores.atomic import PARTIAL_TAG, atomic_output

FEATURES_FORMAT_VERSION = 1
FEATURE_SUFFIX = ".h5"


class FeatureFileError(ValueError):
    """A feature file that is missing, unreadable or not shaped like Contract 3."""


@dataclass
class FeatureFile:
    """One slide's tile embeddings and where each tile sits on the slide."""

    slide_id: str
    features: np.ndarray  # [N, D]
    coords: np.ndarray  # [N, 2] int64
    attrs: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.features.shape[0])

    @property
    def dim(self) -> int:
        return int(self.features.shape[1])


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


ENCODER_KEYS = ("encoder", "encoder_sha256", "encoder_preset", "encoder_revision")


def encoder_identity(attrs: dict[str, Any]) -> dict[str, str]:
    """Which encoder wrote a feature file: its name, weights sha256, and zoo preset and revision if any."""
    return {k: str(attrs.get(k) or "") for k in ENCODER_KEYS}


def encoders_differ(a: dict[str, str], b: dict[str, str]) -> bool:
    """True when two feature files are known to come from different encoders.

    The weights' sha256 decides when both record it; otherwise the encoder names, when both do.
    Files from other tools (CLAM, TRIDENT) that record neither are not refused.
    """
    if a.get("encoder_sha256") and b.get("encoder_sha256"):
        return a["encoder_sha256"] != b["encoder_sha256"]
    if a.get("encoder") and b.get("encoder"):
        return a["encoder"] != b["encoder"]
    return False


def describe_encoder(identity: dict[str, str]) -> str:
    name = identity.get("encoder") or "an unnamed encoder"
    sha = identity.get("encoder_sha256")
    return f"{name} (weights sha256 {sha[:12]})" if sha else name


def read_feature_attrs(path: str | AnyPath) -> dict[str, Any]:
    with open_h5(as_path(path)) as f:
        return {k: _plain(v) for k, v in f.attrs.items()}


def read_features(path: str | AnyPath, *, mmap_coords_only: bool = False) -> FeatureFile:
    """Open a feature file written by wsi_ssl, CLAM or TRIDENT.

    CLAM's older files store ``features`` as [1, N, D]; the leading singleton is dropped.
    With ``mmap_coords_only`` the features are not loaded (an empty [0, D] array stands in).
    """
    path = as_path(path)
    if not path.is_file():
        raise FeatureFileError(f"feature file not found: {path}")
    try:
        with open_h5(path) as f:
            for name in ("features", "coords"):
                if name not in f:
                    raise FeatureFileError(f"{path}: no {name!r} dataset (found: {sorted(f.keys())})")
            feats_ds = f["features"]
            shape = feats_ds.shape
            if len(shape) == 3 and shape[0] == 1:
                shape = shape[1:]
            if len(shape) != 2:
                raise FeatureFileError(f"{path}: 'features' must be [N, D], got shape {feats_ds.shape}")
            if mmap_coords_only:
                feats = np.empty((0, shape[1]), dtype=feats_ds.dtype)
            else:
                feats = np.asarray(feats_ds[()]).reshape(shape)
            coords = np.asarray(f["coords"][()])
            if coords.ndim == 3 and coords.shape[0] == 1:
                coords = coords[0]
            attrs = {k: _plain(v) for k, v in f.attrs.items()}
    except OSError as exc:
        raise FeatureFileError(f"{path}: not a readable HDF5 file ({exc})") from None
    if coords.shape != (shape[0], 2):
        raise FeatureFileError(f"{path}: 'coords' must be [{shape[0]}, 2] to match features, got {coords.shape}")
    slide_id = str(attrs.get("slide_id", path.stem))
    return FeatureFile(slide_id=slide_id, features=feats, coords=coords.astype(np.int64), attrs=attrs)


def write_features(
    path: str | AnyPath,
    features: np.ndarray,
    coords: np.ndarray,
    attrs: Mapping[str, Any],
    dtype: str = "float32",
) -> AnyPath:
    """Write one slide's features atomically; ``attrs`` must carry the Contract 3 keys."""
    if dtype not in ("float32", "float16"):
        raise ValueError(f"feature dtype must be float32 or float16, got {dtype!r}")
    features = np.asarray(features)
    coords = np.asarray(coords, dtype=np.int64)
    if features.ndim != 2 or coords.shape != (features.shape[0], 2):
        raise ValueError(f"features {features.shape} and coords {coords.shape} do not match [N, D] / [N, 2]")
    final = as_path(path)
    with atomic_output(final) as tmp:
        with h5py.File(tmp, "w") as f:
            # Whole rows per chunk (as the streaming writer does): readers take row ranges.
            chunks = (min(len(features), 256), features.shape[1]) if features.size else None
            f.create_dataset("features", data=features.astype(dtype), chunks=chunks)
            f.create_dataset("coords", data=coords)
            for key, value in attrs.items():
                f.attrs[key] = value if value is not None else ""
            f.attrs["format_version"] = FEATURES_FORMAT_VERSION
    return final


def iter_feature_files(folder: str | AnyPath) -> Iterator[AnyPath]:
    """Complete feature files in a folder, sorted by name (temporary partial files skipped)."""
    for p in sorted(as_path(folder).glob(f"*{FEATURE_SUFFIX}")):
        if not p.name.startswith(".") and PARTIAL_TAG not in p.name:
            yield p


def feature_path(folder: str | AnyPath, slide_id: str) -> AnyPath:
    return as_path(folder) / f"{slide_id}{FEATURE_SUFFIX}"


class FeatureWriter:
    """Stream one slide's features into a temporary h5, renamed to ``path`` only when complete.

    For slides too large to hold all features in memory: the embedding loop writes each batch
    as it comes (in order, ``start`` must follow the last write), and ``close()`` checks that
    every row was written before the rename. ``abort()`` (or an exception inside ``with``)
    removes the temporary file and leaves any earlier ``path`` untouched.
    """

    def __init__(
        self,
        path: str | AnyPath,
        coords: np.ndarray,
        dim: int,
        attrs: Mapping[str, Any],
        dtype: str = "float32",
    ) -> None:
        if dtype not in ("float32", "float16"):
            raise ValueError(f"feature dtype must be float32 or float16, got {dtype!r}")
        coords = np.asarray(coords, dtype=np.int64)
        if coords.ndim != 2 or coords.shape[1] != 2:
            raise ValueError(f"coords must be [N, 2], got {coords.shape}")
        self.path = as_path(path)
        self.n_rows = int(coords.shape[0])
        self.dim = int(dim)
        self.dtype = dtype
        self._written = 0
        self._ctx = atomic_output(self.path)
        tmp = self._ctx.__enter__()
        try:
            self._file = h5py.File(tmp, "w")
            chunks = (min(self.n_rows, 256), self.dim) if self.n_rows and self.dim else None
            self._features = self._file.create_dataset(
                "features", shape=(self.n_rows, self.dim), dtype=dtype, chunks=chunks
            )
            self._file.create_dataset("coords", data=coords)
            for key, value in attrs.items():
                self._file.attrs[key] = value if value is not None else ""
            self._file.attrs["format_version"] = FEATURES_FORMAT_VERSION
        except BaseException as exc:
            self._ctx.__exit__(type(exc), exc, exc.__traceback__)
            raise

    @property
    def rows_written(self) -> int:
        return self._written

    def write(self, start: int, features: np.ndarray) -> None:
        """Write rows ``start .. start + len(features)``; rows arrive in order, without gaps."""
        features = np.asarray(features)
        if start != self._written:
            raise ValueError(
                f"{self.path.name}: rows must be written in order; expected start {self._written}, got {start}"
            )
        if features.ndim != 2 or features.shape[1] != self.dim:
            raise ValueError(f"{self.path.name}: expected features [n, {self.dim}], got {features.shape}")
        stop = start + features.shape[0]
        if stop > self.n_rows:
            raise ValueError(f"{self.path.name}: {stop} rows written but the slide has {self.n_rows}")
        self._features[start:stop] = features.astype(self.dtype, copy=False)
        self._written = stop

    def close(self) -> AnyPath:
        """Finish the file and rename it into place; refuses a file with rows missing."""
        if self._written != self.n_rows:
            exc = ValueError(f"{self.path.name}: only {self._written} of {self.n_rows} rows were written")
            self.abort()
            raise exc
        self._file.close()
        self._ctx.__exit__(None, None, None)
        return self.path

    def abort(self) -> None:
        """Drop the temporary file; the final path is left as it was."""
        try:
            self._file.close()
        except Exception:
            pass
        err = RuntimeError("feature write aborted")
        self._ctx.__exit__(RuntimeError, err, None)

    def __enter__(self) -> FeatureWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
