"""The fold-fitted encoder of the raw side vector (covariates + omics), held in model buffers.

Fitted on the training fold's bags only (:meth:`SideEncoder.fit`), and saved with the fold
model's weights, so ``mil predict`` encodes new slides exactly as the fold was trained:

- numeric covariates and omics features: z-scored with the training fold's mean and std;
- categorical covariates: the one-hot columns of levels seen in the training fold; a level the
  fold never saw counts as missing (its untrained column would otherwise carry noise);
- missing values: 0 in the value columns plus a missing indicator per covariate (and per omics
  feature). A layer reading the indicator learns one vector per covariate: the learned "missing"
  embedding. Nothing is imputed from other rows, let alone from other folds;
- optional PCA of the omics (``data.omics_components``), fitted on the training fold's patients
  that have omics; then one "omics absent" indicator replaces the per-feature ones.

Modality dropout (training only) hides a bag's omics, so the "omics absent" embedding is trained
and a patient without omics gets the prediction of the same model with that embedding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from wsi_ssl.mil.clinical.tables import SideSpec


@dataclass
class SideInputs:
    """The encoded side of a batch: values are 0 where missing; masks are 1.0 where missing."""

    cov_values: torch.Tensor  # [B, Wc]
    cov_missing: torch.Tensor  # [B, C] one per covariate
    omics_values: torch.Tensor  # [B, P] (P = features, or components with PCA)
    omics_missing: torch.Tensor  # [B, P or 1]
    omics_absent: torch.Tensor  # [B] bool: no omics at all for the bag

    def flat(self) -> torch.Tensor:
        """Everything side by side [B, width]: the input of the late / FiLM encoders."""
        return torch.cat([self.cov_values, self.cov_missing, self.omics_values, self.omics_missing], dim=1)


class SideEncoder(nn.Module):
    mean: torch.Tensor
    std: torch.Tensor
    seen: torch.Tensor
    groups: torch.Tensor
    omics_mean: torch.Tensor
    components: torch.Tensor
    is_numeric: torch.Tensor

    def __init__(self, spec: SideSpec) -> None:
        super().__init__()
        self.spec = spec
        w, wc = spec.width, spec.cov_width
        self.n_cov = len(spec.covariates)
        self.n_omics = len(spec.omics_features)
        self.k = spec.omics_components
        self.register_buffer("mean", torch.zeros(w))
        self.register_buffer("std", torch.ones(w))
        self.register_buffer("seen", torch.ones(w))
        self.register_buffer("groups", torch.from_numpy(spec.groups()))
        self.register_buffer("components", torch.zeros(self.n_omics, self.k))
        self.register_buffer("omics_mean", torch.zeros(self.n_omics))
        self.numeric = np.ones(w, dtype=bool)  # which raw columns are z-scored (not one-hot)
        for g, c in enumerate(spec.covariates):
            if c.levels is not None:
                self.numeric[:wc][spec.groups() == g] = False
        self.register_buffer("is_numeric", torch.from_numpy(self.numeric), persistent=False)
        self.wc = wc

    @property
    def out_widths(self) -> tuple[int, int, int, int]:
        """Widths of (cov_values, cov_missing, omics_values, omics_missing)."""
        p = self.k if self.k else self.n_omics
        return self.wc, self.n_cov, p, (1 if self.k else self.n_omics) if self.n_omics else 0

    @property
    def flat_width(self) -> int:
        return sum(self.out_widths)

    def fit(self, raw: np.ndarray) -> None:
        """Statistics from the training fold's raw side rows [n, width] (NaN = missing) only."""
        raw = np.asarray(raw, dtype=np.float64)
        present = ~np.isnan(raw)
        with np.errstate(all="ignore"):
            mean = np.where(present.any(0), np.nanmean(np.where(present, raw, np.nan), axis=0), 0.0)
            std = np.where(present.sum(0) > 1, np.nanstd(np.where(present, raw, np.nan), axis=0), 1.0)
        mean = np.where(self.numeric, np.nan_to_num(mean), 0.0)
        std = np.where(self.numeric & (np.nan_to_num(std) > 1e-8), np.nan_to_num(std, nan=1.0), 1.0)
        seen = np.where(self.numeric, 1.0, (np.nan_to_num(raw) > 0).any(0).astype(float))
        self.mean.copy_(torch.from_numpy(mean).float())
        self.std.copy_(torch.from_numpy(std).float())
        self.seen.copy_(torch.from_numpy(seen).float())
        if self.k:
            om = raw[:, self.wc :]
            has = ~np.isnan(om).all(1)
            z = np.nan_to_num((om[has] - mean[self.wc :]) / std[self.wc :])
            if len(z) < 2:
                raise ValueError("data.omics_components needs at least two training patients with omics")
            centre = z.mean(0)
            _, _, vt = np.linalg.svd(z - centre, full_matrices=False)
            comp = np.zeros((self.n_omics, self.k))
            comp[:, : min(self.k, vt.shape[0])] = vt[: self.k].T
            self.omics_mean.copy_(torch.from_numpy(centre).float())
            self.components.copy_(torch.from_numpy(comp).float())

    def forward(self, raw: torch.Tensor, omics_dropout: float = 0.0) -> SideInputs:
        raw = raw.float()
        if self.training and omics_dropout > 0 and self.n_omics:
            hide = torch.rand(raw.shape[0], device=raw.device) < omics_dropout
            raw = raw.clone()
            raw[:, self.wc :] = raw[:, self.wc :].masked_fill(hide.unsqueeze(1), float("nan"))
        missing = torch.isnan(raw) | (self.seen == 0)
        z = ((torch.nan_to_num(raw) - self.mean) / self.std).masked_fill(missing, 0.0)
        cov_missing = raw.new_zeros(raw.shape[0], self.n_cov)
        if self.n_cov:
            # a numeric is present when not NaN; a categorical when a column it has seen holds a 1
            ok = ~missing[:, : self.wc] & (self.is_numeric[: self.wc] | (torch.nan_to_num(raw[:, : self.wc]) > 0))
            hit = ok.float()
            cov_missing = (cov_missing.index_add(1, self.groups, hit) == 0).float()
            one_hot_missing = cov_missing[:, self.groups] > 0
            z = torch.cat([z[:, : self.wc].masked_fill(one_hot_missing, 0.0), z[:, self.wc :]], dim=1)
        om, om_missing = z[:, self.wc :], missing[:, self.wc :]
        absent = (
            om_missing.all(dim=1) if self.n_omics else torch.ones(raw.shape[0], dtype=torch.bool, device=raw.device)
        )
        if self.k:
            om = ((om - self.omics_mean) @ self.components).masked_fill(absent.unsqueeze(1), 0.0)
            om_flags = absent.float().unsqueeze(1)
        else:
            om_flags = om_missing.float()
        return SideInputs(z[:, : self.wc], cov_missing, om, om_flags, absent)
