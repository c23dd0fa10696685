"""``train.search``: nested, chosen on outer training folds only, recorded per fold."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from pydantic import ValidationError

import wsi_ssl.mil.cv as cv_module
import wsi_ssl.mil.search as search_module
from wsi_ssl.config import ConfigError, load_config
from wsi_ssl.mil.bags import Bag
from wsi_ssl.mil.config import MilConfig
from wsi_ssl.mil.cv import run_cv
from wsi_ssl.mil.model import model_meta
from wsi_ssl.mil.train import fit

BASE: dict[str, Any] = {
    "aggregator": {"kind": "abmil", "hidden_dim": 8, "attn_dim": 4, "dropout": 0.0},
    "data": {"batch_size": 6},
    "train": {"epochs": 3, "lr": 0.01, "val_fraction": 0.0},
    "eval": {"folds": 3, "bootstrap": 0},
}


def _bags(n_patients: int = 18, per_patient: int = 1, seed: int = 0) -> list[Bag]:
    rng = np.random.default_rng(seed)
    bags = []
    for p in range(n_patients):
        label = p % 2
        for s in range(per_patient):
            x = rng.normal(size=(int(rng.integers(5, 12)), 6)).astype(np.float32)
            x[:2, 0] += 3.0 * label
            bags.append(Bag(key=f"p{p}_s{s}", patient_id=f"p{p}", features=x, target=np.asarray(label)))
    return bags


def _cfg(search: dict[str, Any], **train: Any) -> MilConfig:
    return MilConfig.model_validate({**BASE, "train": {**BASE["train"], **train, "search": search}})


def _meta(cfg: MilConfig) -> dict[str, Any]:
    return model_meta(6, cfg.aggregator, "classification", ["0", "1"], "cox", 0)


@pytest.mark.parametrize(
    ("search", "message"),
    [
        ({}, "lists no values"),
        ({"lr": [0.01, -1.0]}, "train.search.lr.1"),
        ({"dropout": [1.0]}, "train.search.dropout.0"),
        ({"epochs": [5, 5]}, "lists a value twice"),
        ({"lr": [1e-3, 1e-2], "epochs": [1, 2, 3], "max_candidates": 4}, "6 combinations"),
        ({"lr": [1e-3], "folds": 1}, "train.search.folds"),
        ({"lr": [1e-3], "bogus": 1}, "train.search.bogus"),
    ],
)
def test_bad_search_config_is_a_clear_error(search: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(MilConfig, None, {"train": {"search": search}})


def test_no_search_by_default() -> None:
    assert MilConfig().train.search is None
    with pytest.raises(ValidationError):
        MilConfig.model_validate({"train": {"search": {"criterion": "auc", "lr": [1e-3]}}})


def test_one_long_fit_scores_every_shorter_epoch_count() -> None:
    """What the search relies on: the model after e epochs of a longer fit is a fit of e epochs."""
    bags = _bags(12)
    cfg = _cfg({"epochs": [2, 4]})
    snap: dict[int, dict[str, torch.Tensor]] = {}
    fit(
        cfg.model_copy(update={"train": cfg.train.model_copy(update={"epochs": 4})}),
        _meta(cfg),
        bags,
        [],
        7,
        on_epoch=lambda e, m: snap.__setitem__(e, copy.deepcopy(m.state_dict())),
    )
    short = fit(cfg.model_copy(update={"train": cfg.train.model_copy(update={"epochs": 2})}), _meta(cfg), bags, [], 7)
    for name, value in short.model.state_dict().items():
        torch.testing.assert_close(snap[2][name].cpu(), value, rtol=0, atol=0)


def test_search_never_sees_the_outer_test_fold(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every inner fit and every inner score uses outer-training bags only, and inner folds are
    split by patient (two bags per patient here)."""
    events: list[tuple[str, set[str], set[str]]] = []  # (what, fitted keys, scored keys)
    real_fit, real_outer_fit, real_scorer = search_module.fit, cv_module.fit, search_module._Scorer.__init__

    def inner_fit(cfg, meta, train_bags, val_bags, seed, on_epoch=None):  # type: ignore[no-untyped-def]
        assert not val_bags
        events.append(("inner", {b.key for b in train_bags}, set()))
        return real_fit(cfg, meta, train_bags, val_bags, seed, on_epoch=on_epoch)

    def scorer_init(self, cfg, meta, fit_bags, held):  # type: ignore[no-untyped-def]
        assert not {b.patient_id for b in fit_bags} & {b.patient_id for b in held}  # inner folds by patient
        events.append(("score", {b.key for b in fit_bags}, {b.key for b in held}))
        real_scorer(self, cfg, meta, fit_bags, held)

    def outer_fit(cfg, meta, train_bags, val_bags, seed, on_epoch=None):  # type: ignore[no-untyped-def]
        events.append(("outer", {b.key for b in train_bags}, set()))
        return real_outer_fit(cfg, meta, train_bags, val_bags, seed, on_epoch=on_epoch)

    monkeypatch.setattr(search_module, "fit", inner_fit)
    monkeypatch.setattr(search_module._Scorer, "__init__", scorer_init)
    monkeypatch.setattr(cv_module, "fit", outer_fit)
    bags = _bags(12, per_patient=2)
    cfg = _cfg({"lr": [1e-3, 1e-2], "epochs": [1, 2], "folds": 2}, val_fraction=0.25)
    run_cv(cfg, _meta(cfg), bags, tmp_path / "run")
    per_fold: list[list[tuple[str, set[str], set[str]]]] = [[]]
    for e in events:
        per_fold[-1].append(e)
        if e[0] == "outer":
            per_fold.append([])
    assert len(per_fold[:-1]) == 3
    for k, evs in enumerate(per_fold[:-1]):
        info = json.loads((tmp_path / "run" / "folds" / f"fold_{k}" / "fold.json").read_text())
        allowed = set(info["train_keys"]) | set(info["val_keys"])
        test = {b.key for b in bags} - allowed
        assert len(test) >= 6 and sum(e[0] == "inner" for e in evs) == 2 * 2  # 2 lr groups x 2 inner folds
        for what, fitted, scored in evs[:-1]:
            assert (fitted | scored) <= allowed and not (fitted | scored) & test, (k, what)
        assert evs[-1][0] == "outer" and evs[-1][1] == set(info["train_keys"])


def test_choices_are_recorded_and_used(tmp_path: Path) -> None:
    """A learning rate too small to learn anything loses to a sound one, on every fold; the choice
    is in fold.json and metrics.json, and the outer model trains for the chosen epochs."""
    bags = _bags(18)
    cfg = _cfg({"lr": [1e-9, 0.02], "epochs": [1, 4], "dropout": [0.0], "folds": 2})
    res = run_cv(cfg, _meta(cfg), bags, tmp_path / "run")
    summary = res.metrics["search"]
    assert summary["grid"] == {"lr": [1e-9, 0.02], "weight_decay": [1e-4], "dropout": [0.0], "epochs": [1, 4]}
    assert summary["criterion"] == "loss" and summary["inner_folds"] == 2
    assert len(summary["chosen"]) == 3
    on_disk = json.loads((tmp_path / "run" / "metrics.json").read_text())["search"]
    assert on_disk == json.loads(json.dumps(summary))
    for k, chosen in enumerate(summary["chosen"]):
        assert chosen["fold"] == k and chosen["lr"] == 0.02 and chosen["epochs"] in (1, 4)
        fold = tmp_path / "run" / "folds" / f"fold_{k}"
        record = json.loads((fold / "fold.json").read_text())["search"]
        assert record["chosen"] == {p: chosen[p] for p in ("lr", "weight_decay", "dropout", "epochs")}
        scores = [c["score"] for c in record["candidates"]]
        assert len(scores) == 4 and record["candidates"][int(np.argmin(scores))]["lr"] == 0.02
        assert all(len(c["fold_scores"]) == 2 for c in record["candidates"])
        assert len((fold / "history.csv").read_text().strip().splitlines()) == 1 + chosen["epochs"]  # header + epochs


def test_survival_search_by_metric_with_the_pooled_baseline(tmp_path: Path) -> None:
    """The metric criterion (Harrell's C on inner folds) and the Cox pooled baseline, end to end."""
    from wsi_ssl.mil.baselines import add_pooled_linear

    rng = np.random.default_rng(1)
    bags = []
    for p in range(24):
        x = rng.normal(size=(int(rng.integers(5, 10)), 6)).astype(np.float32)
        t = rng.exponential(20.0 * np.exp(-x[:, 0].max())) + 0.5
        bags.append(Bag(key=f"p{p}", patient_id=f"p{p}", features=x, target=np.asarray([t, float(p % 4 != 0)])))
    cfg = MilConfig.model_validate(
        {
            **BASE,
            "task": {"kind": "survival"},
            "train": {**BASE["train"], "search": {"epochs": [1, 2], "folds": 2, "criterion": "metric"}},
            "eval": {"folds": 3, "bootstrap": 10},
        }
    )
    meta = model_meta(6, cfg.aggregator, "survival", None, "cox", 0)
    res = run_cv(cfg, meta, bags, tmp_path / "run")
    assert res.metrics["search"]["criterion"] == "metric"
    record = json.loads((tmp_path / "run" / "folds" / "fold_0" / "fold.json").read_text())["search"]
    assert record["criterion"] == "metric:c_index"
    assert all(0.0 <= s <= 1.0 for c in record["candidates"] for s in c["fold_scores"] if np.isfinite(s))
    entry = add_pooled_linear(cfg, meta, bags, res)
    assert set(entry) == set(res.metrics["oof"]) and 0.0 <= entry["c_index"]["value"] <= 1.0
    assert res.metrics["comparison"]["metric"] == "c_index"
