"""Step-indexed schedules: pure functions of the global step.

Because every value (LR, weight decay, EMA momentum, teacher temperature) is recomputed from the
step alone, a run resumed from a checkpoint continues each schedule exactly where it stopped.
"""

from __future__ import annotations

import math


def cosine(step: int, total: int, start: float, end: float) -> float:
    """Half-cosine from ``start`` at step 0 to ``end`` at ``total`` (held at ``end`` after)."""
    if total <= 0:
        return end
    t = min(max(step, 0), total) / total
    return end + 0.5 * (start - end) * (1.0 + math.cos(math.pi * t))


def warmup_cosine(step: int, total: int, warmup: int, peak: float, final: float) -> float:
    """Linear warm-up from 0 to ``peak`` over ``warmup`` steps, then cosine down to ``final``."""
    if warmup > 0 and step < warmup:
        return peak * (step + 1) / warmup
    return cosine(step - warmup, max(total - warmup, 1), peak, final)


def warmup_constant_cooldown(step: int, total: int, warmup: int, cooldown: int, peak: float, final: float) -> float:
    """The "infinite" schedule: linear warm-up, constant ``peak``, then linear cool-down.

    Suited to continued pretraining: the constant phase can be extended (or resumed from) at any
    point, and the cool-down runs over the last ``cooldown`` steps before ``total``.
    """
    if warmup > 0 and step < warmup:
        return peak * (step + 1) / warmup
    cool_start = total - cooldown
    if cooldown <= 0 or step < cool_start:
        return peak
    t = min((step - cool_start) / cooldown, 1.0)
    return peak + (final - peak) * t


def linear_warmup(step: int, warmup: int, start: float, end: float) -> float:
    """Linear from ``start`` to ``end`` over ``warmup`` steps, then ``end`` (DINO teacher temperature)."""
    if warmup <= 0 or step >= warmup:
        return end
    return start + (end - start) * step / warmup
