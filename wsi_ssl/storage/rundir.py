"""Run directories (many files written over a whole run, e.g. ``mil train --out``) at a URL.

A stage that writes a run directory keeps its local code: it writes into a local scratch folder,
and the folder is published when the stage returns, one upload per file (each object appears
whole or not at all), with the file that marks a finished run (``model.json`` for MIL) uploaded
last, so a reader that finds it finds every other file. A URL that already holds part of a run is
downloaded first, so the stage resumes there as it would locally; only new or changed files are
uploaded again. A run that raises still publishes the whole files it finished (not the marker
unless it was written), so the next run resumes from them; a run killed outright publishes
nothing of that run, and the next one starts from what the URL holds.

Reading one back (``mil predict --model s3://...``) downloads the folder to a temporary one: a
run directory is small (weights, JSON, CSV) and read whole by its loaders.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from wsi_ssl.storage.paths import as_path, is_upath

_Snapshot = dict[str, tuple[int, int]]


def _snapshot(root: Path) -> _Snapshot:
    """Relative name -> (size, mtime_ns) of every whole file (temporary ``.`` names skipped)."""
    out: _Snapshot = {}
    for path in root.rglob("*"):
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(root).parts):
            st = path.stat()
            out[path.relative_to(root).as_posix()] = (st.st_size, st.st_mtime_ns)
    return out


def publish_run_dir(local: Path, url: str, last: str, unchanged: _Snapshot | None = None) -> list[str]:
    """Upload every whole file of ``local`` under ``url`` (one put each), ``last`` after the others;
    files listed in ``unchanged`` with the same size and mtime are skipped. Returns the names put."""
    remote = as_path(url)
    assert is_upath(remote)
    fs, root = remote.fs, remote.path.rstrip("/")
    files = _snapshot(local)
    names = sorted((n for n in files if unchanged is None or unchanged.get(n) != files[n]), key=lambda n: n == last)
    for name in names:
        fs.put_file(str(local / name), f"{root}/{name}")
    fs.invalidate_cache(root)
    return names


@contextmanager
def local_run_dir(out: str, last: str) -> Iterator[str]:
    """``out`` itself for a local folder; for a URL, a local scratch folder holding what the URL
    already has, published there on exit (see module doc)."""
    remote = as_path(out)
    if not is_upath(remote):
        yield out
        return
    with tempfile.TemporaryDirectory(prefix="wsi-ssl-run-") as scratch:
        local = Path(scratch) / "run"
        local.mkdir()
        fs, root = remote.fs, remote.path.rstrip("/")
        if fs.exists(root):
            fs.get(f"{root}/", str(local) + os.sep, recursive=True)
        before = _snapshot(local)
        try:
            yield str(local)
        finally:
            publish_run_dir(local, out, last, before)


@contextmanager
def fetched_run_dir(url: str, required: str, error: type[Exception]) -> Iterator[str]:
    """``url`` itself for a local folder; for a URL, a temporary local copy of the run directory.
    Raises ``error`` naming the URL when ``required`` (the finished-run marker) is not there."""
    remote = as_path(url)
    if not is_upath(remote):
        yield url
        return
    fs, root = remote.fs, remote.path.rstrip("/")
    if not fs.exists(f"{root}/{required}"):
        raise error(f"{url}: no {required}; is this a finished run dir?")
    with tempfile.TemporaryDirectory(prefix="wsi-ssl-run-") as scratch:
        local = Path(scratch) / "run"
        fs.get(f"{root}/", str(local) + os.sep, recursive=True)
        yield str(local)
