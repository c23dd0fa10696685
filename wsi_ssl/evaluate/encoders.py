"""``--encoder E`` for evaluation: whatever ``load_encoder`` takes, plus a pretraining run or checkpoint.

A pretraining run dir (``RUN/checkpoints/*.ckpt``) or a ``.ckpt`` file is exported once with
``wsi-ssl export``'s own code into ``OUT/encoders/<name>`` and then loaded like any encoder dir,
so the evaluated weights are exactly those ``embed`` would use. The identity that keys the
embedding cache is the weights' sha256 (from the encoder's config, or hashed from its tensors
when the config has none, as for a random timm baseline).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wsi_ssl.stores.encoder_dir import EncoderConfig


@dataclass
class LoadedEncoder:
    name: str
    spec: str
    model: Any
    config: EncoderConfig
    sha256: str


def is_checkpoint(spec: str) -> bool:
    p = Path(spec)
    return (p.is_file() and p.suffix == ".ckpt") or (p.is_dir() and (p / "checkpoints").is_dir())


def encoder_name(spec: str) -> str:
    p = Path(spec)
    if p.exists():
        return p.name if p.suffix != ".ckpt" else (p.parent.parent.name or p.stem)
    return spec.replace("/", "_")


def state_sha256(model: Any) -> str:
    h = hashlib.sha256()
    for key, tensor in sorted(model.state_dict().items()):
        h.update(key.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def load_for_evaluation(spec: str, weights: str | None, work_dir: Path, name: str | None = None) -> LoadedEncoder:
    """Load ``spec`` (exporting a checkpoint first) and name it for tables and plots."""
    from wsi_ssl.encoders.load import load_encoder

    label = name or encoder_name(spec)
    target: str | Path = spec
    if is_checkpoint(spec):
        from wsi_ssl.pretrain.export import export_encoder

        target = work_dir / "encoders" / label
        if not (target / "config.json").is_file():
            export_encoder(spec, target, name=label)
    model, config = load_encoder(target, weights)
    sha = config.sha256 or state_sha256(model)
    return LoadedEncoder(label, spec, model, config, sha)
