"""The YAML files that ship inside the package (``configs/``, ``pipelines/``), found wherever it is installed.

Documented commands name them relative to a checkout (``--config configs/pretrain/tiny_cpu.yaml``,
``wsi-ssl run pipelines/quickstart.yaml``). Those paths must keep working from a pip-installed
wheel, or from a container whose working directory is not the checkout, so one rule resolves
every config path a user or a pipeline file gives: as written when it exists (a user's own file,
relative to their shell's directory, always wins), else the packaged copy for a path that starts
with one of the packaged folders. In a checkout ``configs`` and ``pipelines`` are links to the
same packaged folders, so both spellings reach the same file.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

PACKAGE = "wsi_ssl"
PACKAGED_DIRS = ("configs", "pipelines")


def package_root() -> Path:
    """The installed ``wsi_ssl`` folder (a real directory: stage commands receive plain file paths)."""
    root = resources.files(PACKAGE)
    if not isinstance(root, Path):  # a zipped install: paths could not be handed to the stage commands
        raise RuntimeError(f"{PACKAGE} is installed as {root!r}, not as files; install it with pip (not zipped)")
    return root


def packaged_path(*parts: str) -> Path:
    """A shipped file by its parts, e.g. ``packaged_path("configs", "tile", "default.yaml")``."""
    if not parts or parts[0] not in PACKAGED_DIRS:
        raise ValueError(f"{'/'.join(parts)!r} is not in a packaged folder; known: {', '.join(PACKAGED_DIRS)}")
    return package_root().joinpath(*parts)


def resolve_config_path(value: str | Path) -> Path:
    """``value`` as given when it exists (or is absolute), else its packaged copy when there is one.

    A path that exists nowhere is returned unchanged, so the caller's "file not found" names what
    the user typed.
    """
    path = Path(value).expanduser()
    if path.is_absolute() or path.exists():
        return path
    if path.parts and path.parts[0] in PACKAGED_DIRS:
        shipped = packaged_path(*path.parts)
        if shipped.exists():
            return shipped
    return path
