"""Projection heads and the backbone factory.

The DINO head is an MLP to a bottleneck, L2-normalised, then a weight-normalised linear layer to
the prototypes (Caron et al. 2021). The weight-norm gain can be frozen at 1 ("norm_last_layer"),
which stabilises training of small models.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from wsi_ssl.pretrain.config import BackboneConfig


def build_backbone(cfg: BackboneConfig, load_weights: bool = True) -> nn.Module:
    """A timm ViT with no classifier; ``dynamic_img_size`` so local crops share the weights."""
    import timm

    from wsi_ssl.encoders.timm_layers import resolve_timm_kwargs

    kwargs = resolve_timm_kwargs(backbone_kwargs(cfg))
    try:
        model = timm.create_model(
            cfg.arch, pretrained=False, num_classes=0, drop_path_rate=cfg.drop_path_rate, **kwargs
        )
    except Exception as exc:
        raise ValueError(f"backbone: timm cannot build {cfg.arch!r} with {kwargs}: {exc}") from None
    if load_weights and cfg.init:
        load_preset_weights(model, cfg.init, cfg.weights)
    elif load_weights and cfg.weights:
        load_backbone_weights(model, cfg.weights)
    return model


def backbone_kwargs(cfg: BackboneConfig) -> dict[str, Any]:
    """The kwargs that rebuild the backbone (saved into the encoder dir, so export matches training).

    Multi-crop needs ``dynamic_img_size`` (local crops are smaller than global ones); it changes no
    weight, so a preset built without it (H-optimus) is trained with it.
    """
    kwargs = dict(cfg.kwargs)
    if cfg.init:
        kwargs["dynamic_img_size"] = True
    kwargs.setdefault("dynamic_img_size", True)
    return kwargs


def load_preset_weights(model: nn.Module, name: str, path: str | None) -> None:
    """A zoo preset's published weights (HF cache, or ``path``), loaded strictly as the zoo loads them."""
    from wsi_ssl.encoders.builders import load_backbone_state, read_checkpoint
    from wsi_ssl.encoders.registry import get_preset
    from wsi_ssl.encoders.weights import find_weights

    preset = get_preset(name)
    source = find_weights(preset, path)
    # A transformers preset's file is converted to the timm layout on the way (convert.py).
    load_backbone_state(model, read_checkpoint(source), preset.as_timm(), ", ".join(str(f) for f in source.files))


def init_record(cfg: BackboneConfig) -> str:
    """What pretraining started from, for the encoder dir: ``preset@revision (sha256 ...)``, a file, or ''."""
    if cfg.init:
        from wsi_ssl.encoders.registry import get_preset
        from wsi_ssl.encoders.weights import find_weights

        preset = get_preset(cfg.init)
        try:
            source = find_weights(preset, cfg.weights)
        except ValueError:  # weights gone since training: the name and pinned revision still say what it was
            return f"{preset.name}@{preset.revision or 'unknown revision'}"
        return f"{preset.name}@{source.revision or preset.revision or 'local file'} (sha256 {source.sha256()})"
    return str(cfg.weights or "")


def load_backbone_weights(model: nn.Module, path: str) -> None:
    """Fill ``model`` from a local weights file (safetensors, a torch state dict or a DINO checkpoint)."""
    from pathlib import Path

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"backbone.weights: file not found: {p}")
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        state: Any = load_file(str(p))
    else:
        state = torch.load(str(p), map_location="cpu", weights_only=True)
        for key in ("teacher", "model", "state_dict"):
            if isinstance(state, dict) and isinstance(state.get(key), dict):
                state = state[key]
    state = {k.removeprefix("module.").removeprefix("backbone."): v for k, v in state.items()}
    # Resample position embeddings when the checkpoint was trained at another resolution.
    pe = getattr(model, "pos_embed", None)
    if pe is not None and "pos_embed" in state and state["pos_embed"].shape != pe.shape:
        from timm.layers import resample_abs_pos_embed

        n_prefix = 0 if getattr(model, "no_embed_class", False) else getattr(model, "num_prefix_tokens", 1)
        grid: Any = model.patch_embed.grid_size  # type: ignore[union-attr]
        state["pos_embed"] = resample_abs_pos_embed(state["pos_embed"], new_size=list(grid), num_prefix_tokens=n_prefix)
    missing, unexpected = model.load_state_dict(state, strict=False)
    unexpected = [k for k in unexpected if not k.startswith(("head.", "fc.", "classifier."))]
    if missing or unexpected:
        raise ValueError(
            f"backbone.weights {p}: does not fit the architecture: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )


class DINOHead(nn.Module):
    """MLP (3 layers, GELU) -> bottleneck -> L2 norm -> weight-normalised prototypes."""

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        hidden_dim: int = 2048,
        bottleneck_dim: int = 256,
        norm_last_layer: bool = True,
        n_layers: int = 3,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Linear(in_dim, hidden_dim), nn.GELU()]
        for _ in range(n_layers - 2):
            layers += [nn.Linear(hidden_dim, hidden_dim), nn.GELU()]
        layers.append(nn.Linear(hidden_dim, bottleneck_dim))
        self.mlp = nn.Sequential(*layers)
        self.apply(self._init)
        self.last_layer = weight_norm(nn.Linear(bottleneck_dim, out_dim, bias=False))
        self.last_layer.parametrizations.weight.original0.data.fill_(1.0)
        if norm_last_layer:
            self.last_layer.parametrizations.weight.original0.requires_grad = False

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.mlp(x)
        x = nn.functional.normalize(x, dim=-1, p=2, eps=1e-6)
        return self.last_layer(x)
