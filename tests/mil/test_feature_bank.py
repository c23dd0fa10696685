"""Feature banks: where a fold's features live during training, and what a training step asks of
the device. The meta device stands in for a GPU: its tensors have shapes but no values, so any
host read-back (``.item()``, ``bool()``, boolean indexing) raises, which is exactly what would
stall a GPU's queue of kernels every step."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from wsi_ssl.mil.aggregators import aggregator_names
from wsi_ssl.mil.bags import Bag, collate
from wsi_ssl.mil.config import AggregatorConfig
from wsi_ssl.mil.feature_bank import FeatureBank
from wsi_ssl.mil.model import MILModel
from wsi_ssl.mil.train import run_batch


def _bags(sizes: list[int], dtype: type = np.float32) -> list[Bag]:
    return [
        Bag(key=str(i), patient_id=str(i), features=np.full((n, 3), i, dtype), target=np.asarray(i % 2))
        for i, n in enumerate(sizes)
    ]


def test_host_bank_batches_equal_collate_and_subsample_only_with_rng() -> None:
    bags = _bags([5, 50, 2])
    bank = FeatureBank(bags, "cpu")
    assert not bank.on_device and bank.lengths == [5, 50, 2] and bank.nbytes == 57 * 3 * 4
    ref, got = collate([bags[2], bags[0]]), bank.batch([2, 0])
    assert (
        torch.equal(got.features, ref.features)
        and torch.equal(got.mask, ref.mask)
        and torch.equal(got.target, ref.target)
    )
    assert got.keys == ["2", "0"]
    assert bank.batch([1], max_instances=10).lengths == [50]  # evaluation: every tile
    sub = bank.batch([1], max_instances=10, rng=np.random.default_rng(0))
    assert sub.lengths == [10] and float(sub.features.float().mean()) == 1.0


def test_a_cpu_run_keeps_features_on_the_host_whatever_the_placement() -> None:
    for placement in ("auto", "device", "host"):
        assert not FeatureBank(_bags([4]), "cpu", placement).on_device  # type: ignore[arg-type]


def test_device_bank_uploads_once_in_the_stored_dtype() -> None:
    bank = FeatureBank(_bags([5, 7], np.float16), "meta", "device")
    assert bank.on_device and all(f.device.type == "meta" and f.dtype == torch.float16 for f in bank.features)
    b = bank.batch([1, 0], max_instances=6, rng=np.random.default_rng(0))
    assert b.features.device.type == b.mask.device.type == b.target.device.type == "meta"
    assert b.lengths == [6, 5] and b.features.shape == (11, 3) and b.features.dtype == torch.float16
    assert not FeatureBank(_bags([5]), "meta", "host").on_device


@pytest.mark.parametrize("kind", aggregator_names())
@pytest.mark.parametrize("task", ["classification", "regression"])
def test_a_batched_training_step_never_reads_back_from_the_device(kind: str, task: str) -> None:
    bank = FeatureBank(_bags([5, 17, 9], np.float16), "meta", "device")
    cfg = AggregatorConfig(kind=kind, hidden_dim=16, attn_dim=8, n_heads=2)  # type: ignore[arg-type]
    model = MILModel(3, cfg, task, 2 if task == "classification" else 1).to("meta").train()
    b = bank.batch([0, 1, 2], max_instances=8, rng=np.random.default_rng(0))
    out = run_batch(model, b, "batched")
    loss = F.cross_entropy(out, b.target) if task == "classification" else F.mse_loss(out[:, 0], b.target.float())
    loss.backward()
    assert out.shape == (3, out.shape[1]) and all(p.grad is not None for p in model.parameters())


def test_host_to_device_copies_in_a_step_are_queued_not_waited_for(monkeypatch: pytest.MonkeyPatch) -> None:
    """A blocking copy from the host (``.to(device)``) would make a GPU step wait for the last one."""
    copies: list[tuple[str, bool]] = []
    real_to = torch.Tensor.to

    def spy(self: torch.Tensor, *args, **kwargs):  # type: ignore[no-untyped-def]
        out = real_to(self, *args, **kwargs)
        if self.device.type == "cpu" and out.device.type != "cpu":
            copies.append((str(tuple(self.shape)), bool(kwargs.get("non_blocking", False))))
        return out

    bank = FeatureBank(_bags([5, 17, 9], np.float16), "meta", "device")
    model = (
        MILModel(3, AggregatorConfig(kind="abmil", hidden_dim=16, attn_dim=8), "classification", 2).to("meta").train()
    )
    monkeypatch.setattr(torch.Tensor, "to", spy)
    b = bank.batch([0, 1, 2], max_instances=8, rng=np.random.default_rng(0))  # two bags subsampled
    F.cross_entropy(run_batch(model, b, "batched"), b.target).backward()
    assert len(copies) == 4  # mask, target and the two subsampled bags' row indices
    assert all(non_blocking for _, non_blocking in copies), copies
