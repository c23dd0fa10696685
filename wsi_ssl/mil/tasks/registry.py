"""The one list of MIL task kinds: kind -> :class:`~wsi_ssl.mil.tasks.base.Task`.

A task module decorates its class with ``@register_task``; the package imports every module in
``wsi_ssl/mil/tasks/`` on first import (importing this module imports the package first), so
adding a task kind is one new file (plus its test). ``task.kind`` in a MIL config is validated
against :func:`task_kinds`, and an unknown kind is an error naming the known ones.
"""

from __future__ import annotations

from typing import TypeVar

from wsi_ssl.mil.tasks.base import Task

_TASKS: dict[str, Task] = {}

T = TypeVar("T", bound=type[Task])


def register_task(cls: T) -> T:
    """Class decorator: file one instance of ``cls`` under ``cls.kind``."""
    kind = cls.kind
    if kind in _TASKS:
        raise ValueError(
            f"task kind {kind!r} is registered twice ({type(_TASKS[kind]).__qualname__} and {cls.__qualname__})"
        )
    _TASKS[kind] = cls()
    return cls


def task_kinds() -> list[str]:
    """Every kind a config accepts, sorted."""
    return sorted(_TASKS)


def get_task(kind: str) -> Task:
    """The task registered as ``kind``; a ValueError naming the known kinds otherwise."""
    try:
        return _TASKS[kind]
    except KeyError:
        raise ValueError(f"unknown task kind {kind!r}; known kinds: {', '.join(sorted(_TASKS))}") from None
