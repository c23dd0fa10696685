"""Helpers for the zoo tests: manifests, random checkpoints in upstream layouts, a fake Hugging Face cache."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

MANIFESTS = Path(__file__).parent / "manifests"


def manifest(name: str) -> dict[str, Any]:
    return json.loads((MANIFESTS / f"{name}.json").read_text())


def expand(man: dict[str, Any], blocks: int | None = None) -> dict[str, tuple[int, ...]]:
    """Every key -> shape of a manifest; ``blocks`` keeps only the first N repeated blocks."""
    out = {k: tuple(v) for k, v in man["keys"].items()}
    for group in man["repeated"]:
        for i in range(group["count"] if blocks is None else min(blocks, group["count"])):
            prefix = group["prefix"].format(i=i)
            out.update({prefix + k: tuple(v) for k, v in group["keys"].items()})
    return out


def random_state(shapes: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, torch.Tensor]:
    """Random float32 tensors of the given shapes (small values, so a forward stays finite)."""
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(shape, generator=g) * 0.02 for k, shape in shapes.items()}


def write_hf_snapshot(cache: Path, repo_id: str, files: dict[str, Any], revision: str = "0" * 40,
                      ref: str | None = "main") -> Path:
    """Lay out ``cache/models--ORG--NAME/snapshots/<revision>/`` as ``hf download`` does.

    ``files`` maps a file name to a state dict (written as safetensors or torch pickle by suffix)
    or to a dict/str written as JSON/text. ``ref`` names the branch file pointing at the snapshot.
    """
    from safetensors.torch import save_file

    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snap = repo / "snapshots" / revision
    snap.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = snap / name
        if name.endswith(".safetensors"):
            save_file({k: v.contiguous() for k, v in content.items()}, str(path))
        elif name.endswith((".bin", ".pth")):
            torch.save(content, path)
        elif isinstance(content, (dict, list)):
            path.write_text(json.dumps(content))
        else:
            path.write_text(str(content))
    if ref is not None:
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / ref).write_text(revision)
    return snap
