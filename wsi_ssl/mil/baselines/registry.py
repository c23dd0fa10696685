"""Linear baseline models by task kind: ``task.kind`` -> a function fitted on one training fold.

A fitter takes standardised training rows and targets (the task's numbers: class index, value,
or [time, event]) and the rows to predict, and returns predictions under the names the task's
metrics read (``prob`` / ``value`` / ``risk`` and ``survival_at_times``), so a baseline is scored
by exactly the code that scores the MIL model. A new task kind adds one ``@register_linear``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LinearSettings:
    """Penalties of the linear baselines (``eval.pooled_linear`` in the MIL config)."""

    c: float = 1.0  # logistic regression: inverse L2 strength (scikit-learn's C)
    alpha: float = 1.0  # ridge and Cox: L2 penalty


LinearFitter = Callable[
    [np.ndarray, np.ndarray, np.ndarray, int, "np.ndarray | None", LinearSettings], dict[str, np.ndarray]
]

_FITTERS: dict[str, LinearFitter] = {}


def register_linear(kind: str) -> Callable[[LinearFitter], LinearFitter]:
    """Decorator: file ``fn(x_train, y_train, x_test, n_classes, times, settings)`` under ``kind``."""

    def deco(fn: LinearFitter) -> LinearFitter:
        if kind in _FITTERS:
            raise ValueError(f"linear baseline for task kind {kind!r} is registered twice")
        _FITTERS[kind] = fn
        return fn

    return deco


def linear_kinds() -> list[str]:
    return sorted(_FITTERS)


def get_linear(kind: str) -> LinearFitter:
    """The linear model of task kind ``kind``; a ValueError naming the known kinds otherwise."""
    try:
        return _FITTERS[kind]
    except KeyError:
        raise ValueError(f"no linear baseline for task kind {kind!r}; known: {', '.join(linear_kinds())}") from None
