"""The protocols held to scikit-learn, and the robustness index on constructed neighbourhoods."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, f1_score, roc_auc_score
from sklearn.neighbors import KNeighborsClassifier

from wsi_ssl.evaluate.protocols.fewshot import draw_shots, fewshot_proba
from wsi_ssl.evaluate.protocols.knn import knn_proba
from wsi_ssl.evaluate.protocols.linear import LinearSchedule, train_linear
from wsi_ssl.evaluate.protocols.metrics import scores, spread
from wsi_ssl.evaluate.protocols.suite import Embeddings, run_protocols
from wsi_ssl.evaluate.robustness_index import robustness_index


def blobs(n: int, c: int = 4, d: int = 16, sep: float = 1.5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).normal(size=(c, d)) * sep
    y = rng.integers(0, c, n)
    return (centres[y] + rng.normal(size=(n, d))).astype(np.float32), y


def test_knn_matches_sklearn_cosine_k20() -> None:
    x, y = blobs(300, sep=0.6)
    q, _ = blobs(200, sep=0.6, seed=1)
    ours = knn_proba(x, y, q, 4, k=20)
    ref = KNeighborsClassifier(n_neighbors=20, metric="cosine", algorithm="brute").fit(x, y)
    np.testing.assert_allclose(ours, ref.predict_proba(q), atol=1e-6)


def test_scores_match_sklearn() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 100)
    p = rng.dirichlet(np.ones(3), 100)
    s = scores(y, p, 3)
    assert s["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, p.argmax(1)))
    assert s["macro_f1"] == pytest.approx(f1_score(y, p.argmax(1), average="macro"))
    assert s["auroc"] == pytest.approx(roc_auc_score(y, p, multi_class="ovr"))
    yb = rng.integers(0, 2, 50)
    pb = rng.dirichlet(np.ones(2), 50)
    assert scores(yb, pb, 2)["auroc"] == pytest.approx(roc_auc_score(yb, pb[:, 1]))
    sp = spread([{"m": 1.0}, {"m": 2.0}, {"m": 3.0}])
    assert sp["m"] == {"mean": 2.0, "std": 1.0}


def test_fewshot_draws_n_per_class_and_matches_sklearn() -> None:
    x, y = blobs(400)
    idx = draw_shots(y, 4, seed=3)
    assert np.bincount(y[idx]).tolist() == [4, 4, 4, 4]
    assert not np.array_equal(idx, draw_shots(y, 4, seed=4))
    q, yq = blobs(100, seed=2)
    from sklearn.preprocessing import StandardScaler

    sc = StandardScaler().fit(x[idx])
    ref = LogisticRegression(C=1.0, max_iter=1000).fit(sc.transform(x[idx]), y[idx]).predict_proba(sc.transform(q))
    np.testing.assert_allclose(fewshot_proba(x, y, q, 4, 4, seed=3), ref, atol=1e-8)


def test_linear_probe_learns_and_stops_early() -> None:
    x, y = blobs(600, sep=1.0)
    xv, yv = blobs(200, sep=1.0, seed=5)
    xt, yt = blobs(300, sep=1.0, seed=6)
    probe = train_linear(x, y, xv, yv, 4, seed=0, schedule=LinearSchedule(lr=1e-2, max_steps=3000, min_check_steps=20))
    assert probe.steps < 3000  # early stopping on validation ended it
    acc = balanced_accuracy_score(yt, probe.predict_proba(xt).argmax(1))
    ref = LogisticRegression(max_iter=2000).fit(x, y)
    assert acc > balanced_accuracy_score(yt, ref.predict(xt)) - 0.03  # as good as the convex optimum
    again = train_linear(x, y, xv, yv, 4, seed=0, schedule=LinearSchedule(lr=1e-2, max_steps=3000, min_check_steps=20))
    np.testing.assert_array_equal(again.predict_proba(xt), probe.predict_proba(xt))  # seeded


def test_suite_records_every_seed() -> None:
    x, y = blobs(300)
    emb = Embeddings(x[:200], y[:200], x[200:240], y[200:240], x[240:], y[240:], 4)
    r = run_protocols(emb, [0, 1, 2, 3, 4], schedule=LinearSchedule(max_steps=200, min_check_steps=10), shots=(1, 2))
    assert set(r.protocols) == {"linear", "knn", "fewshot_1", "fewshot_2"}
    assert all(len(v["per_seed"]) == 5 for v in r.protocols.values())
    assert len(r.probes) == 5 and np.asarray(r.confusion).sum() == 60
    assert r.protocols["fewshot_1"]["metrics"]["balanced_accuracy"]["std"] > 0


def test_robustness_index_extremes() -> None:
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 40)
    site = np.tile(np.repeat(["a", "b"], 20), 2)
    by_class = np.eye(4)[y] + 0.01 * rng.normal(size=(80, 4))
    by_site = np.eye(4)[2 + (site == "b")] + 0.01 * rng.normal(size=(80, 4))
    assert robustness_index(by_class, y, site, k=5) > 0.95
    assert robustness_index(by_site, y, site, k=5) < 0.05
    assert np.isnan(robustness_index(by_class, y, np.array(["a"] * 80)))
