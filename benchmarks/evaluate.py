"""``wsi-ssl evaluate``'s protocols on 10,000 cached embeddings: all three, 5 seeds, and a baseline.

Writes 10,000 synthetic 384-d embeddings of 9 classes (NCT-CRC's shape: ViT-S width, 9 tissue
classes) into the embedding cache format (h5, ``wsi_ssl.evaluate.cache``), reads them back as
``evaluate`` does, and times, in one process:
(a) our protocols as ``evaluate`` runs them (``run_protocols``): eva's linear probe with early
    stopping, kNN (k=20, cosine) and few-shot logistic regression at 1/2/4/8/16 shots, 5 seeds;
(b) the baseline many evaluation scripts use: scikit-learn's ``LogisticRegression`` on all
    training embeddings (lbfgs, 1,000 iterations, 5 seeds) and ``KNeighborsClassifier``
    (k=20, cosine, brute force), with the same few-shot fits.
Target for (a): under 2 minutes on the 2-core CPU (issue #15). Prints both times, their ratio and
the balanced accuracies, which must agree to within a few points (the linear probes differ in
optimiser, not in what they can learn).

    nice -n 10 .venv/bin/python benchmarks/evaluate.py
    .venv/bin/python benchmarks/evaluate.py --n 2000        # quick look
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler

from wsi_ssl.evaluate.cache import cache_path, read_cached, write_cached
from wsi_ssl.evaluate.protocols.fewshot import fewshot_proba
from wsi_ssl.evaluate.protocols.suite import Embeddings, run_protocols

SEEDS = [0, 1, 2, 3, 4]
SHOTS = [1, 2, 4, 8, 16]


def make_embeddings(n: int, dim: int = 384, classes: int = 9, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, dim)) * 0.25
    y = rng.integers(0, classes, n)
    return (centres[y] + rng.normal(size=(n, dim))).astype(np.float32), y


def cached(x: np.ndarray, folder: Path) -> np.ndarray:
    parts = {"benchmark": "evaluate", "n": len(x)}
    index = np.arange(len(x))
    write_cached(cache_path(folder, parts), index, x, parts)
    got = read_cached(cache_path(folder, parts), index)
    assert got is not None
    return got


def split(x: np.ndarray, y: np.ndarray) -> Embeddings:
    n = len(x)
    a, b = int(n * 0.7), int(n * 0.8)
    return Embeddings(x[:a], y[:a], x[a:b], y[a:b], x[b:], y[b:], int(y.max()) + 1)


def ours(emb: Embeddings) -> dict[str, float]:
    out: dict[str, float] = {}
    for proto in ("linear", "knn", "fewshot"):
        t0 = time.perf_counter()
        r = run_protocols(emb, SEEDS, (proto,), shots=SHOTS)
        print(f"  ours: {proto:8s} {time.perf_counter() - t0:6.1f} s", flush=True)
        out.update({k: v["metrics"]["balanced_accuracy"]["mean"] for k, v in r.protocols.items()})
    return out


def baseline(emb: Embeddings) -> dict[str, float]:
    out: dict[str, float] = {}
    sc = StandardScaler().fit(emb.train)
    xt, xs = sc.transform(emb.train), sc.transform(emb.test)
    accs = []
    for seed in SEEDS:
        clf = LogisticRegression(max_iter=1000, random_state=seed).fit(xt, emb.y_train)
        accs.append(balanced_accuracy_score(emb.y_test, clf.predict(xs)))
    out["linear"] = float(np.mean(accs))
    knn = KNeighborsClassifier(n_neighbors=20, metric="cosine", algorithm="brute").fit(emb.train, emb.y_train)
    out["knn"] = float(balanced_accuracy_score(emb.y_test, knn.predict(emb.test)))
    for n in SHOTS:
        accs = [
            balanced_accuracy_score(
                emb.y_test, fewshot_proba(emb.train, emb.y_train, emb.test, emb.n_classes, n, s).argmax(1)
            )
            for s in SEEDS
        ]
        out[f"fewshot_{n}"] = float(np.mean(accs))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000, help="embeddings (70 %% train, 10 %% val, 20 %% test)")
    args = ap.parse_args()
    x, y = make_embeddings(args.n)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        emb = split(cached(x, Path(tmp)), y)
        t_cache = time.perf_counter() - t0
    t0 = time.perf_counter()
    a = ours(emb)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    b = baseline(emb)
    t_base = time.perf_counter() - t0
    print(
        f"{args.n} embeddings, {len(SEEDS)} seeds; cache write+read {t_cache:.2f} s; load average {os.getloadavg()[0]:.1f}"
    )
    print(f"(a) wsi-ssl evaluate protocols: {t_ours:.1f} s  (target < 120 s)")
    print(f"(b) scikit-learn baseline:      {t_base:.1f} s  (ratio a/b {t_ours / t_base:.2f})")
    for k in a:
        print(f"  {k:12s} ours {a[k]:.3f}  baseline {b[k]:.3f}")


if __name__ == "__main__":
    main()
