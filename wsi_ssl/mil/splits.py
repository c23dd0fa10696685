"""Patient-grouped, stratified cross-validation splits.

Folds are drawn over bags with sklearn's StratifiedGroupKFold, grouped by patient (so a patient
with several slide-level bags never sits on both sides) and stratified on what the task kind
gives (``Task.strata``: the class, the event indicator, or quantile bins of a regression
target). The inner validation split used for early
stopping is drawn the same way from the training fold only.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from wsi_ssl.mil.tasks import get_task


class SplitError(ValueError):
    """Folds that would break the rules: a shared patient, or too few members to stratify."""


@dataclass
class Fold:
    index: int
    train: np.ndarray  # bag indices used for fitting
    val: np.ndarray  # inner validation (early stopping), drawn from the training fold
    test: np.ndarray  # out-of-fold bags scored by this fold's model


def assert_disjoint_patients(patients: np.ndarray, *parts: np.ndarray) -> None:
    """Raise if any patient has bags in more than one of the index sets."""
    seen: dict[str, int] = {}
    for j, part in enumerate(parts):
        for p in set(patients[part].tolist()):
            if p in seen and seen[p] != j:
                raise SplitError(
                    f"patient {p!r} appears in two splits (sets {seen[p]} and {j}): splits must be by patient"
                )
            seen[p] = j


def _group_kfold(strata: np.ndarray, groups: np.ndarray, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    patients_per_stratum = Counter(s for s, _ in {(int(s), str(g)) for s, g in zip(strata, groups)})
    small = {c: n for c, n in sorted(patients_per_stratum.items()) if n < k}
    if small:
        raise SplitError(f"stratum/class with fewer patients than folds ({k}): {small}")
    skf = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    return [(tr, te) for tr, te in skf.split(np.zeros(len(strata)), strata, groups)]


def make_folds(
    task: str,
    targets: np.ndarray,
    patients: np.ndarray,
    n_folds: int,
    val_fraction: float,
    seed: int = 0,
    predefined: np.ndarray | None = None,
) -> list[Fold]:
    """K outer folds, each with an inner validation split taken from its training part.

    ``predefined`` (one fold number per bag, from the slide table's ``fold`` column) replaces
    the random outer split. The inner split is skipped when ``val_fraction`` is 0 or the
    training fold is too small to stratify it.
    """
    strata = get_task(task).strata(targets)
    patients = np.asarray(patients).astype(str)
    if predefined is not None:
        ids = sorted(set(predefined.tolist()))
        outer = [(np.flatnonzero(predefined != f), np.flatnonzero(predefined == f)) for f in ids]
    else:
        outer = _group_kfold(strata, patients, n_folds, seed)
    folds: list[Fold] = []
    for i, (train, test) in enumerate(outer):
        val = np.empty(0, dtype=int)
        if val_fraction > 0:
            k_inner = max(2, int(round(1.0 / val_fraction)))
            try:
                inner_tr, inner_val = _group_kfold(strata[train], patients[train], k_inner, seed + 1 + i)[0]
                train, val = train[inner_tr], train[inner_val]
            except SplitError:
                pass  # too few patients per stratum for an inner split: train without early stopping
        assert_disjoint_patients(patients, train, val, test)
        folds.append(Fold(index=i, train=np.sort(train), val=np.sort(val), test=np.sort(test)))
    return folds
