"""Checkpoints published in the transformers DINOv2 layout, as timm state dicts.

Continued pretraining runs on timm backbones, so a DINOv2-family model published for transformers
(Phikon-v2, Midnight, Hibou) is trained as the timm model of the same computation. The published
files use transformers' original key names (which later transformers versions convert on load);
those names are what this maps, so the conversion does not depend on the installed transformers.
A test holds the converted timm model to transformers' own forward on the same weights.

Mapping (``encoder.layer.i.`` -> ``blocks.i.``): query/key/value are stacked into ``attn.qkv``,
``attention.output.dense`` is ``attn.proj``, ``layer_scale{1,2}.lambda1`` is ``ls{1,2}.gamma``,
``mlp.weights_in``/``weights_out`` (SwiGLU, silu on the first half) is timm's ``SwiGLUPacked``
``fc1``/``fc2``; ``mask_token`` (masked-image training only) is dropped. With register tokens,
timm adds position embeddings to the patches only (``no_embed_class``) while transformers adds
the class slot to the class token, so that slot is folded into ``cls_token``.
"""

from __future__ import annotations

import re

import torch
from torch import nn

_LAYER = re.compile(r"^encoder\.layer\.(\d+)\.(.+)$")
_RENAME = {
    "norm1": "norm1",
    "norm2": "norm2",
    "attention.output.dense": "attn.proj",
    "mlp.fc1": "mlp.fc1",
    "mlp.fc2": "mlp.fc2",
    "mlp.weights_in": "mlp.fc1",
    "mlp.weights_out": "mlp.fc2",
}


def dinov2_hf_to_timm(state: dict[str, torch.Tensor], model: nn.Module | None = None) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    qkv: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        key = key.removeprefix("dinov2.")
        m = _LAYER.match(key)
        if m is None:
            _embedding(key, value, out)
            continue
        i, rest = m.groups()
        if rest.startswith("attention.attention."):
            which, _, kind = rest.removeprefix("attention.attention.").partition(".")
            qkv.setdefault(f"blocks.{i}.attn.qkv.{kind}", {})[which] = value
        elif rest.startswith(("layer_scale1.", "layer_scale2.")):
            out[f"blocks.{i}.ls{rest[11]}.gamma"] = value
        else:
            module, _, kind = rest.rpartition(".")
            if module not in _RENAME:
                raise KeyError(f"{key}: not a DINOv2 block weight this converter knows")
            out[f"blocks.{i}.{_RENAME[module]}.{kind}"] = value
    for key, parts in qkv.items():
        out[key] = torch.cat([parts["query"], parts["key"], parts["value"]], dim=0)
    if "reg_token" in out:  # timm's register variants keep no class slot in pos_embed
        out["cls_token"] = out["cls_token"] + out["pos_embed"][:, :1]
        out["pos_embed"] = out["pos_embed"][:, 1:]
    return out


def _embedding(key: str, value: torch.Tensor, out: dict[str, torch.Tensor]) -> None:
    names = {
        "embeddings.cls_token": "cls_token",
        "embeddings.register_tokens": "reg_token",
        "embeddings.position_embeddings": "pos_embed",
        "embeddings.patch_embeddings.projection.weight": "patch_embed.proj.weight",
        "embeddings.patch_embeddings.projection.bias": "patch_embed.proj.bias",
        "layernorm.weight": "norm.weight",
        "layernorm.bias": "norm.bias",
    }
    if key in names:
        out[names[key]] = value
    elif key != "embeddings.mask_token" and not key.startswith("pooler."):
        raise KeyError(f"{key}: not a DINOv2 weight this converter knows")
