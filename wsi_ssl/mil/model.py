"""The slide-level model: normalize -> project -> aggregate -> head, and its run-dir form.

Everything a fold model needs at prediction time lives in its own weights file as buffers
(feature mean/std, regression target mean/std, discrete-time bin edges, all fitted on that
fold's training data), so a fold model is rebuilt from ``model.json`` plus its
``model.safetensors`` with no training code (see :mod:`wsi_ssl.mil.loading`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from wsi_ssl.mil.aggregators import AggOutput, build_aggregator
from wsi_ssl.mil.clinical.encoder import SideEncoder, SideInputs
from wsi_ssl.mil.clinical.tables import SideSpec
from wsi_ssl.mil.config import AggregatorConfig, FusionConfig
from wsi_ssl.mil.fusion import build_fusion
from wsi_ssl.mil.heads import Head
from wsi_ssl.mil.tasks import get_task


class MILModel(nn.Module):
    # Buffers (registered in __init__, fitted on each training fold), declared for type checkers.
    feat_mean: torch.Tensor
    feat_std: torch.Tensor
    target_mean: torch.Tensor
    target_std: torch.Tensor
    bin_edges: torch.Tensor

    def __init__(
        self,
        input_dim: int,
        agg_cfg: AggregatorConfig,
        task: str,
        out_dim: int,
        survival_loss: str = "cox",
        n_bins: int = 0,
        fusion: FusionConfig | None = None,
        side: SideSpec | None = None,
    ) -> None:
        super().__init__()
        self.task = get_task(task)  # what the head's outputs mean (wsi_ssl.mil.tasks)
        self.survival_loss = survival_loss
        self.register_buffer("feat_mean", torch.zeros(input_dim))
        self.register_buffer("feat_std", torch.ones(input_dim))
        self.register_buffer("target_mean", torch.zeros(()))
        self.register_buffer("target_std", torch.ones(()))
        self.register_buffer("bin_edges", torch.zeros(n_bins + 1 if n_bins else 0))
        hidden = agg_cfg.hidden_dim
        if hidden > 0:
            self.project: nn.Module = nn.Sequential(
                nn.Linear(input_dim, hidden), nn.ReLU(), nn.Dropout(agg_cfg.dropout)
            )
        else:
            self.project = nn.Identity()
            hidden = input_dim
        self.aggregator = build_aggregator(agg_cfg, hidden)
        # Clinical/omics inputs (wsi_ssl.mil.clinical, wsi_ssl.mil.fusion): the fold-fitted encoder
        # lives in this module's buffers, so a saved fold model encodes new slides as it was trained.
        fusion = fusion or FusionConfig()
        self.omics_dropout = fusion.modality_dropout
        self.side_encoder = SideEncoder(side) if side is not None and fusion.kind != "none" else None
        self.fusion = build_fusion(fusion, hidden, self.side_encoder)
        self.head = Head(
            self.fusion.out_dim(self.aggregator.out_dim),
            out_dim,
            dropout=agg_cfg.dropout if agg_cfg.hidden_dim else 0.0,
        )

    def encode_side(self, side: torch.Tensor | None, batch: int, device: torch.device) -> SideInputs | None:
        """The encoded side inputs of a batch; an absent side counts as every value missing."""
        if self.side_encoder is None:
            return None
        if side is None:
            side = torch.full((batch, self.side_encoder.spec.width), float("nan"), device=device)
        return self.side_encoder(side.to(device), self.omics_dropout)

    def embed_instances(self, feats: torch.Tensor) -> torch.Tensor:
        """Normalize and project instances [..., D] (any float dtype) to float32 [..., H]."""
        return self.project((feats.float() - self.feat_mean) / self.feat_std)

    def aggregate(
        self, h: torch.Tensor, mask: torch.Tensor, side: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, AggOutput]:
        """Raw head outputs [B, out] from projected, padded instances h [B, N, H] and raw side rows."""
        s = self.encode_side(side, h.shape[0], h.device)
        h, context = self.fusion.instances(h, mask, s)
        agg = self.aggregator(h, mask, self.head)
        out = self.head(self.fusion.bag(agg.embedding, s, context))
        if agg.instance_logits is not None:
            out = 0.5 * (out + agg.instance_logits)
        return out, agg

    def forward_full(
        self, x: torch.Tensor, mask: torch.Tensor, side: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, AggOutput]:
        """Raw head outputs [B, out] and the aggregator's output (scores for heatmaps)."""
        if bool(mask.all()):
            h = self.embed_instances(x)
        else:  # normalize and project real instances only: padding costs nothing and stays zero
            real = self.embed_instances(x[mask])
            h = real.new_zeros(x.shape[:2] + real.shape[-1:]).index_put((mask,), real)
        return self.aggregate(h, mask, side)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, side: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_full(x, mask, side)[0]

    def forward_packed_full(
        self, feats: torch.Tensor, lengths: Sequence[int], mask: torch.Tensor, side: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, AggOutput]:
        """``forward_full`` on a packed batch (:class:`~wsi_ssl.mil.bags.Batch`).

        Only real instances are projected, and only the projected (narrower) activations are
        padded. Nothing here reads a value back from the device, so on a GPU the host queues the
        whole step without waiting (``x[mask]`` in ``forward_full`` must wait for the count).
        """
        h = self.embed_instances(feats)
        (b, n), t = mask.shape, h.shape[0]
        if len(set(lengths)) == 1:
            return self.aggregate(h.view(b, n, h.shape[-1]), mask, side)
        # Row of each packed instance in the padded [B*N] layout, computed on the device from the
        # mask (no host round trip). One index_copy pads; its backward is one gather (a loop of
        # slice copies, as pad_sequence does, clones the whole gradient once per bag).
        counts = mask.sum(dim=1)
        shift = torch.arange(b, device=h.device) * n - (counts.cumsum(0) - counts)
        rows = torch.arange(t, device=h.device) + shift.repeat_interleave(counts, output_size=t)
        padded = h.new_zeros(b * n, h.shape[-1]).index_copy(0, rows, h)
        return self.aggregate(padded.view(b, n, h.shape[-1]), mask, side)

    def forward_packed(
        self, feats: torch.Tensor, lengths: Sequence[int], mask: torch.Tensor, side: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.forward_packed_full(feats, lengths, mask, side)[0]

    def forward_per_bag(
        self, feats: torch.Tensor, lengths: Sequence[int], side: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``forward_packed``'s outputs, computed bag by bag.

        Same values, same graph for the batch's loss (a Cox loss still sees the whole batch), one
        optimizer step per batch; only the order of the work differs. On a CPU that is faster for
        large bags: one bag's activations (2,750 x 256 floats, 2.8 MB) stay in cache where the
        batch's (16 x that) do not (benchmarks/mil.py). Bags are never empty (``load_bags``
        rejects feature files without tiles).
        """
        outs = []
        for i, part in enumerate(feats.split(list(lengths))):
            mask = torch.ones(1, len(part), dtype=torch.bool, device=part.device)
            s = None if side is None else side[i : i + 1]
            outs.append(self.aggregate(self.embed_instances(part).unsqueeze(0), mask, s)[0])
        return torch.cat(outs)

    @torch.no_grad()
    def predict(self, x: torch.Tensor, mask: torch.Tensor, side: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        return self._named(*self.forward_full(x, mask, side))

    @torch.no_grad()
    def predict_packed(
        self, feats: torch.Tensor, lengths: Sequence[int], mask: torch.Tensor, side: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """``predict`` on a packed batch: the same predictions, without the padded input copy."""
        return self._named(*self.forward_packed_full(feats, lengths, mask, side))

    def _named(self, out: torch.Tensor, agg: AggOutput) -> dict[str, torch.Tensor]:
        pred = self.task.predictions(out, self.survival_loss, float(self.target_mean), float(self.target_std))
        if agg.scores is not None:
            pred["scores"] = agg.scores
        return pred


def model_meta(
    input_dim: int, agg_cfg: AggregatorConfig, task: str, classes: list[str] | None, survival_loss: str, n_bins: int
) -> dict[str, Any]:
    """The JSON description of a model; ``build_model(meta)`` turns it back into a module."""
    n_classes = len(classes) if classes else 0
    kind = get_task(task)
    sl = kind.meta_survival_loss(survival_loss)
    return {
        "task": task,
        "survival_loss": sl,
        "classes": classes,
        "input_dim": input_dim,
        "out_dim": kind.head_out_dim(n_classes, survival_loss, n_bins),
        "n_bins": n_bins if sl == "discrete" else 0,
        "aggregator": agg_cfg.model_dump(mode="json"),
        # with covariates/omics the caller adds "fusion" (FusionConfig) and "side" (SideSpec.to_json())
    }


def build_model(meta: dict[str, Any]) -> MILModel:
    return MILModel(
        input_dim=int(meta["input_dim"]),
        agg_cfg=AggregatorConfig.model_validate(meta["aggregator"]),
        task=meta["task"],
        out_dim=int(meta["out_dim"]),
        survival_loss=meta.get("survival_loss") or "cox",
        n_bins=int(meta.get("n_bins") or 0),
        fusion=FusionConfig.model_validate(meta["fusion"]) if meta.get("fusion") else None,
        side=SideSpec.from_json(meta.get("side")),
    )
