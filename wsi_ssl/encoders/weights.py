"""Finding a preset's weights on local disk: the Hugging Face cache, or a path the user gives.

Weights are never downloaded at run time: clusters are often air-gapped, and a gated model's
licence is the user's to accept. The cache is read in its standard layout
(``$HF_HUB_CACHE`` or ``$HF_HOME/hub`` or ``~/.cache/huggingface/hub``, then
``models--ORG--NAME/snapshots/<commit>/``) through ``huggingface_hub`` with
``local_files_only=True``, so a cache filled by ``hf download`` on another machine
and copied over works as it is. When nothing is found the error says where the weights live,
whether a licence must be accepted first, and the one command that fetches them.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from wsi_ssl.encoders.preset import EncoderPreset
from wsi_ssl.stores.encoder_dir import EncoderError

_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt")
_INDEX_NAMES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")


class WeightsNotFound(EncoderError):
    """A preset whose weights are neither in the Hugging Face cache nor at the given path."""


@dataclass(frozen=True)
class WeightsSource:
    """Where a preset's weights were found: one file or the shards of one checkpoint."""

    files: tuple[Path, ...]
    revision: str | None  # the cache snapshot's commit, when read from the cache
    config_json: Path | None  # the repository's config.json beside the weights, if any
    origin: str  # "hf-cache" or "path"

    def sha256(self) -> str:
        """sha256 of the weight bytes, the shards in order (equal to the file's own hash when there is one).

        A file in the Hugging Face cache is a link to ``blobs/<sha256>`` (the LFS object id, the
        sha256 of its bytes), so a cached multi-GB checkpoint is identified without reading it.
        """
        if len(self.files) == 1:
            blob = self.files[0].resolve().name
            if self.files[0].is_symlink() and len(blob) == 64 and all(c in "0123456789abcdef" for c in blob):
                return blob
        h = hashlib.sha256()
        for path in self.files:
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
        return h.hexdigest()


def hf_cache_dir() -> Path:
    """The hub cache as huggingface_hub resolves it, read from the environment at call time."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return Path(home).expanduser() / "hub"


def find_weights(preset: EncoderPreset, path: str | Path | None = None) -> WeightsSource:
    """The preset's weights from ``path`` (a file or folder) or, without one, from the HF cache."""
    if path is not None:
        p = Path(path).expanduser()
        if p.is_file():
            config = p.parent / "config.json"
            return WeightsSource((p,), None, config if config.is_file() else None, "path")
        if p.is_dir():
            files = _weights_in_folder(p, preset)
            if files:
                return WeightsSource(files, None, _config(p), "path")
            raise WeightsNotFound(
                f"encoder preset {preset.name!r}: no weights file in {p} (looked for "
                f"{', '.join(preset.weights_files)} or a sharded checkpoint's index)"
            )
        raise WeightsNotFound(f"encoder preset {preset.name!r}: --encoder-weights {p} does not exist")
    folder, revision = _cache_snapshot(preset)
    if folder is not None:
        files = _weights_in_folder(folder, preset)
        if files:
            return WeightsSource(files, revision, _config(folder), "hf-cache")
    raise WeightsNotFound(missing_weights_message(preset))


def weights_found(preset: EncoderPreset) -> bool:
    try:
        find_weights(preset)
    except EncoderError:
        return False
    return True


def missing_weights_message(preset: EncoderPreset) -> str:
    gate = (
        f"It is gated: first accept its licence ({preset.license}) at https://huggingface.co/{preset.repo_id} "
        "and log in with `hf auth login`. "
        if preset.gated
        else f"Its licence is {preset.license}. "
    )
    return (
        f"encoder preset {preset.name!r}: weights not found in the Hugging Face cache ({hf_cache_dir()}) "
        f"and no --encoder-weights given. They are published in {preset.repo_id}. {gate}"
        f"On a machine with internet access run: {preset.hf_download_command} "
        "(then copy that cache here or point HF_HOME at it), or pass the weights file or folder with --encoder-weights."
    )


def _cache_snapshot(preset: EncoderPreset) -> tuple[Path | None, str | None]:
    """The cached snapshot folder: the pinned revision, else ``main``, else the only snapshot there is."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    cache = hf_cache_dir()
    for revision in dict.fromkeys([preset.revision, None]):
        try:
            folder = Path(snapshot_download(preset.repo_id, revision=revision, cache_dir=cache, local_files_only=True))
        except (LocalEntryNotFoundError, FileNotFoundError, OSError, ValueError):
            continue
        return folder, folder.name
    snapshots = cache / f"models--{preset.repo_id.replace('/', '--')}" / "snapshots"
    found = sorted(p for p in snapshots.iterdir() if p.is_dir()) if snapshots.is_dir() else []
    if len(found) == 1:
        return found[0], found[0].name
    return None, None


def _weights_in_folder(folder: Path, preset: EncoderPreset) -> tuple[Path, ...]:
    for name in preset.weights_files:
        if (folder / name).is_file():
            return (folder / name,)
    for index in _INDEX_NAMES:
        if (folder / index).is_file():
            shards = sorted(set(json.loads((folder / index).read_text())["weight_map"].values()))
            files = tuple(folder / s for s in shards)
            missing = [f.name for f in files if not f.is_file()]
            if missing:
                raise WeightsNotFound(
                    f"encoder preset {preset.name!r}: {folder / index} names shards that are "
                    f"missing: {missing}; the download was interrupted"
                )
            return files
    candidates = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in _WEIGHT_SUFFIXES)
    return (candidates[0],) if len(candidates) == 1 else ()


def _config(folder: Path) -> Path | None:
    return folder / "config.json" if (folder / "config.json").is_file() else None
