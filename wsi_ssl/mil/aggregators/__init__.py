"""MIL aggregators: one module per kind behind one interface.

- ``base.py``: the :class:`Aggregator` interface (``forward(h, mask, head) -> AggOutput``; padding
  must never change a bag's output) and masking helpers.
- ``registry.py``: ``@register_aggregator("kind")``, :func:`build_aggregator`,
  :func:`aggregator_names` (the kinds ``aggregator.kind`` accepts).
- ``mean.py``, ``abmil.py``, ``dsmil.py``, ``transformer.py``, ``transmil.py``: the kinds.

To add an aggregator, add one module here that subclasses :class:`Aggregator` and registers a
builder with ``@register_aggregator("name")``, plus its test (``tests/mil/test_aggregators.py``
runs the shared padding and gradient checks over every registered kind). Every module of this
package is imported below, so the new kind reaches configs by itself.
"""

from __future__ import annotations

import importlib
import pkgutil

from wsi_ssl.mil.aggregators.base import AggOutput, Aggregator, masked_softmax
from wsi_ssl.mil.aggregators.registry import (
    aggregator_names,
    build_aggregator,
    check_aggregator_config,
    register_aggregator,
)

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")
del _module

__all__ = [
    "AggOutput",
    "Aggregator",
    "aggregator_names",
    "build_aggregator",
    "check_aggregator_config",
    "masked_softmax",
    "register_aggregator",
]
