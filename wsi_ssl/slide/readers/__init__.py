"""Slide readers: one module per backend behind the ``SlideReader`` protocol.

- ``base.py``: the ``SlideReader`` protocol, ``ReaderBase`` (the backend-independent half), errors.
- ``registry.py``: ``READERS``, ``@register_reader``, ``open_slide(path, backend="auto")``.
- ``openslide.py``, ``tiffslide.py``: the two general backends; ``wsidicom.py`` (DICOM series over
  sub-folders), ``czi.py`` (Zeiss, pylibCZIrw), ``ome_zarr.py`` (NGFF), ``remote.py`` (slides at URLs: tiffslide with ranged
  reads, docs/storage.md); ``native_tiff.py``:
  OpenSlide's verified fast path for tiled TIFFs (not a backend of its own).
- ``../sniff.py`` reads headers before any reader: refusals (fluorescence, unsupported formats),
  truncation, and the format a reader ``claims``.

To add a backend, add one module here that subclasses ``ReaderBase`` (or implements the protocol)
and decorates the class with ``@register_reader("name")``, plus its test. Every module of this
package is imported below, so the new name reaches configs and ``--backend`` choices by itself.
"""

from __future__ import annotations

import importlib
import pkgutil

from wsi_ssl.slide.readers.base import (
    LevelInfo,
    MissingMPPError,
    ReaderBase,
    SlideOpenError,
    SlideReader,
    SlideRefusedError,
)
from wsi_ssl.slide.readers.registry import (
    READERS,
    backend_names,
    check_backend,
    open_slide,
    register_reader,
)

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")
del _module

__all__ = [
    "READERS",
    "LevelInfo",
    "MissingMPPError",
    "ReaderBase",
    "SlideOpenError",
    "SlideReader",
    "SlideRefusedError",
    "backend_names",
    "check_backend",
    "open_slide",
    "register_reader",
]
