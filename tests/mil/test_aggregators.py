"""Every registered aggregator ignores padding: the same bag with extra masked rows gives the same output."""

from __future__ import annotations

import pytest
import torch

from wsi_ssl.mil.aggregators import aggregator_names
from wsi_ssl.mil.config import AggregatorConfig
from wsi_ssl.mil.model import MILModel

KINDS = [*aggregator_names(), "abmil_plain"]  # every registered kind, plus abmil without the gate


def _model(kind: str, task: str = "classification", out_dim: int = 2) -> MILModel:
    cfg = AggregatorConfig(
        kind="abmil" if kind.startswith("abmil") else kind,
        gated=kind != "abmil_plain",
        hidden_dim=16,
        attn_dim=8,
        n_heads=2,
        dropout=0.0,
    )
    torch.manual_seed(0)
    return MILModel(6, cfg, task, out_dim).eval()


@pytest.mark.parametrize("kind", KINDS)
def test_padding_does_not_change_output(kind: str) -> None:
    model = _model(kind)
    torch.manual_seed(1)
    bag_a, bag_b = torch.randn(1, 7, 6), torch.randn(1, 13, 6)
    ref_a, ref_b = (
        model.predict(bag_a, torch.ones(1, 7, dtype=torch.bool)),
        model.predict(bag_b, torch.ones(1, 13, dtype=torch.bool)),
    )
    # Both bags in one batch padded to 20 rows of large garbage: padding must be invisible.
    x = torch.full((2, 20, 6), 1e3)
    x[0, :7], x[1, :13] = bag_a[0], bag_b[0]
    mask = torch.zeros(2, 20, dtype=torch.bool)
    mask[0, :7], mask[1, :13] = True, True
    out = model.predict(x, mask)
    torch.testing.assert_close(out["prob"][0], ref_a["prob"][0], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(out["prob"][1], ref_b["prob"][0], atol=1e-5, rtol=1e-4)
    if "scores" in out:
        torch.testing.assert_close(out["scores"][0, :7], ref_a["scores"][0], atol=1e-5, rtol=1e-4)
        assert float(out["scores"][0, 7:].abs().sum()) == 0.0
        torch.testing.assert_close(out["scores"][1, :13].sum(), torch.tensor(1.0), atol=1e-5, rtol=0)


def test_gated_attention_matches_formula() -> None:
    """Ilse et al.: a = softmax(w^T (tanh(Vh) * sigm(Uh))), z = sum a h."""
    model = _model("abmil")
    agg = model.aggregator
    h = torch.randn(1, 5, 16)
    out = agg(h, torch.ones(1, 5, dtype=torch.bool))
    logits = (
        torch.tanh(h @ agg.V.weight.T + agg.V.bias) * torch.sigmoid(h @ agg.U.weight.T + agg.U.bias)
    ) @ agg.w.weight.T + agg.w.bias
    a = torch.softmax(logits[0, :, 0], dim=0)
    torch.testing.assert_close(out.scores[0], a)
    torch.testing.assert_close(out.embedding[0], (a[:, None] * h[0]).sum(0))


@pytest.mark.parametrize("kind", KINDS)
def test_gradients_reach_every_parameter(kind: str) -> None:
    model = _model(kind, "survival", 1).train()
    x, mask = torch.randn(3, 9, 6), torch.ones(3, 9, dtype=torch.bool)
    mask[0, 5:] = False
    model(x, mask).sum().backward()
    dead = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not dead


def _bags(sizes: tuple[int, ...], dtype: torch.dtype = torch.float32) -> list:
    from wsi_ssl.mil.bags import Bag

    torch.manual_seed(2)
    return [
        Bag(
            key=str(i),
            patient_id=str(i),
            features=torch.randn(n, 6).to(dtype).numpy(),
            target=torch.tensor(i % 2).numpy(),
        )
        for i, n in enumerate(sizes)
    ]


@pytest.mark.parametrize("kind", KINDS)
def test_packed_and_per_bag_forwards_give_the_padded_outputs_and_gradients(kind: str) -> None:
    """Packed batches and ``bag_forward: per_bag`` change only the order of the work."""
    from wsi_ssl.mil.bags import collate
    from wsi_ssl.mil.train import run_batch

    b = collate(_bags((5, 17, 9)))
    results = []
    for mode in ("padded", "batched", "per_bag"):
        model = _model(kind).train()
        out = model(b.x, b.mask) if mode == "padded" else run_batch(model, b, mode)
        torch.nn.functional.cross_entropy(out, b.target).backward()
        results.append((out.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]))
    (out_ref, g_ref) = results[0]
    for out, grads in results[1:]:
        torch.testing.assert_close(out, out_ref, atol=1e-5, rtol=1e-4)
        assert len(grads) == len(g_ref) > 0
        for x, y in zip(grads, g_ref):
            torch.testing.assert_close(x, y, atol=1e-5, rtol=1e-4)


def test_half_precision_features_are_computed_in_float32() -> None:
    """float16 stores (``wsi-ssl embed --dtype float16``) are packed as float16 and widened on use."""
    from wsi_ssl.mil.bags import Batch, collate
    from wsi_ssl.mil.train import run_batch

    half = collate(_bags((4, 9), torch.float16))
    full = Batch(half.features.float(), half.lengths, half.mask, half.target, half.keys)
    assert half.features.dtype == torch.float16 and half.x.dtype == torch.float32
    model = _model("abmil")
    out = run_batch(model, half)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, run_batch(model, full))


def test_auto_bag_forward_picks_per_bag_for_large_bags_on_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    from wsi_ssl.mil.bags import collate
    from wsi_ssl.mil.train import run_batch

    model = _model("abmil")
    calls: list[str] = []
    monkeypatch.setattr(
        MILModel, "forward_per_bag", lambda self, f, n, side=None: calls.append("per_bag") or torch.zeros(len(n), 2)
    )
    run_batch(model, collate(_bags((600, 600))), "auto", min_instances=512)
    assert calls == ["per_bag"]
    small = collate(_bags((600, 1)))  # 300.5 instances per bag on average: below the threshold
    run_batch(model, small, "auto", min_instances=512)
    run_batch(model, small, "batched")
    assert calls == ["per_bag"]
