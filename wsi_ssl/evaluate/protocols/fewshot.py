"""Few-shot logistic regression: ``n`` training patches per class (1, 2, 4, 8, 16), one draw per seed.

Features are standardised on the drawn shots and fitted with scikit-learn's L2 logistic
regression (lbfgs, C=1), the few-shot probe of the UNI and Virchow papers; the score is on the
whole test split, so the spread over seeds is the spread over which patches were drawn.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler


def draw_shots(y_train: np.ndarray, shots: int, seed: int) -> np.ndarray:
    """``shots`` indices per class (all of a class that has fewer), without replacement."""
    rng = np.random.default_rng(seed)
    picks = [
        rng.choice(np.nonzero(y_train == c)[0], min(shots, int((y_train == c).sum())), replace=False)
        for c in np.unique(y_train)
    ]
    return np.sort(np.concatenate(picks))


def fewshot_proba(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, n_classes: int, shots: int, seed: int
) -> np.ndarray:
    idx = draw_shots(y_train, shots, seed)
    scaler = StandardScaler().fit(x_train[idx])
    clf = LogisticRegression(C=1.0, max_iter=1000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(scaler.transform(x_train[idx]), y_train[idx])
    proba = np.zeros((len(x_test), n_classes))
    proba[:, clf.classes_] = clf.predict_proba(scaler.transform(x_test))
    return proba
