"""Metrics against scikit-survival / scikit-learn and by hand; bag batching and subsampling."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score
from sksurv.metrics import concordance_index_ipcw, integrated_brier_score
from sksurv.util import Surv

from wsi_ssl.mil.bags import Bag, batch_indices, collate
from wsi_ssl.mil.metrics import bootstrap_ci, classification_metrics, survival_metrics
from wsi_ssl.mil.survival import breslow_baseline, cox_survival
from wsi_ssl.mil.tasks import get_task


def harrell_by_hand(time: np.ndarray, event: np.ndarray, risk: np.ndarray) -> float:
    conc = pairs = 0.0
    for i in range(len(time)):
        for j in range(len(time)):
            # comparable: i has the event first, or at the same time as a censored j (Harrell)
            if event[i] and (time[i] < time[j] or (time[i] == time[j] and not event[j])):
                pairs += 1
                conc += 1.0 if risk[i] > risk[j] else 0.5 if risk[i] == risk[j] else 0.0
    return conc / pairs


def test_survival_metrics_match_sksurv_and_hand_count() -> None:
    rng = np.random.default_rng(0)
    time = rng.exponential(10, 60).round(1) + 0.1
    event = (rng.random(60) < 0.7).astype(int)
    risk = -np.log(time) + rng.normal(0, 1, 60)
    times = np.percentile(time[event == 1], [20, 40, 60])
    base_t, base_h = breslow_baseline(risk, time, event)
    surv = cox_survival(risk, times, base_t, base_h)
    got = survival_metrics(time, event, risk, surv, times)
    y = Surv.from_arrays(event=event.astype(bool), time=time)
    assert got["c_index"] == pytest.approx(harrell_by_hand(time, event, risk), abs=1e-12)
    assert got["uno_c"] == pytest.approx(concordance_index_ipcw(y, y, risk, tau=times.max())[0])
    assert got["ibs"] == pytest.approx(integrated_brier_score(y, y, surv, times))
    assert 0.5 < got["c_index"] < 1.0 and 0.5 < got["td_auc"] <= 1.0


def test_breslow_baseline_matches_sksurv_coxph() -> None:
    from sksurv.linear_model import CoxPHSurvivalAnalysis

    rng = np.random.default_rng(1)
    x = rng.normal(size=(80, 2))
    time = rng.exponential(np.exp(-x[:, 0])) + 0.01
    event = (rng.random(80) < 0.8).astype(bool)
    cox = CoxPHSurvivalAnalysis(ties="breslow").fit(x, Surv.from_arrays(event=event, time=time))
    risk = cox.predict(x)
    t, h = breslow_baseline(risk, time, event)
    ref = cox.predict_survival_function(x[:3], return_array=True)
    ours = cox_survival(risk[:3], cox.unique_times_, t, h)
    np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-8)


def test_classification_metrics_and_bootstrap() -> None:
    y = np.array([0, 0, 1, 1, 1, 0, 1, 0])
    p1 = np.array([0.1, 0.6, 0.8, 0.4, 0.9, 0.2, 0.7, 0.3])
    prob = np.stack([1 - p1, p1], axis=1)
    m = classification_metrics(y, prob)
    assert m["auroc"] == pytest.approx(roc_auc_score(y, p1))
    assert m["accuracy"] == pytest.approx(6 / 8) and m["balanced_accuracy"] == pytest.approx(0.75)
    ci = get_task("classification").metrics(y, {"prob": prob}, n_boot=200)
    assert ci["auroc"]["ci_low"] <= ci["auroc"]["value"] <= ci["auroc"]["ci_high"]
    assert 150 < ci["auroc"]["n_boot"] <= 200  # resamples with one class are skipped


def test_bootstrap_of_a_constant_has_zero_width() -> None:
    ci = bootstrap_ci(lambda i: {"m": 1.0}, 10, 50)
    assert (ci["m"]["ci_low"], ci["m"]["ci_high"]) == (1.0, 1.0)


def _bags(sizes: list[int]) -> list[Bag]:
    return [
        Bag(key=str(i), patient_id=str(i), features=np.full((n, 3), i, np.float32), target=np.asarray(i))
        for i, n in enumerate(sizes)
    ]


def test_collate_pads_with_mask_and_subsamples_only_with_rng() -> None:
    bags = _bags([5, 50, 2])
    full = collate(bags, max_instances=10)
    assert full.x.shape == (3, 50, 3) and full.mask.sum(1).tolist() == [5, 50, 2]
    sub = collate(bags, max_instances=10, rng=np.random.default_rng(0))
    assert sub.mask.sum(1).tolist() == [5, 10, 2] and float(sub.x[1, :10].mean()) == 1.0


def test_batches_are_packed_in_the_stored_dtype_with_a_padded_view() -> None:
    bags = [
        Bag(key=str(i), patient_id=str(i), features=np.full((n, 3), i + 1, np.float16), target=np.asarray(i))
        for i, n in enumerate([3, 1, 2])
    ]
    b = collate(bags)
    assert b.features.dtype == torch.float16 and b.features.shape == (6, 3) and b.lengths == [3, 1, 2]
    assert b.features[:, 0].tolist() == [1, 1, 1, 2, 3, 3]
    assert b.x.dtype == torch.float32 and b.x[:, :, 0].tolist() == [[1, 1, 1], [2, 0, 0], [3, 3, 0]]
    assert b.mask.tolist() == [[True] * 3, [True, False, False], [True, True, False]]


def test_bags_stored_in_different_dtypes_are_packed_as_float32() -> None:
    bags = [
        Bag(key=str(i), patient_id=str(i), features=np.full((2, 3), 0.1, dt), target=np.asarray(0))
        for i, dt in enumerate([np.float16, np.float32])
    ]
    b = collate(bags)
    assert b.features.dtype == torch.float32
    torch.testing.assert_close(b.features[2:], torch.full((2, 3), 0.1))


@pytest.mark.parametrize("max_rows", [10**9, 1_000])
def test_instance_stats_are_numpy_mean_and_std_of_the_concatenated_rows(
    max_rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Block-wise float64 statistics equal numpy's over the concatenation, or over the same sample of it."""
    import wsi_ssl.mil.bags as bags_mod

    monkeypatch.setattr(bags_mod, "_STATS_BLOCK", 700)  # several blocks per bag
    rng = np.random.default_rng(1)
    bags = [
        Bag(
            key=str(i),
            patient_id=str(i),
            features=(rng.standard_normal((int(n), 5)) * 3 + 7).astype(np.float16),
            target=np.asarray(0),
        )
        for i, n in enumerate(rng.integers(1, 3000, 8))
    ]
    for b in bags:
        b.features[:, 2] = 1.0  # a constant feature: std 1, not 0
    rows = np.concatenate([b.features for b in bags]).astype(np.float64)
    if len(rows) > max_rows:
        rows = rows[np.random.default_rng(3).choice(len(rows), max_rows, replace=False)]
    mean, std = bags_mod.instance_stats(bags, max_rows=max_rows, seed=3)
    np.testing.assert_allclose(mean, rows.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(std[[0, 1, 3, 4]], rows.std(axis=0)[[0, 1, 3, 4]], rtol=1e-6)
    assert std[2] == 1.0 and mean[2] == 1.0


def test_every_bag_once_per_epoch_and_buckets_similar_sizes() -> None:
    sizes = list(np.random.default_rng(0).integers(1, 1000, 64))
    batches = batch_indices(sizes, 8, rng=np.random.default_rng(1))
    assert sorted(i for b in batches for i in b) == list(range(64))
    waste = sum(len(b) * max(sizes[i] for i in b) - sum(sizes[i] for i in b) for b in batches)
    assert waste < 0.25 * sum(sizes)
