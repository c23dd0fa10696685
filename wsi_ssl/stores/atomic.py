"""Write-then-rename, so a half-written output is never mistaken for a finished one.

A crash at any moment leaves either the old state or a temporary sibling whose name starts
with ``.`` and contains ``.partial-``: readers never see it and the next run removes it.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PARTIAL_TAG = ".partial-"


def partial_path(final: Path) -> Path:
    return final.with_name(f".{final.name}{PARTIAL_TAG}{os.getpid()}-{uuid.uuid4().hex[:8]}")


def remove_path(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)


def clean_partials(final: Path) -> None:
    """Remove leftovers of earlier interrupted writes of ``final``."""
    for leftover in final.parent.glob(f".{final.name}{PARTIAL_TAG}*"):
        remove_path(leftover)


@contextmanager
def atomic_output(final: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``final`` in one rename.

    On an exception the temporary output is removed and ``final`` is left as it was.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    clean_partials(final)
    tmp = partial_path(final)
    try:
        yield tmp
    except BaseException:
        remove_path(tmp)
        raise
    publish(tmp, final)


def publish(tmp: Path, final: Path) -> None:
    """Move a finished temporary output into place, replacing whatever was there."""
    if final.exists():
        # A non-empty directory cannot be renamed over; move the old one aside first. At no
        # instant is a half-written output visible under the final name.
        trash = partial_path(final)
        os.replace(final, trash)
        os.replace(tmp, final)
        remove_path(trash)
    else:
        os.replace(tmp, final)
