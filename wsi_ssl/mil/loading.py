"""Run-dir model files: saving fold models and loading them back without training code.

A run dir holds ``model.json`` (task, classes, input dim, aggregator config, head size and one
entry per fold) and ``folds/fold_<k>/model.safetensors`` (weights plus the fold's fitted buffers:
feature mean/std, target mean/std, bin edges). To use a trained model elsewhere::

    from wsi_ssl.mil.loading import load_mil_model
    ensemble, meta = load_mil_model("runs/her2")          # all fold models, eval mode
    out = ensemble(x, mask)                                # x [B, N, D] float32, mask [B, N] bool
    out = ensemble.predict_bag(features)                   # one bag, features [N, D] (numpy or torch)

``out`` holds the fold-averaged ``prob`` [B, C] (classes in ``meta["classes"]``), ``value`` [B]
or ``risk`` [B], and ``scores`` [B, N] (mean instance attention; absent for models without it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from wsi_ssl.mil.model import MILModel, build_model
from wsi_ssl.mil.tasks import get_task
from wsi_ssl.stores.atomic import atomic_output

# 2: aggregator kinds come from the registry; the kind format 1 called "transmil" is "transformer"
# (exact attention, 1-D positional conv), and "transmil" is now the published model.
MODEL_FORMAT_VERSION = 2
MODEL_JSON = "model.json"
RENAMED_IN_FORMAT_2 = {"transmil": "transformer"}


class ModelDirError(ValueError):
    """A run dir without a usable model.json or fold weights."""


def fold_dir(run_dir: str | Path, index: int) -> Path:
    return Path(run_dir) / "folds" / f"fold_{index}"


def save_fold_weights(model: MILModel, path: str | Path) -> None:
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_output(Path(path)) as tmp:
        save_file(state, str(tmp), metadata={"format": "wsi_ssl.mil", "format_version": str(MODEL_FORMAT_VERSION)})


def load_fold_weights(meta: dict[str, Any], path: str | Path) -> MILModel:
    model = build_model(meta)
    model.load_state_dict(load_file(str(path)))
    return model.eval()


def write_model_json(run_dir: str | Path, meta: dict[str, Any]) -> Path:
    final = Path(run_dir) / MODEL_JSON
    with atomic_output(final) as tmp:
        tmp.write_text(json.dumps({"format_version": MODEL_FORMAT_VERSION, **meta}, indent=2))
    return final


def read_model_json(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / MODEL_JSON
    if not path.is_file():
        raise ModelDirError(f"{run_dir}: no {MODEL_JSON}; is this a finished 'wsi-ssl mil train' run dir?")
    meta = json.loads(path.read_text())
    if int(meta.get("format_version", 0)) > MODEL_FORMAT_VERSION:
        raise ModelDirError(
            f"{path}: format_version {meta['format_version']} is newer than this wsi_ssl reads ({MODEL_FORMAT_VERSION})"
        )
    if not meta.get("folds"):
        raise ModelDirError(f"{path}: lists no fold models")
    if int(meta.get("format_version", 0)) < 2 and isinstance(meta.get("aggregator"), dict):
        kind = meta["aggregator"].get("kind")
        meta["aggregator"]["kind"] = RENAMED_IN_FORMAT_2.get(kind, kind)
    return meta


class MILEnsemble(nn.Module):
    """The fold models of a run, averaged in prediction space (probabilities, values, risks)."""

    def __init__(self, models: list[MILModel], meta: dict[str, Any]) -> None:
        super().__init__()
        self.models = nn.ModuleList(models)
        self.meta = meta

    @property
    def fold_models(self) -> list[MILModel]:
        """The fold models, typed (``self.models`` is their ModuleList)."""
        return [m for m in self.models if isinstance(m, MILModel)]

    @torch.no_grad()
    def forward(self, x: torch.Tensor, mask: torch.Tensor, side: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """``side`` [B, S]: raw covariate/omics rows (``wsi_ssl.mil.clinical.tables.side_rows``);
        None, or NaN entries, take the model's learned "missing" embeddings."""
        preds = [m.predict(x, mask, side) for m in self.fold_models]
        fold_only = get_task(self.meta["task"]).fold_only_outputs  # e.g. survival bins: differ between folds
        keys = [k for k in preds[0] if k not in fold_only]
        return {k: torch.stack([p[k] for p in preds]).mean(dim=0) for k in keys}

    @torch.no_grad()
    def predict_bag(
        self, features: np.ndarray | torch.Tensor, side: np.ndarray | None = None
    ) -> dict[str, torch.Tensor]:
        x = torch.as_tensor(np.asarray(features, dtype=np.float32)).unsqueeze(0)
        x = x.to(next(self.parameters()).device)
        s = None if side is None else torch.as_tensor(np.asarray(side, dtype=np.float32)).reshape(1, -1).to(x.device)
        out = self.forward(x, torch.ones(x.shape[:2], dtype=torch.bool, device=x.device), s)
        return {k: v[0] for k, v in out.items()}


def load_mil_model(run_dir: str | Path, device: str | torch.device = "cpu") -> tuple[MILEnsemble, dict[str, Any]]:
    """All fold models of a run dir as one eval-mode ensemble, and the run's ``model.json``."""
    meta = read_model_json(run_dir)
    models = []
    for fold in meta["folds"]:
        path = Path(run_dir) / fold["weights"]
        if not path.is_file():
            raise ModelDirError(f"{run_dir}: fold {fold['index']} weights missing at {path}")
        models.append(load_fold_weights(meta, path))
    return MILEnsemble(models, meta).to(device).eval(), meta
