"""What a study sees of a feature file's attributes: no paths of the server's file system.

Feature files record where they came from (``tile_store: /abs/path/slide.zarr``); served as
they are, those values tell every study the lab's directory layout. A value that names a
location is shown relative to the cohort folder when it lies inside it, and as null (the key
stays, so clients see it exists) when it does not: an absolute path elsewhere, a home-relative
path, a Windows path, or a URL (``s3://bucket/...``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath
from typing import Any

_LOCATION_RE = re.compile(r"^(/|~|[A-Za-z]:[\\/]|\\\\|[A-Za-z][A-Za-z0-9+.-]*://)")


def public_value(value: Any, cohort_folder: Path) -> Any:
    """``value`` with a location made relative to ``cohort_folder``, or None outside it."""
    if not isinstance(value, str) or not _LOCATION_RE.match(value):
        return value
    if not value.startswith("/"):
        return None
    folder = os.path.realpath(cohort_folder)
    target = os.path.normpath(value)
    for base in {os.path.normpath(str(cohort_folder.absolute())), folder}:
        if target == base or target.startswith(base + os.sep):
            relative = PurePosixPath(os.path.relpath(target, base)).as_posix()
            return relative if ".." not in PurePosixPath(relative).parts else None
    return None


def public_attrs(attrs: dict[str, Any], cohort_folder: Path) -> dict[str, Any]:
    """A copy of a feature file's attributes as served (see the module docstring)."""
    return {key: public_value(value, cohort_folder) for key, value in attrs.items()}
