"""DICOM whole-slide series at ``s3://``, ``gs://`` or ``https://`` URLs, read in place.

IDC serves TCGA and other collections as DICOM series in cloud buckets: one object per instance
(pyramid level or part of one), grouped into a slide by the Study/Series UIDs in their headers.
wsidicom opens a series from fsspec paths (``upath.UPath``) and reads each frame it needs with a
ranged request through the instance's Basic Offset Table, so, as for TIFF-family slides
(``remote.py``), nothing is downloaded whole. Series are grouped from headers read with ranged
requests too (``dicom_series.read_series``); a URL names either one ``.dcm`` object (its series
is gathered from the objects beside it, as OpenSlide does for a local file) or a prefix holding
one series.
"""

from __future__ import annotations

from typing import Any

from wsi_ssl.slide.readers.base import BackendCannotOpen, SlideOpenError, SlideRefusedError
from wsi_ssl.slide.readers.wsidicom import WsiDicomReader, series_files
from wsi_ssl.storage.paths import AnyPath

READ_BLOCK = 64 * 1024  # a frame is 10-100 KiB; s3fs would read ahead 50 MiB per seek by default
# The filesystem option that sets the read block of the files wsidicom opens (it calls
# ``fs.open(path, "rb")`` with no block size of its own), per protocol.
_BLOCK_OPTION = {"s3": "default_block_size", "s3a": "default_block_size", "gs": "block_size", "gcs": "block_size"}


def _with_small_blocks(path: AnyPath) -> AnyPath:
    """The same URL with a filesystem whose files read ``READ_BLOCK`` bytes ahead, not megabytes."""
    from upath import UPath

    option = _BLOCK_OPTION.get(path.protocol)  # type: ignore[attr-defined]
    if option is None:
        return path
    return UPath(str(path), **{**path.storage_options, option: READ_BLOCK})  # type: ignore[attr-defined, return-value]


class RemoteWsiDicomReader(WsiDicomReader):
    """``WsiDicomReader`` over fsspec paths; only opening differs (no local existence check)."""

    def __init__(self, path: AnyPath, mpp_override: float | None = None, fast_reads: bool = True) -> None:
        self.path = path
        self._pixels = None
        try:  # one request: existence, and whether the URL is an object or a prefix
            info: dict[str, Any] = path.fs.info(path.path)  # type: ignore[attr-defined]
        except FileNotFoundError:
            raise SlideOpenError(f"slide not found: {path}") from None
        except (OSError, PermissionError) as exc:
            raise SlideOpenError(f"cannot reach {path}: {type(exc).__name__}: {exc}") from None
        if info.get("type") not in ("file", "directory"):
            raise SlideOpenError(f"slide not found: {path}")
        try:
            self._open()
        except SlideRefusedError:
            raise
        except Exception as exc:  # wsidicom's, pydicom's and fsspec's own error types
            raise BackendCannotOpen(path, self.backend, exc) from exc
        try:
            self._init_metadata(mpp_override, fast_reads=False)  # no native fast path for URLs
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        import logging

        import wsidicom

        logging.getLogger("wsidicom").setLevel(logging.ERROR)  # as WsiDicomReader._open
        self._files = [_with_small_blocks(f) for f in series_files(self.path)]
        self._slide = wsidicom.WsiDicom.open(self._files)


def is_dicom_url(path: AnyPath) -> bool:
    """A URL that names a ``.dcm`` object, or a prefix whose objects are ``.dcm`` files."""
    suffix = path.suffix.lower()
    if suffix == ".dcm":
        return True
    if suffix:  # a file of another format (.svs, .tiff ...): no listing request
        return False
    try:
        return path.is_dir() and any(p.suffix.lower() == ".dcm" for p in path.iterdir())
    except OSError:
        return False
