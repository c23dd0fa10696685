"""A PathoROB-style robustness index: do a patch's nearest neighbours share its class or its site?

For every patch, its ``k`` nearest neighbours (cosine) are counted as SO (same class, other site)
or OS (other class, same site); the index is ``sum SO / (sum SO + sum OS)`` over all patches.
An encoder that groups by biology scores near 1, one that groups by lab or scanner near 0
(Koemer et al. 2025, PathoROB). Needs at least two sites and two classes.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def robustness_index(features: np.ndarray, labels: np.ndarray, sites: np.ndarray, k: int = 10) -> float:
    x = F.normalize(torch.from_numpy(np.asarray(features, np.float32)), dim=1)
    y = np.asarray(labels)
    s = np.asarray(sites)
    if len(np.unique(s)) < 2 or len(np.unique(y)) < 2:
        return float("nan")
    k = min(k, len(x) - 1)
    sim = x @ x.T
    sim.fill_diagonal_(float("-inf"))
    idx = sim.topk(k, dim=1).indices.numpy()
    same_class = y[idx] == y[:, None]
    same_site = s[idx] == s[:, None]
    so = int((same_class & ~same_site).sum())
    os_ = int((~same_class & same_site).sum())
    return float(so / (so + os_)) if so + os_ else float("nan")
