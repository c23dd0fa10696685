"""The embedding cache: one h5 file per (encoder weights, preprocessing, patches, image transform).

``CACHE/<key>.h5`` holds ``features`` float32 ``[N, D]`` and ``index`` int64 ``[N]`` (the patch
numbers in the PatchSet), with the key's inputs as JSON in the ``key`` attribute. The key is the
sha256 of: the encoder's weight sha256, its preprocessing (input size, mean, std, MPP, the pixel
rule version of ``wsi_ssl.evaluate.pixels``), the dataset fingerprint, the patches embedded, the
shift and the stain normalisation. Anything that would change a feature changes the key, so a
cached file is never stale; a second protocol, a second run, or a run on another shard reads it
instead of embedding again. Files are written to a temporary name and renamed into place, so an
interrupted run never leaves a partial cache entry (docs/contracts.md).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

CACHE_FORMAT_VERSION = 1
PIXEL_RULE_VERSION = 1  # bump when wsi_ssl.evaluate.pixels changes what reaches the encoder


def cache_key(parts: dict[str, Any]) -> str:
    blob = json.dumps({"cache_format": CACHE_FORMAT_VERSION, "pixels": PIXEL_RULE_VERSION, **parts}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def cache_path(cache_dir: Path, parts: dict[str, Any]) -> Path:
    return cache_dir / f"{cache_key(parts)}.h5"


def read_cached(path: Path, index: np.ndarray) -> np.ndarray | None:
    """The cached features in the order of ``index``, or None when absent or for other patches."""
    import h5py

    if not path.is_file():
        return None
    try:
        with h5py.File(path, "r") as f:
            if not np.array_equal(np.asarray(f["index"]), index):
                return None
            return np.asarray(f["features"], dtype=np.float32)
    except (OSError, KeyError):
        return None  # unreadable: embed again and overwrite


def write_cached(path: Path, index: np.ndarray, features: np.ndarray, parts: dict[str, Any]) -> None:
    import h5py

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    with h5py.File(tmp, "w") as f:
        f.create_dataset("features", data=np.asarray(features, dtype=np.float32))
        f.create_dataset("index", data=np.asarray(index, dtype=np.int64))
        f.attrs["key"] = json.dumps(parts, sort_keys=True)
        f.attrs["format_version"] = CACHE_FORMAT_VERSION
    tmp.replace(path)
