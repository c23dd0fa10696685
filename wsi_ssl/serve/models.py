"""The seam between the server and slide-level (MIL) models: load from disk, predict on features.

The server never imports another stage's code (stages meet only through files), so a model
reaches it in one of two ways, both configured under ``models:`` in the serve config:

``name: path/to/model.pt`` (or a folder of ``fold*/model.pt`` / ``fold*.pt``): TorchScript
    A scripted module whose ``forward(features)`` takes one slide's tile embeddings, float32
    ``[N, D]``, and returns a dict of named tensors (a bare tensor is served as ``output``).
    An optional ``model.json`` beside it describes it: ``{"input_dim": D, "encoder_sha256":
    "...", "task": "...", "outputs": {"name": "meaning"}}``. Several fold files are served as an
    ensemble: each output is the mean over folds. Needs only torch to load.

``name: {path: runs/her2, loader: "package.module:function"}``: a loader plugin
    ``function(path)`` returns ``(predictor, meta)``: ``predictor`` has ``predict_bag(features)``
    (or is callable) taking a float32 ``[N, D]`` array and returning a dict of tensors/arrays;
    ``meta`` is a dict (``input_dim`` is checked when present). A ``wsi-ssl mil train`` run dir
    is served this way with ``loader: wsi_ssl.mil.loading:load_mil_model``; the config, not this
    package, names the loader, so the serve stage stays independent of the MIL code.

An output named ``embedding`` is the slide-level aggregator embedding served by the embedding
endpoint. Outputs are flattened to 1-D float32 arrays.
"""

from __future__ import annotations

import importlib
import json
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from wsi_ssl.serve.config import ModelSpec

MODEL_FILE = "model.pt"
MODEL_META = "model.json"
EMBEDDING_OUTPUT = "embedding"

Predictor = Callable[[np.ndarray], Any]


class ModelLoadError(ValueError):
    """A configured model that cannot be loaded (missing file, bad format, unknown loader)."""


class ModelInputError(ValueError):
    """Features a model cannot take (wrong dimension, other encoder, no tiles)."""


def _to_numpy(outputs: Any, source: str) -> dict[str, np.ndarray]:
    import torch

    if isinstance(outputs, (torch.Tensor, np.ndarray)):
        outputs = {"output": outputs}
    if not isinstance(outputs, dict):
        raise ModelInputError(f"model {source} returned {type(outputs).__name__}; expected a dict of tensors")
    result: dict[str, np.ndarray] = {}
    for key, value in outputs.items():
        if isinstance(value, torch.Tensor):
            value = value.detach().to(torch.float32).cpu().numpy()
        if not isinstance(value, np.ndarray):
            raise ModelInputError(f"model {source} output {key!r} is {type(value).__name__}, not a tensor")
        result[str(key)] = value.astype(np.float32).reshape(-1)
    return result


@dataclass
class SlideModel:
    """A loaded model as the predict and embedding endpoints use it. ``predict`` is thread-safe."""

    name: str
    predictor: Predictor
    meta: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

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
        """Named outputs for one slide's features ``[N, D]``; ModelInputError if they do not fit."""
        import torch

        self._check(features, encoder_sha256)
        x = np.ascontiguousarray(features, dtype=np.float32)
        # One slide at a time: on a small CPU box, concurrent forward passes only fight for cores.
        with self._lock, torch.inference_mode():
            try:
                out = self.predictor(x)
            except (RuntimeError, ValueError, IndexError) as exc:
                text = str(exc).strip()
                last = text.splitlines()[-1] if text else type(exc).__name__
                raise ModelInputError(
                    f"model {self.name!r} cannot take features of shape {tuple(x.shape)}: {last}"
                ) from None
        return _to_numpy(out, repr(self.name))


def _torchscript_predictor(name: str, files: list[Path]) -> Predictor:
    import torch

    modules = []
    for path in files:
        try:
            with warnings.catch_warnings():
                # TorchScript is the format users export fold models in; torch >= 2.10 deprecates
                # loading it, and the API's console is no place for that notice on every start.
                warnings.filterwarnings("ignore", message=r"`torch\.jit\.load` is deprecated", category=FutureWarning)
                modules.append(torch.jit.load(str(path), map_location="cpu").eval())
        except (RuntimeError, ValueError, OSError) as exc:
            raise ModelLoadError(f"model {name!r}: {path} is not a TorchScript file ({exc})") from None

    def predict(features: np.ndarray) -> dict[str, np.ndarray]:
        x = torch.from_numpy(features)
        folds = [_to_numpy(m(x), repr(name)) for m in modules]
        return {k: np.mean([f[k] for f in folds], axis=0) for k in folds[0]}

    return predict


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


def _load_torchscript(name: str, path: Path) -> SlideModel:
    if path.is_file():
        files, meta_path = [path], path.with_name(MODEL_META)
    elif path.is_dir():
        files, meta_path = _fold_files(path), path / MODEL_META
        if not files:
            hint = ""
            if (path / MODEL_META).is_file() and (path / "folds").is_dir():
                hint = " (a 'wsi-ssl mil train' run dir: configure it as {path: ..., loader: wsi_ssl.mil.loading:load_mil_model})"
            raise ModelLoadError(f"model {name!r}: {path} holds no {MODEL_FILE}, fold*/{MODEL_FILE} or fold*.pt{hint}")
    else:
        raise ModelLoadError(f"model {name!r}: {path} does not exist")
    meta = {**_read_meta(meta_path), "format": "torchscript", "folds": len(files)}
    return SlideModel(name=name, predictor=_torchscript_predictor(name, files), meta=meta)


def _load_plugin(name: str, spec: ModelSpec) -> SlideModel:
    target = str(spec.loader)
    module_name, _, func_name = target.partition(":")
    try:
        loader = getattr(importlib.import_module(module_name), func_name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ModelLoadError(
            f"model {name!r}: loader {target!r} cannot be imported ({exc}); write it as 'package.module:function'"
        ) from None
    if not spec.path.exists():
        raise ModelLoadError(f"model {name!r}: {spec.path} does not exist")
    try:
        loaded, meta = loader(spec.path)
    except Exception as exc:  # a third-party loader may raise anything; name it and the path
        raise ModelLoadError(f"model {name!r}: {target}({spec.path}) failed: {exc}") from None
    predictor = getattr(loaded, "predict_bag", loaded)
    if not callable(predictor):
        raise ModelLoadError(f"model {name!r}: {target} returned {type(loaded).__name__}, which has no predict_bag")
    meta = dict(meta or {})
    folds = meta.get("folds")
    meta.update({"format": target, "folds": len(folds) if isinstance(folds, list) else folds})
    return SlideModel(name=name, predictor=predictor, meta=meta)


def load_model(name: str, spec: Path | str | ModelSpec) -> SlideModel:
    """Load one configured model (see the module docstring for the two ways)."""
    if not isinstance(spec, ModelSpec):
        spec = ModelSpec(path=Path(spec))
    return _load_plugin(name, spec) if spec.loader else _load_torchscript(name, spec.path)


def load_models(models: dict[str, Any]) -> dict[str, SlideModel]:
    return {name: load_model(name, spec) for name, spec in models.items()}
