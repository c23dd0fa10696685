"""The one list of slide reader backends: name -> reader class, plus ``auto``.

A reader module registers its class with ``@register_reader("name")``; the package imports every
module in ``wsi_ssl/slide/readers/`` on first import, so adding a backend is one new file (plus its
test). The tiler's config, ``wsi-ssl tile --backend`` and ``wsi-ssl info --backend`` take their
choices from ``backend_names()``. ``auto`` is not a reader: it tries the readers registered with an
``auto_rank``, lowest first (OpenSlide, then tiffslide), and moves on only when a library refuses
the file. Before any reader, ``sniff`` reads the file's headers: a fluorescence or unsupported file
is refused with its reason, readers that ``claims`` the format go first (OME-TIFF -> tiffslide, CZI,
OME-Zarr, DICOM series folders), and a truncated file's size check replaces the libraries' errors.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from wsi_ssl.slide.readers.base import (
    BackendCannotOpen,
    ReaderBase,
    SlideOpenError,
    SlideReader,
    SlideRefusedError,
)
from wsi_ssl.slide.sniff import FileFacts, sniff

AUTO = "auto"

READERS: dict[str, type[ReaderBase]] = {}

# Opens a slide URL (s3://, gs://, https://): set by ``remote.py``, which this package imports with
# every other reader module (a hook, so that the registry does not import a reader).
UrlOpener = Callable[[str, str, "float | None", bool], SlideReader]
_URL_OPENER: list[UrlOpener] = []


def register_url_opener(opener: UrlOpener) -> UrlOpener:
    """Decorator: ``opener(url, backend, mpp_override, fast_reads)`` opens every slide URL."""
    _URL_OPENER[:] = [opener]
    return opener


R = TypeVar("R", bound=type[ReaderBase])


def register_reader(name: str, *, auto_rank: int | None = None) -> Callable[[R], R]:
    """Class decorator: file ``cls`` under ``name`` (its ``backend``); with ``auto_rank``, ``auto``
    tries it, lower ranks first."""

    def add(cls: R) -> R:
        if name == AUTO:
            raise ValueError(f"slide reader name {name!r} is reserved (it tries the ranked readers in turn)")
        if name in READERS:
            raise ValueError(
                f"slide reader {name!r} is registered twice: {READERS[name].__qualname__} and {cls.__qualname__}"
            )
        cls.backend = name
        cls.auto_rank = auto_rank
        READERS[name] = cls
        return cls

    return add


def backend_names() -> list[str]:
    """Every name a config or ``--backend`` accepts: ``auto`` first, then the readers."""
    return [AUTO, *sorted(READERS)]


def check_backend(name: str) -> str:
    """``name`` if it is a known backend, else a ValueError naming the known ones."""
    if name != AUTO and name not in READERS:
        raise ValueError(f"unknown slide reader backend {name!r}; known backends: {', '.join(backend_names())}")
    return name


def auto_order() -> list[str]:
    """The readers ``auto`` tries, in order."""
    ranked = [(cls.auto_rank, name) for name, cls in READERS.items() if cls.auto_rank is not None]
    return [name for _, name in sorted(ranked)]


def open_slide(
    path: str | Path, backend: str = AUTO, mpp_override: float | None = None, fast_reads: bool = True
) -> SlideReader:
    """Open ``path`` with the named backend, or with the first of ``auto_order()`` that reads it.

    ``fast_reads=False`` keeps every read on the backend's own library (a reference for tests, and
    no probe read for callers that read little, such as heatmaps).
    """
    check_backend(backend)
    if "://" in str(path):  # s3://, gs://, https://: read in place (docs/storage.md)
        if not _URL_OPENER:
            raise SlideOpenError(f"{path}: no reader for slide URLs is registered")
        return _URL_OPENER[0](str(path), backend, mpp_override, fast_reads)
    facts = sniff(path)
    if facts.refusal:
        raise SlideRefusedError(f"{Path(path).name}: {facts.refusal}")
    if facts.damage:  # data past the end of the file: no reader gives correct pixels
        raise SlideRefusedError(f"{Path(path).name}: {facts.damage}")
    errors: list[str] = []
    for name in claimed_order(facts) if backend == AUTO else [backend]:
        try:
            return READERS[name](path, mpp_override=mpp_override, fast_reads=fast_reads)
        except BackendCannotOpen as exc:
            errors.append(exc.reason)
    raise SlideOpenError(f"cannot open {Path(path)}: " + "; ".join(errors))


def claimed_order(facts: FileFacts) -> list[str]:
    """``auto``'s order for one file: readers that claim its format first, then the ranked ones."""
    claimed = [name for name, cls in sorted(READERS.items()) if cls.claims(facts)]
    return claimed + [name for name in auto_order() if name not in claimed]
