"""All protocols on one encoder's embeddings: the function ``evaluate``, the benchmark and the
pretraining monitor share, so a figure means the same wherever it is shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.metrics import confusion_matrix

from wsi_ssl.evaluate.protocols.fewshot import fewshot_proba
from wsi_ssl.evaluate.protocols.knn import knn_proba
from wsi_ssl.evaluate.protocols.linear import LinearProbe, LinearSchedule, train_linear
from wsi_ssl.evaluate.protocols.metrics import scores, spread


@dataclass
class Embeddings:
    """Features and labels of the three splits."""

    train: np.ndarray
    y_train: np.ndarray
    val: np.ndarray
    y_val: np.ndarray
    test: np.ndarray
    y_test: np.ndarray
    n_classes: int


@dataclass
class SuiteResult:
    protocols: dict[str, Any] = field(default_factory=dict)  # name -> {"metrics": spread, "per_seed": [...]}
    probes: list[LinearProbe] = field(default_factory=list)  # one per seed, for the robustness re-scoring
    confusion: list[list[int]] = field(default_factory=list)  # linear probe, first seed, test split


def _entry(per_seed: list[dict[str, float]], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"metrics": spread(per_seed), "per_seed": per_seed, **(extra or {})}


def run_protocols(
    emb: Embeddings,
    seeds: Sequence[int],
    protocols: Sequence[str] = ("linear", "knn", "fewshot"),
    schedule: LinearSchedule | None = None,
    k: int = 20,
    shots: Sequence[int] = (1, 2, 4, 8, 16),
) -> SuiteResult:
    out = SuiteResult()
    c = emb.n_classes
    if "linear" in protocols:
        per_seed = []
        for seed in seeds:
            probe = train_linear(emb.train, emb.y_train, emb.val, emb.y_val, c, seed, schedule or LinearSchedule())
            proba = probe.predict_proba(emb.test)
            per_seed.append(
                {**scores(emb.y_test, proba, c), "val_balanced_accuracy": probe.best_val, "steps": probe.steps}
            )
            out.probes.append(probe)
            if not out.confusion:
                out.confusion = confusion_matrix(emb.y_test, proba.argmax(1), labels=np.arange(c)).tolist()
        out.protocols["linear"] = _entry(per_seed)
    if "knn" in protocols:
        # kNN has no randomness: one score, repeated per seed so every row has the same seed list.
        knn = scores(emb.y_test, knn_proba(emb.train, emb.y_train, emb.test, c, k), c)
        out.protocols["knn"] = _entry([dict(knn) for _ in seeds], {"k": k, "note": "deterministic: std is 0"})
    if "fewshot" in protocols:
        for n in shots:
            per_seed = [scores(emb.y_test, fewshot_proba(emb.train, emb.y_train, emb.test, c, n, s), c) for s in seeds]
            out.protocols[f"fewshot_{n}"] = _entry(per_seed, {"shots": n})
    return out


def rescore(probes: Sequence[LinearProbe], x: np.ndarray, y: np.ndarray, n_classes: int) -> list[dict[str, float]]:
    """The trained probes (one per seed) scored on other test features, e.g. shifted patches."""
    return [scores(y, p.predict_proba(x), n_classes) for p in probes]
