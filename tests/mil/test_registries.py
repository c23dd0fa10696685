"""Aggregators and task kinds come from registries: a new one is one module, an unknown one is an
error naming the known ones, and configs accept exactly the registered kinds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from wsi_ssl.mil.aggregators import registry as agg_registry
from wsi_ssl.mil.aggregators.base import AggOutput, Aggregator, Head, masked_mean
from wsi_ssl.mil.config import AggregatorConfig, MilConfig, TaskConfig
from wsi_ssl.mil.model import MILModel
from wsi_ssl.mil.tasks import Task, get_task, task_kinds
from wsi_ssl.mil.tasks import registry as task_registry


def test_every_module_in_the_package_is_registered() -> None:
    assert set(agg_registry.aggregator_names()) == {"abmil", "dsmil", "mean", "transformer", "transmil"}
    assert task_kinds() == ["classification", "regression", "survival"]
    assert all(isinstance(get_task(k), Task) and get_task(k).kind == k for k in task_kinds())


@pytest.mark.parametrize(
    "section, known",
    [("aggregator", "abmil, dsmil, mean, transformer, transmil"), ("task", "classification, regression, survival")],
)
def test_an_unknown_kind_in_a_config_names_the_known_ones(section: str, known: str) -> None:
    with pytest.raises(ValueError, match=f"unknown {section} kind 'nope'; known kinds: {known}"):
        MilConfig.model_validate({section: {"kind": "nope"}})


def test_an_unknown_kind_is_never_built_as_another() -> None:
    """The if-chain this replaced built TransMIL for any kind it did not know."""
    with pytest.raises(ValueError, match="unknown aggregator kind 'nope'; known kinds: abmil, "):
        agg_registry.build_aggregator(AggregatorConfig.model_construct(kind="nope"), 8)
    with pytest.raises(ValueError, match="unknown task kind 'nope'; known kinds: classification, "):
        MILModel(3, AggregatorConfig(), "nope", 2)


@pytest.mark.parametrize("kind", ["transformer", "transmil"])
def test_attention_kinds_check_their_widths(kind: str) -> None:
    with pytest.raises(ValueError, match=f"hidden_dim must be > 0 for {kind}"):
        AggregatorConfig(kind=kind, hidden_dim=0)
    with pytest.raises(ValueError, match=f"divisible by aggregator.n_heads for {kind}"):
        AggregatorConfig(kind=kind, hidden_dim=30, n_heads=4)
    cfg = AggregatorConfig(kind="abmil", hidden_dim=0)
    with pytest.raises(ValueError, match=kind):
        cfg.kind = kind  # assignment is validated too


def test_class_weights_only_for_classification() -> None:
    TaskConfig(kind="classification", class_weights=[1.0, 2.0])
    with pytest.raises(ValueError, match="only for task.kind: classification"):
        TaskConfig(kind="survival", class_weights=[1.0, 2.0])


def test_a_new_aggregator_is_one_registration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(agg_registry, "_ENTRIES", dict(agg_registry._ENTRIES))

    class MaxPool(Aggregator):
        def __init__(self, in_dim: int) -> None:
            super().__init__()
            self.out_dim = in_dim

        def forward(self, h: torch.Tensor, mask: torch.Tensor, head: Head | None = None) -> AggOutput:
            return AggOutput(
                embedding=h.masked_fill(~mask[..., None], float("-inf")).amax(dim=1) + 0 * masked_mean(h, mask)
            )

    agg_registry.register_aggregator("max", attention=False)(lambda cfg, in_dim: MaxPool(in_dim))
    cfg = MilConfig.model_validate({"aggregator": {"kind": "max", "hidden_dim": 4}})
    model = MILModel(3, cfg.aggregator, "classification", 2)
    assert isinstance(model.aggregator, MaxPool) and model(
        torch.randn(2, 5, 3), torch.ones(2, 5, dtype=torch.bool)
    ).shape == (2, 2)
    with pytest.raises(ValueError, match="registered twice"):
        agg_registry.register_aggregator("max")(lambda cfg, in_dim: MaxPool(in_dim))


def test_a_task_kind_is_registered_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(task_registry, "_TASKS", dict(task_registry._TASKS))
    with pytest.raises(ValueError, match="registered twice"):
        task_registry.register_task(type(get_task("regression")))


def test_a_format_1_run_dir_reads_transmil_as_the_renamed_transformer(tmp_path: Path) -> None:
    """Before the registry, kind ``transmil`` named what is now ``transformer``."""
    from wsi_ssl.mil.loading import load_mil_model, save_fold_weights
    from wsi_ssl.mil.model import build_model, model_meta

    meta = model_meta(
        3, AggregatorConfig(kind="transformer", hidden_dim=8, n_heads=2), "classification", ["a", "b"], "cox", 0
    )
    old = build_model(meta)
    save_fold_weights(old, tmp_path / "w.safetensors")
    meta["aggregator"]["kind"] = "transmil"
    (tmp_path / "model.json").write_text(
        json.dumps({"format_version": 1, **meta, "folds": [{"index": 0, "weights": "w.safetensors"}]})
    )
    ensemble, read = load_mil_model(tmp_path)
    assert read["aggregator"]["kind"] == "transformer"
    x = torch.randn(1, 6, 3)
    torch.testing.assert_close(
        ensemble(x, torch.ones(1, 6, dtype=torch.bool))["prob"],
        old.eval().predict(x, torch.ones(1, 6, dtype=torch.bool))["prob"],
    )
