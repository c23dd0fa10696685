"""MIL task kinds: one module per kind behind one interface.

- ``base.py``: the :class:`Task` interface: a kind's targets (slide-table columns and checks),
  split strata, head size and predictions, training statistics and loss, metrics, prediction
  columns and plots.
- ``registry.py``: ``@register_task``, :func:`get_task`, :func:`task_kinds` (the kinds
  ``task.kind`` accepts).
- ``classification.py``, ``regression.py``, ``survival.py`` (Cox or discrete-time loss): the kinds.

To add a task kind, add one module here with a :class:`Task` subclass decorated with
``@register_task``, plus its test. Every module of this package is imported below, so the new
kind reaches configs by itself.
"""

from __future__ import annotations

import importlib
import pkgutil

from wsi_ssl.mil.tasks.base import Task, TaskSettings
from wsi_ssl.mil.tasks.registry import get_task, register_task, task_kinds

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")
del _module

__all__ = ["Task", "TaskSettings", "get_task", "register_task", "task_kinds"]
