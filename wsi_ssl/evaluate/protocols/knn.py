"""kNN on frozen embeddings: k=20, cosine similarity, majority vote (ties: the nearer neighbours' class).

The k=20 cosine kNN is the DINO and eva-style frozen-feature check; a plain majority vote makes
it the same classifier as scikit-learn's ``KNeighborsClassifier(n_neighbors=20, metric="cosine")``,
which the tests hold it to. Computed with one matrix product per block of queries.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def knn_proba(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, n_classes: int, k: int = 20) -> np.ndarray:
    """Class vote shares ``[N_test, n_classes]`` from the ``k`` most cosine-similar training embeddings."""
    k = min(k, len(x_train))
    xt = F.normalize(torch.from_numpy(np.asarray(x_train, np.float32)), dim=1)
    yt = torch.from_numpy(np.asarray(y_train, np.int64))
    out = []
    for i in range(0, len(x_test), 2048):
        q = F.normalize(torch.from_numpy(np.asarray(x_test[i : i + 2048], np.float32)), dim=1)
        idx = (q @ xt.T).topk(k, dim=1).indices
        votes = torch.zeros(len(q), n_classes).scatter_add_(1, yt[idx], torch.ones(idx.shape))
        # sklearn breaks ties by the lowest class id; so does argmax over these shares
        out.append(votes / k)
    return torch.cat(out).numpy() if out else np.zeros((0, n_classes), np.float32)
