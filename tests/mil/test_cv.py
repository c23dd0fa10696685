"""Cross-validation through the library API: multi-class, slide-level bags grouped by patient."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from wsi_ssl.mil.bags import Bag, load_bags
from wsi_ssl.mil.config import MilConfig
from wsi_ssl.mil.cv import run_cv
from wsi_ssl.mil.model import model_meta
from wsi_ssl.mil.table import target_array, validate_slide_table
from wsi_ssl.mil.tasks import get_task

FAST = {
    "aggregator": {"hidden_dim": 16, "attn_dim": 8, "dropout": 0.0},
    "train": {"epochs": 15, "lr": 0.01},
    "eval": {"folds": 3, "bootstrap": 10},
}


def test_three_classes_with_dsmil(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    bags = []
    for i in range(45):
        label = i % 3
        x = rng.normal(size=(int(rng.integers(10, 30)), 6)).astype(np.float32)
        x[:3, label] += 4.0  # a few instances carry the class
        bags.append(Bag(key=f"b{i}", patient_id=f"p{i}", features=x, target=np.asarray(label)))
    cfg = MilConfig.model_validate({**FAST, "aggregator": {**FAST["aggregator"], "kind": "dsmil"}})
    res = run_cv(
        cfg, model_meta(6, cfg.aggregator, "classification", ["a", "b", "c"], "cox", 0), bags, tmp_path / "run"
    )
    probs = res.oof[["prob_a", "prob_b", "prob_c"]].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert res.metrics["oof"]["auroc"]["value"] > 0.8
    assert len(res.oof_scores) == 45


def test_slide_bags_keep_a_patient_in_one_fold(tmp_path: Path, make_cohort) -> None:  # type: ignore[no-untyped-def]
    feats, df = make_cohort(tmp_path, n_patients=12, slides_per_patient=3)
    cfg = MilConfig.model_validate({**FAST, "data": {"group_by": "slide"}, "train": {"epochs": 2}})
    df = validate_slide_table(df, cfg.task, feats, 3, "slide")
    bags = load_bags(df, feats, target_array(df, cfg.task, get_task(cfg.task.kind).classes(df, cfg.task)), "slide")
    assert len(bags) == 36
    res = run_cv(
        cfg,
        model_meta(bags[0].features.shape[1], cfg.aggregator, "classification", ["neg", "pos"], "cox", 0),
        bags,
        tmp_path / "run",
    )
    assert (res.oof.groupby("patient_id")["fold"].nunique() == 1).all()
