"""Every preset against its published facts: parameter count, embedding width, checkpoint layout.

Models are built on the meta device, so even the 1.1B-parameter ones cost nothing here.
"""

from __future__ import annotations

import pytest
import torch
from zoo_helpers import MANIFESTS, expand, manifest, random_state

from wsi_ssl.encoders.builders import BUILDERS, build_backbone, build_encoder, checkpoint_filter
from wsi_ssl.encoders.pooling import WIDTH_FACTOR
from wsi_ssl.encoders.registry import get_preset, preset_names
from wsi_ssl.encoders.weights import WeightsSource

REQUIRED = {
    "uni",
    "uni2-h",
    "virchow",
    "virchow2",
    "h-optimus-0",
    "h-optimus-1",
    "h0-mini",
    "prov-gigapath",
    "phikon",
    "phikon-v2",
    "conch-v1.5",
    "midnight-12k",
    "kaiko-vits16",
    "kaiko-vitb16",
    "lunit-vits8",
    "ctranspath",
    "hibou-b",
    "dinov2-vits14",
    "dinov2-vitl14",
}
# Figures the issue quotes from the model cards, checked apart from the records themselves.
PUBLISHED = {
    "uni2-h": (681e6, 1536),
    "virchow2": (632e6, 2560),
    "h-optimus-0": (1.13e9, 1536),
    "prov-gigapath": (1.13e9, 1536),
}
TIMM_LIKE = [n for n in sorted(REQUIRED) if get_preset(n).builder in ("timm", "module")]
TRANSFORMERS = [n for n in sorted(REQUIRED) if get_preset(n).builder == "transformers"]


def test_the_zoo_has_every_required_preset() -> None:
    assert REQUIRED <= set(preset_names())
    assert len(preset_names()) >= 18


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_parameter_count_and_embedding_width(name: str) -> None:
    preset = get_preset(name)
    model = build_encoder(preset, device="meta")
    n = sum(p.numel() for p in model.parameters())
    assert abs(n - preset.params) <= 0.005 * preset.params, f"{name}: {n:,} parameters, published {preset.params:,}"
    y = model(torch.empty(2, 3, preset.input_size, preset.input_size, device="meta"))
    assert tuple(y.shape) == (2, preset.embed_dim)
    if preset.pooling != "model":
        assert preset.embed_dim == WIDTH_FACTOR[preset.pooling] * model.num_features
    if name in PUBLISHED:
        params, dim = PUBLISHED[name]
        assert abs(n - params) <= 0.005 * params and preset.embed_dim == dim


@pytest.mark.parametrize("name", TIMM_LIKE)
def test_state_dict_equals_the_published_checkpoint_layout(name: str) -> None:
    preset = get_preset(name)
    backbone = build_backbone(preset, "meta")
    expected = expand(manifest(name))
    if preset.checkpoint_filter:  # an older upstream layout, converted by the architecture's own library
        published = {k: torch.empty(shape, device="meta") for k, shape in expected.items()}
        expected = {
            k: tuple(v.shape) for k, v in checkpoint_filter(preset.checkpoint_filter)(published, backbone).items()
        }
    got = {k: tuple(v.shape) for k, v in backbone.state_dict().items()}
    assert set(got) == set(expected), (
        f"missing {sorted(set(expected) - set(got))[:5]}, extra {sorted(set(got) - set(expected))[:5]}"
    )
    wrong = {k: (got[k], expected[k]) for k in expected if got[k] != expected[k]}
    assert not wrong


@pytest.mark.parametrize("name", TRANSFORMERS)
def test_published_checkpoint_keys_load_into_the_transformers_model(name: str, tmp_path) -> None:
    """The checkpoint's own key names (transformers-4 naming) load with nothing missing or misshapen.

    Transformers renames modules between versions and converts old checkpoints on load, so the
    check goes through ``from_pretrained``, on a copy of the model cut to one block (full widths).
    """
    from dataclasses import replace

    from safetensors.torch import save_file

    preset = get_preset(name)
    man = manifest(name)
    assert man["repeated"][0]["count"] == preset.kwargs["num_hidden_layers"]
    one_block = replace(preset, kwargs={**preset.kwargs, "num_hidden_layers": 1})
    save_file(random_state(expand(man, blocks=1)), str(tmp_path / "model.safetensors"))
    backbone = BUILDERS["transformers"].load(
        one_block, WeightsSource((tmp_path / "model.safetensors",), None, None, "path")
    )
    assert sum(p.numel() for p in backbone.parameters()) > 0


def test_every_preset_has_a_manifest_and_sources() -> None:
    for name in preset_names():
        assert (MANIFESTS / f"{name}.json").is_file(), f"{name}: no state-dict manifest in tests/encoders/manifests"
        preset = get_preset(name)
        assert all(preset.sources[k] for k in ("params", "embed_dim", "mpp", "pooling", "mean_std"))
        assert len(preset.mean) == 3 and len(preset.std) == 3
        assert "/" in preset.repo_id


def test_without_transformers_the_message_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from wsi_ssl.stores.encoder_dir import EncoderError

    monkeypatch.setitem(sys.modules, "transformers", None)  # as if not installed
    with pytest.raises(EncoderError, match=r"pip install 'wsi_ssl\[transformers\]'"):
        build_backbone(get_preset("phikon-v2"), "meta")


def test_the_docs_table_lists_every_preset_as_recorded() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "encoders.md").read_text()
    for name in preset_names():
        preset = get_preset(name)
        row = next((line for line in doc.splitlines() if line.startswith(f"| `{name}` |")), None)
        assert row is not None, f"docs/encoders.md has no row for {name}"
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[6] == f"`{preset.pooling}`" and cells[7] == str(preset.embed_dim)
        assert cells[4] == ("-" if preset.mpp is None else str(preset.mpp)) and cells[3] == str(preset.input_size)
