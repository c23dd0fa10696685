"""Local paths and object-storage URLs behind one type, created in one place (``as_path``).

``pathlib.Path("s3://bucket/key")`` silently becomes ``s3:/bucket/key``; every stage that takes a
folder or file from the command line or a config goes through ``as_path`` instead, which returns a
``Path`` for local names (``file://`` included) and a ``upath.UPath`` for URLs. Both offer the
pathlib API the stages use (``/``, ``name``, ``stem``, ``exists``, ``is_file``, ``glob``,
``open``, ``mkdir``, ``write_bytes``), so stage code stays the same for either.

What pathlib cannot do on object storage is here: a file's size, uploading a finished local file
with one put (how h5 files and other whole-file outputs are published atomically), and deleting
a prefix.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeAlias, cast

from pydantic import PlainSerializer, PlainValidator

if TYPE_CHECKING:
    from typing import TypeGuard

    from upath import UPath

# upath (and fsspec behind it, ~0.2 s) is imported on the first URL only, so local runs and
# ``wsi-ssl --help`` do not pay for it.
if TYPE_CHECKING:
    # For the type checker a URL is a Path: UPath implements the pathlib API the stages use, so
    # code written against Path takes either without casts. What only local files can do
    # (os.replace, h5py on a name, shutil) is guarded by ``is_upath`` at the few places that do it.
    AnyPath: TypeAlias = Path
else:
    AnyPath = Path
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]+)://")
LOCAL_SCHEMES = ("file", "local")


def is_upath(value: object) -> TypeGuard[UPath]:
    """True for a ``upath.UPath`` (without importing upath: none exists before it is imported)."""
    upath = sys.modules.get("upath")
    return upath is not None and isinstance(value, upath.UPath)


def scheme(value: object) -> str:
    """The URL scheme of ``value`` ("s3", "gs", "https" ...), "" for a local path."""
    if is_upath(value):
        proto = value.protocol
        return "" if proto in ("", *LOCAL_SCHEMES) else proto
    if isinstance(value, Path):
        return ""
    m = _SCHEME.match(str(value))
    if m is None or m.group(1).lower() in LOCAL_SCHEMES:
        return ""
    return m.group(1).lower()


def is_url(value: object) -> bool:
    """True for an object-storage or web URL (``s3://``, ``gs://``, ``https://`` ...)."""
    return bool(scheme(value))


def as_path(value: str | os.PathLike[str] | UPath) -> AnyPath:
    """A ``Path`` for a local name (or ``file://`` URL), a ``UPath`` for a remote URL.

    Storage options are never passed: s3fs/gcsfs read credentials and endpoints (the standard
    ``AWS_ENDPOINT_URL`` for MinIO, Ceph or moto) from the environment and config files.
    """
    if isinstance(value, Path):
        return value
    if is_upath(value):
        return cast(AnyPath, value) if is_url(value) else Path(value.path)
    text = str(value)
    if is_url(text):
        from upath import UPath

        return cast(AnyPath, UPath(text))
    m = _SCHEME.match(text)
    return Path(text[len(m.group(0)) :]) if m else Path(text)


def _validate(value: Any) -> AnyPath:
    if isinstance(value, (str, os.PathLike)) or is_upath(value):
        return as_path(value)
    raise ValueError(f"expected a path or URL, got {type(value).__name__}")


# A config field holding a local path or a URL (serialised back as the text the user gave).
if TYPE_CHECKING:
    PathOrURL: TypeAlias = AnyPath
else:
    PathOrURL = Annotated[Any, PlainValidator(_validate), PlainSerializer(str, return_type=str)]


def display(path: AnyPath) -> str:
    """What to record as a file's source: the URL, or the absolute local path."""
    return str(path) if is_upath(path) else os.path.abspath(str(path))


_OPEN_SIZES: dict[str, int] = {}
"""URL -> size of an object that a reader of this process holds open (``note_open_size``)."""


def note_open_size(url: str, size: int | None) -> None:
    """Record the size of an object a reader has opened (from the one HEAD request it made), or
    forget it (``None``) when the reader closes: ``file_size`` then answers without a second
    request per slide and worker (slide/readers/remote.py)."""
    if size is None:
        _OPEN_SIZES.pop(url, None)
    else:
        _OPEN_SIZES[url] = int(size)


def file_size(path: AnyPath) -> int:
    if is_upath(path):
        known = _OPEN_SIZES.get(str(path))
        return known if known is not None else int(path.fs.size(path.path))
    return os.path.getsize(str(path))


def upload(local: Path, remote: UPath) -> None:
    """Publish a finished local file (or folder) at ``remote``.

    A single object appears whole or not at all: S3 makes a PUT, or a multipart upload at its
    completion, visible at once; GCS the same. A folder is uploaded file by file.
    """
    fs = remote.fs
    if local.is_dir():
        fs.put(str(local), remote.path, recursive=True)
    else:
        fs.put_file(str(local), remote.path)


def remove(path: UPath) -> None:
    """Delete an object or everything under a prefix; absent is fine."""
    try:
        path.fs.rm(path.path, recursive=True)
    except FileNotFoundError:
        pass
    path.fs.invalidate_cache()


def open_binary(path: AnyPath, block_size: int = 64 * 1024) -> Any:
    """A binary file to read from: ``open()`` for a local file; for a URL an fsspec file whose
    reads are ranged requests of ``block_size`` (header reads: pydicom, the JPEG colour probe)."""
    if is_upath(path):
        return path.fs.open(path.path, "rb", block_size=block_size, cache_type="readahead")
    return open(path, "rb")


def open_h5(path: AnyPath) -> Any:
    """An ``h5py.File`` opened read-only; a URL is read through a file object with ranged reads
    (h5py's file-object driver), never downloaded whole."""
    import h5py

    if is_upath(path):
        return h5py.File(path.fs.open(path.path, "rb", block_size=1 << 20, cache_type="readahead"), "r")
    return h5py.File(path, "r")
