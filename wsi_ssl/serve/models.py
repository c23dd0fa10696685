"""The seam between the server and slide-level (MIL) models: load a file, predict on features.

The server never imports the MIL training code (stages meet only through files), so a model is
whatever this module can load from disk into a :class:`SlideModel`. Formats understood:

``torchscript``
    ``model.pt`` (or any ``*.pt`` file given directly), a TorchScript module whose
    ``forward(features)`` takes one slide's tile embeddings as float32 ``[N, D]`` and returns a
    dict of named tensors (a bare tensor is served as ``{"output": ...}``). An optional
    ``model.json`` beside it describes it: ``{"input_dim": D, "encoder_sha256": "...",
    "task": "...", "outputs": {"name": "what it means"}}``. An output named ``embedding`` is the
    slide-level aggregator embedding served by the embedding endpoint.

A directory holding several ``*.pt`` fold models (``fold*/model.pt`` or ``fold*.pt``) is served
as an ensemble: each output is the mean over folds, which is how cross-validated MIL models are
normally applied to new slides.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

MODEL_FILE = "model.pt"
MODEL_META = "model.json"
EMBEDDING_OUTPUT = "embedding"


class ModelLoadError(ValueError):
    """A configured model path that holds nothing this server can load."""


class ModelInputError(ValueError):
    """Features a model cannot take (wrong dimension, other encoder, no tiles)."""


class SlideModel(Protocol):
    """What the predict and embedding endpoints need from a loaded slide-level model."""

    name: str
    meta: dict[str, Any]

    def predict(self, features: np.ndarray, encoder_sha256: str | None = None) -> dict[str, np.ndarray]: ...


def _to_numpy(outputs: Any, source: str) -> dict[str, np.ndarray]:
    import torch

    if isinstance(outputs, torch.Tensor):
        outputs = {"output": outputs}
    if not isinstance(outputs, dict):
        raise ModelInputError(f"model {source} returned {type(outputs).__name__}; expected a dict of tensors")
    result: dict[str, np.ndarray] = {}
    for key, value in outputs.items():
        if not isinstance(value, torch.Tensor):
            raise ModelInputError(f"model {source} output {key!r} is {type(value).__name__}, not a tensor")
        result[str(key)] = value.detach().to(torch.float32).cpu().numpy().reshape(-1)
    return result


@dataclass
class TorchScriptModel:
    """One or more TorchScript modules (folds) applied to a slide's features; outputs averaged."""

    name: str
    paths: list[Path]
    meta: dict[str, Any] = field(default_factory=dict)
    _modules: list[Any] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def load(self) -> "TorchScriptModel":
        import torch

        for path in self.paths:
            try:
                module = torch.jit.load(str(path), map_location="cpu")
            except (RuntimeError, ValueError, OSError) as exc:
                raise ModelLoadError(f"model {self.name!r}: {path} is not a TorchScript file ({exc})") from None
            self._modules.append(module.eval())
        return self

    def _check(self, features: np.ndarray, encoder_sha256: str | None) -> None:
        if features.ndim != 2 or features.shape[0] == 0:
            raise ModelInputError(f"model {self.name!r} needs at least one tile embedding, got shape {features.shape}")
        want_dim = self.meta.get("input_dim")
        if want_dim is not None and int(want_dim) != features.shape[1]:
            raise ModelInputError(
                f"model {self.name!r} takes {want_dim}-dimensional features; this slide's features have {features.shape[1]}"
            )
        want_sha = self.meta.get("encoder_sha256")
        if want_sha and encoder_sha256 and want_sha != encoder_sha256:
            raise ModelInputError(
                f"model {self.name!r} was trained on features of encoder {want_sha[:12]}; "
                f"this slide was embedded by {encoder_sha256[:12]}"
            )

    def predict(self, features: np.ndarray, encoder_sha256: str | None = None) -> dict[str, np.ndarray]:
        import torch

        self._check(features, encoder_sha256)
        x = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
        per_fold: list[dict[str, np.ndarray]] = []
        # One slide at a time: the model is small and the machine's cores are better spent on
        # other requests than on intra-op parallelism fighting itself.
        with self._lock, torch.inference_mode():
            for module in self._modules:
                try:
                    per_fold.append(_to_numpy(module(x), repr(self.name)))
                except RuntimeError as exc:
                    first = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
                    raise ModelInputError(f"model {self.name!r} cannot take features of shape {tuple(features.shape)}: {first}") from None
        keys = per_fold[0].keys()
        return {key: np.mean([fold[key] for fold in per_fold], axis=0).astype(np.float32) for key in keys}


def _fold_files(folder: Path) -> list[Path]:
    direct = folder / MODEL_FILE
    if direct.is_file():
        return [direct]
    nested = sorted(p / MODEL_FILE for p in folder.glob("fold*") if (p / MODEL_FILE).is_file())
    return nested or sorted(folder.glob("fold*.pt"))


def _read_meta(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        meta = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise ModelLoadError(f"{path}: expected a JSON object")
    return meta


def load_model(name: str, path: str | Path) -> SlideModel:
    """Load the model at ``path`` (a ``.pt`` file or a folder of fold models) as ``name``."""
    path = Path(path)
    if path.is_file():
        files, meta_path = [path], path.with_name(MODEL_META)
    elif path.is_dir():
        files, meta_path = _fold_files(path), path / MODEL_META
        if not files:
            raise ModelLoadError(f"model {name!r}: {path} holds no {MODEL_FILE}, fold*/{MODEL_FILE} or fold*.pt")
    else:
        raise ModelLoadError(f"model {name!r}: {path} does not exist")
    meta = _read_meta(meta_path)
    meta.setdefault("format", "torchscript")
    meta["folds"] = len(files)
    return TorchScriptModel(name=name, paths=files, meta=meta).load()


def load_models(models: dict[str, Path]) -> dict[str, SlideModel]:
    return {name: load_model(name, path) for name, path in models.items()}
