"""Finding a preset's weights offline: the Hugging Face cache layout, a given path, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from zoo_helpers import write_hf_snapshot

from wsi_ssl.encoders.registry import get_preset
from wsi_ssl.encoders.weights import WeightsNotFound, find_weights, hf_cache_dir, weights_found

STATE = {"w": torch.zeros(2)}


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path / "hf" / "hub"


def test_cache_dir_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    assert hf_cache_dir() == tmp_path / "home" / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "elsewhere"))
    assert hf_cache_dir() == tmp_path / "elsewhere"


def test_pinned_revision_is_found_in_the_cache(cache: Path) -> None:
    preset = get_preset("virchow2")
    snap = write_hf_snapshot(
        cache,
        preset.repo_id,
        {"model.safetensors": STATE, "config.json": {"a": 1}},
        revision=preset.revision or "1" * 40,
    )
    source = find_weights(preset)
    assert source.files == (snap / "model.safetensors",)
    assert source.revision == preset.revision and source.origin == "hf-cache"
    assert source.config_json == snap / "config.json"
    assert weights_found(preset)


def test_another_revision_on_main_is_used_and_recorded(cache: Path) -> None:
    preset = get_preset("uni2-h")
    write_hf_snapshot(cache, preset.repo_id, {"pytorch_model.bin": STATE}, revision="a" * 40)
    source = find_weights(preset)
    assert source.revision == "a" * 40 != preset.revision


def test_a_lone_snapshot_without_refs_is_used(cache: Path) -> None:
    preset = get_preset("uni")
    write_hf_snapshot(cache, preset.repo_id, {"pytorch_model.bin": STATE}, revision="b" * 40, ref=None)
    assert find_weights(preset).revision == "b" * 40


def test_sharded_checkpoint_and_a_missing_shard(cache: Path) -> None:
    preset = get_preset("h-optimus-1")
    index = {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}
    snap = write_hf_snapshot(
        cache,
        preset.repo_id,
        {
            "model.safetensors.index.json": index,
            "model-00001-of-00002.safetensors": {"a": torch.ones(1)},
            "model-00002-of-00002.safetensors": {"b": torch.ones(1)},
        },
    )
    source = find_weights(preset)
    assert [f.name for f in source.files] == ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    assert len(source.sha256()) == 64
    (snap / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(WeightsNotFound, match="interrupted"):
        find_weights(preset)


def test_missing_weights_say_where_and_how(cache: Path) -> None:
    gated = get_preset("uni2-h")
    with pytest.raises(WeightsNotFound) as info:
        find_weights(gated)
    msg = str(info.value)
    assert gated.repo_id in msg and "gated" in msg and "accept its licence" in msg
    assert f"hf download {gated.repo_id} --revision {gated.revision}" in msg
    assert str(cache) in msg and "--encoder-weights" in msg
    open_model = get_preset("phikon")
    msg = str(pytest.raises(WeightsNotFound, find_weights, open_model).value)
    assert "gated" not in msg and "hf download owkin/phikon" in msg
    assert not weights_found(open_model)


def test_explicit_file_and_folder(tmp_path: Path, cache: Path) -> None:
    preset = get_preset("kaiko-vits16")
    f = tmp_path / "mine.safetensors"
    from safetensors.torch import save_file

    save_file(STATE, str(f))
    assert find_weights(preset, f).files == (f,)
    folder = tmp_path / "clone"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(f.read_bytes())
    assert find_weights(preset, folder).files == (folder / "model.safetensors",)
    with pytest.raises(WeightsNotFound, match="does not exist"):
        find_weights(preset, tmp_path / "nope.bin")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(WeightsNotFound, match="no weights file"):
        find_weights(preset, empty)


def test_a_cached_blob_is_identified_by_its_lfs_name_without_reading(cache: Path) -> None:
    """hf download stores snapshots/<rev>/FILE as a link to blobs/<sha256 of the bytes>."""
    import hashlib

    preset = get_preset("virchow")
    snap = write_hf_snapshot(cache, preset.repo_id, {}, revision=preset.revision or "0" * 40)
    data = b"weights" * 1000
    digest = hashlib.sha256(data).hexdigest()
    blob = cache / f"models--{preset.repo_id.replace('/', '--')}" / "blobs" / digest
    blob.parent.mkdir()
    blob.write_bytes(data)
    (snap / "model.safetensors").symlink_to(blob)
    source = find_weights(preset)
    assert source.sha256() == digest
    blob.write_bytes(b"tampered")  # the name is trusted, as huggingface_hub trusts it
    assert source.sha256() == digest
