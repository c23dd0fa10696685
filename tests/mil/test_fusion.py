"""Every fusion kind trains and predicts on padded, batched bags, for every task and survival loss."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from wsi_ssl.mil.bags import Bag, collate
from wsi_ssl.mil.clinical.tables import build_spec, side_rows
from wsi_ssl.mil.config import MilConfig
from wsi_ssl.mil.fusion import fusion_names
from wsi_ssl.mil.model import model_meta
from wsi_ssl.mil.train import fit, predict_bags

TASKS: dict[str, dict[str, Any]] = {
    "classification": {"kind": "classification"},
    "regression": {"kind": "regression"},
    "cox": {"kind": "survival", "survival_loss": "cox"},
    "weighted_cox": {"kind": "survival", "survival_loss": "cox", "cox_weighting": "balanced"},
    "discrete": {"kind": "survival", "survival_loss": "discrete", "n_bins": 3},
}


def _bags(task: str, n: int = 12, dim: int = 6) -> tuple[list[Bag], Any]:
    rng = np.random.default_rng(0)
    table = pd.DataFrame(
        {
            "patient_id": [f"P{i}" for i in range(n)],
            "age": np.where(np.arange(n) % 4 == 0, np.nan, rng.normal(60, 10, n)),
            "stage": [None if i % 5 == 0 else "I II III".split()[i % 3] for i in range(n)],
        }
    )
    omics = pd.DataFrame(rng.normal(size=(n, 4)), index=table["patient_id"], columns=list("abcd")).iloc[2:]
    spec = build_spec(table, ["age", "stage"], omics=omics)
    side = side_rows(table, spec, omics)
    bags = []
    for i in range(n):
        target: np.ndarray
        if task == "classification":
            target = np.asarray(i % 2)
        elif task == "regression":
            target = np.asarray(float(rng.normal()))
        else:
            target = np.asarray([float(rng.exponential(10) + 1), float(i % 3 != 0)])
        x = rng.normal(size=(int(rng.integers(3, 20)), dim)).astype(np.float32)  # bags of different lengths
        bags.append(Bag(f"P{i}", f"P{i}", x, target, [f"P{i}"], side=side[i]))
    return bags, spec


@pytest.mark.parametrize("task", list(TASKS))
@pytest.mark.parametrize("fusion", [k for k in fusion_names() if k != "none"])
def test_fusion_trains_and_predicts_on_padded_batches(fusion: str, task: str) -> None:
    bags, spec = _bags(TASKS[task]["kind"])
    cfg = MilConfig.model_validate(
        {
            "task": TASKS[task],
            "aggregator": {"kind": "abmil", "hidden_dim": 8, "attn_dim": 4, "dropout": 0.0},
            "model": {"fusion": {"kind": fusion, "hidden_dim": 4, "dropout": 0.0, "modality_dropout": 0.5}},
            "data": {"covariates": ["age", "stage"], "batch_size": 5},
            "train": {"epochs": 2, "val_fraction": 0.0, "bag_forward": "batched"},
        }
    )
    classes = ["0", "1"] if task == "classification" else None
    t = cfg.task
    meta = model_meta(6, cfg.aggregator, t.kind, classes, t.survival_loss, t.n_bins)
    meta["fusion"], meta["side"] = cfg.model.fusion.model_dump(mode="json"), spec.to_json()
    res = fit(cfg, meta, bags, [], seed=0)
    model = res.model.eval()
    assert all(np.isfinite(r["train_loss"]) for r in res.history)
    assert model.side_encoder is not None and model.side_encoder.std[0] != 1.0  # fitted on the training bags
    batched = predict_bags(model, bags, batch_size=5)
    one_by_one = predict_bags(model, bags, batch_size=1)
    for key in batched:  # padding changes nothing: a bag's prediction is the same in any batch
        np.testing.assert_allclose(batched[key], one_by_one[key], rtol=1e-4, atol=1e-5)
        assert np.isfinite(batched[key]).all()
    b = collate(bags[:5])
    with torch.no_grad():
        packed = model.forward_packed(b.features, b.lengths, b.mask, b.side)
        per_bag = model.forward_per_bag(b.features, b.lengths, b.side)
    torch.testing.assert_close(packed, per_bag, rtol=1e-4, atol=1e-5)
    # The side inputs are used: other covariates, other prediction.
    shuffled = [Bag(x.key, x.patient_id, x.features, x.target, side=bags[-1 - i].side) for i, x in enumerate(bags)]
    other = predict_bags(model, shuffled, batch_size=5)
    key = next(iter(batched))
    assert not np.allclose(batched[key], other[key])


def test_fusion_config_checks() -> None:
    with pytest.raises(ValueError, match="DSMIL"):
        MilConfig.model_validate(
            {"aggregator": {"kind": "dsmil"}, "model": {"fusion": "late"}, "data": {"covariates": ["a"]}}
        )
    with pytest.raises(ValueError, match="n_heads must divide"):
        MilConfig.model_validate(
            {
                "aggregator": {"hidden_dim": 30},
                "model": {"fusion": {"kind": "cross_attention", "n_heads": 4}},
                "data": {"covariates": ["a"]},
            }
        )
