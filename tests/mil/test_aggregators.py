"""Every aggregator ignores padding: the same bag with extra masked rows gives the same output."""

from __future__ import annotations

import pytest
import torch

from wsi_ssl.mil.config import AggregatorConfig
from wsi_ssl.mil.model import MILModel

KINDS = ["mean", "abmil", "abmil_plain", "transmil", "dsmil"]


def _model(kind: str, task: str = "classification", out_dim: int = 2) -> MILModel:
    cfg = AggregatorConfig(kind="abmil" if kind.startswith("abmil") else kind, gated=kind != "abmil_plain", hidden_dim=16, attn_dim=8, n_heads=2, dropout=0.0)
    torch.manual_seed(0)
    return MILModel(6, cfg, task, out_dim).eval()


@pytest.mark.parametrize("kind", KINDS)
def test_padding_does_not_change_output(kind: str) -> None:
    model = _model(kind)
    torch.manual_seed(1)
    bag_a, bag_b = torch.randn(1, 7, 6), torch.randn(1, 13, 6)
    ref_a, ref_b = model.predict(bag_a, torch.ones(1, 7, dtype=torch.bool)), model.predict(bag_b, torch.ones(1, 13, dtype=torch.bool))
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
    logits = (torch.tanh(h @ agg.V.weight.T + agg.V.bias) * torch.sigmoid(h @ agg.U.weight.T + agg.U.bias)) @ agg.w.weight.T + agg.w.bias
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


@pytest.mark.parametrize("kind", KINDS)
def test_per_bag_forward_gives_the_batched_outputs_and_gradients(kind: str) -> None:
    """``bag_forward: per_bag`` changes only the order of the work: same outputs, same gradients."""
    from wsi_ssl.mil.bags import Bag, collate
    from wsi_ssl.mil.train import run_batch

    torch.manual_seed(2)
    bags = [Bag(key=str(i), patient_id=str(i), features=torch.randn(n, 6).numpy(), target=torch.tensor(i % 2).numpy())
            for i, n in enumerate((5, 17, 9))]
    b = collate(bags)
    grads = []
    for mode in ("batched", "per_bag"):
        model = _model(kind).train()
        out = run_batch(model, b.x, b.mask, mode)
        torch.nn.functional.cross_entropy(out, b.target).backward()
        grads.append((out.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]))
    (out_a, g_a), (out_b, g_b) = grads
    torch.testing.assert_close(out_b, out_a, atol=1e-5, rtol=1e-4)
    assert len(g_a) == len(g_b) > 0
    for x, y in zip(g_a, g_b):
        torch.testing.assert_close(y, x, atol=1e-5, rtol=1e-4)


def test_auto_bag_forward_picks_per_bag_for_large_bags_on_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    from wsi_ssl.mil.train import run_batch

    model = _model("abmil")
    calls: list[str] = []
    monkeypatch.setattr(MILModel, "forward_per_bag", lambda self, x, m: calls.append("per_bag") or self.forward(x, m))
    x, mask = torch.randn(2, 600, 6), torch.ones(2, 600, dtype=torch.bool)
    run_batch(model, x, mask, "auto", min_instances=512)
    assert calls == ["per_bag"]
    mask[:, 300:] = False  # 300 real instances per bag: below the threshold
    run_batch(model, x, mask, "auto", min_instances=512)
    run_batch(model, x, mask, "batched")
    assert calls == ["per_bag"]
