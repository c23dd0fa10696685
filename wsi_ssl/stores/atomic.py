"""Write-then-rename, so a half-written output is never mistaken for a finished one.

A crash at any moment leaves either the old state or a temporary sibling whose name starts
with ``.`` and contains ``.partial-``: readers never see it and the next run removes it.

Object storage (``s3://``, ``gs://``; docs/storage.md) has no rename. There a whole-file output
(an h5, a CSV, a PNG) is written to a local temporary file and published with one upload, which
the store makes visible whole or not at all. A tile store is written in place instead
(``partial_path`` returns the final URL): its ``complete`` attribute, written last, is what makes
it complete, and every reader checks it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import cast

from wsi_ssl.storage.paths import AnyPath, as_path, is_upath, remove, upload

PARTIAL_TAG = ".partial-"


def partial_path(final: AnyPath) -> AnyPath:
    """A temporary sibling of ``final``; on object storage, ``final`` itself (see module doc)."""
    if is_upath(final):
        return cast(AnyPath, final)
    return final.with_name(f".{final.name}{PARTIAL_TAG}{os.getpid()}-{uuid.uuid4().hex[:8]}")


def remove_path(path: AnyPath) -> None:
    if is_upath(path):
        remove(path)
    elif path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)


def clean_partials(final: AnyPath) -> None:
    """Remove leftovers of earlier interrupted writes of ``final``."""
    for leftover in final.parent.glob(f".{final.name}{PARTIAL_TAG}*"):
        remove_path(leftover)


@contextmanager
def atomic_output(final: str | AnyPath) -> Iterator[Path]:
    """Yield a temporary local path to write; on success it replaces ``final`` in one rename
    (or, for a URL, one upload).

    On an exception the temporary output is removed and ``final`` is left as it was.
    """
    final = as_path(final)
    if is_upath(final):
        with tempfile.TemporaryDirectory(prefix="wsi-ssl-upload-") as scratch:
            tmp = Path(scratch) / final.name
            yield tmp
            upload(tmp, final)
        return
    final.parent.mkdir(parents=True, exist_ok=True)
    clean_partials(final)
    tmp = partial_path(final)
    assert isinstance(tmp, Path)
    try:
        yield tmp
    except BaseException:
        remove_path(tmp)
        raise
    publish(tmp, final)


def publish(tmp: AnyPath, final: AnyPath) -> None:
    """Move a finished temporary output into place, replacing whatever was there."""
    if tmp == final:  # written in place (object storage; see module doc)
        return
    if is_upath(final):
        assert isinstance(tmp, Path)
        upload(tmp, final)
        remove_path(tmp)
        return
    assert isinstance(tmp, Path)
    if final.exists():
        # A non-empty directory cannot be renamed over; move the old one aside first. At no
        # instant is a half-written output visible under the final name.
        trash = partial_path(final)
        assert isinstance(trash, Path)
        os.replace(final, trash)
        os.replace(tmp, final)
        remove_path(trash)
    else:
        os.replace(tmp, final)
