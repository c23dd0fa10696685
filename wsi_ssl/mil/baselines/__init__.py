"""Simple models fitted beside every MIL run, on the same folds, so a run shows what it must beat.

- ``registry.py``: one linear model per task kind (``@register_linear``, :func:`get_linear`).
- ``linear.py``: the kinds: logistic regression, ridge, Cox proportional hazards.
- ``pooled.py``: the pooled linear baseline (mean and max of each bag's features, standardised on
  the training fold), filed as ``comparison.pooled_linear`` in ``metrics.json``.
"""

from __future__ import annotations

from wsi_ssl.mil.baselines import linear as _linear  # noqa: F401 - registers the task kinds
from wsi_ssl.mil.baselines.pooled import add_pooled_linear, pool_features, pooled_linear_oof
from wsi_ssl.mil.baselines.registry import get_linear, linear_kinds, register_linear

__all__ = ["add_pooled_linear", "get_linear", "linear_kinds", "pool_features", "pooled_linear_oof", "register_linear"]
