"""DINOv2-family checkpoints in transformers' layout, converted to timm, compute what transformers computes.

The reference is transformers' own model loaded from the same file (``from_pretrained``); the
converted timm model must give the same tokens (class, registers, patches) and the same pooled
embedding. Models are cut to two blocks at full width, so the 1.1B-parameter Midnight costs little.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from zoo_helpers import expand, manifest, random_state

from wsi_ssl.encoders.builders import BUILDERS, checkpoint_filter, load_backbone_state, wrap
from wsi_ssl.encoders.registry import get_preset, preset_names
from wsi_ssl.encoders.weights import WeightsSource

CONVERTIBLE = [n for n in preset_names() if get_preset(n).timm_equivalent]


def test_the_dinov2_family_is_convertible() -> None:
    assert {"phikon-v2", "midnight-12k", "hibou-b"} <= set(CONVERTIBLE)


@pytest.mark.parametrize("name", CONVERTIBLE)
def test_converted_timm_model_equals_the_transformers_forward(name: str, tmp_path: Path) -> None:
    preset = get_preset(name)
    blocks = 2
    state = random_state(expand(manifest(name), blocks=blocks), seed=5)
    # Layer-scale of 1 and unit norms, so the two blocks move the tokens well away from the input.
    state = {
        k: (torch.ones_like(v) if k.endswith(("lambda1", "norm1.weight", "norm2.weight")) else v * 20)
        for k, v in state.items()
    }
    save_file(state, str(tmp_path / "model.safetensors"))
    source = WeightsSource((tmp_path / "model.safetensors",), None, None, "path")
    hf = replace(preset, kwargs={**preset.kwargs, "num_hidden_layers": blocks})
    reference = wrap(BUILDERS["transformers"].load(hf, source), hf).eval()

    as_timm = preset.as_timm()
    as_timm = replace(as_timm, kwargs={**as_timm.kwargs, "depth": blocks})
    backbone = BUILDERS["timm"].build(as_timm)
    load_backbone_state(backbone, dict(state), as_timm, "test checkpoint")
    converted = wrap(backbone, as_timm).eval()

    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        want, got = reference.forward_tokens(x), converted.forward_tokens(x)
        assert got.shape == want.shape
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(converted(x), reference(x), rtol=1e-4, atol=1e-4)
    assert want.std() > 0.1  # the comparison is not between two near-constant outputs


def test_an_unknown_key_is_an_error() -> None:
    with pytest.raises(KeyError, match="converter"):
        checkpoint_filter("hf_dinov2_to_timm")({"encoder.layer.0.attention.rope.freq": torch.zeros(1)}, None)
