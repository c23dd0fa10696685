"""``wsi-ssl embed``: tile stores + an encoder -> one feature h5 per slide.

Only argparse here; torch, timm and Lightning are imported inside ``run`` so ``wsi-ssl --help``
stays instant. Exit code 0 when every slide is embedded or already was, 1 when any slide failed
(the others are still written), 2 for a bad config, encoder or tiles folder.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from wsi_ssl.config import load_config, parse_overrides

# CLI flag -> config key; a flag left out keeps the YAML/default value.
FLAG_KEYS = (
    "tiles",
    "encoder",
    "encoder_weights",
    "out",
    "batch_size",
    "workers",
    "precision",
    "dtype",
    "device",
    "devices",
    "num_nodes",
    "compile",
    "threads",
    "mpp_tolerance",
    "shard",
)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "embed",
        help="embed tile stores with an encoder into per-slide feature h5 files",
        description="Embed every tile of every tile store in --tiles with --encoder and write OUT/<slide_id>.h5 "
        "(datasets features [N, D] and coords [N, 2], the CLAM/TRIDENT layout). Complete slides are skipped, "
        "so rerunning the same command resumes an interrupted run.",
    )
    p.add_argument("--tiles", help="folder of tile stores (<slide_id>.zarr)")
    p.add_argument(
        "--encoder",
        help="encoder dir (model.safetensors + config.json), a preset (wsi-ssl encoders list) or a timm model name",
    )
    p.add_argument(
        "--encoder-weights",
        dest="encoder_weights",
        help="local weights file or folder for a preset (default: the Hugging Face cache) or a timm model name",
    )
    p.add_argument("--out", help="output folder of feature files")
    p.add_argument("--config", help="YAML config (see configs/embed/default.yaml)")
    p.add_argument("--set", dest="overrides", action="append", metavar="KEY=VALUE", help="override a config key")
    p.add_argument("--batch-size", dest="batch_size", type=int)
    p.add_argument("--workers", type=int, help="DataLoader worker processes decoding tiles")
    p.add_argument("--precision", choices=["fp32", "bf16", "fp16"], help="autocast precision of the forward")
    p.add_argument("--dtype", choices=["float32", "float16"], help="storage dtype of the features")
    p.add_argument("--device", help="auto (default), cpu, cuda, cuda:N, mps")
    p.add_argument("--devices", type=int, help="GPUs per node, one process each")
    p.add_argument("--num-nodes", dest="num_nodes", type=int)
    p.add_argument("--compile", action="store_const", const=True, help="torch.compile the encoder")
    p.add_argument("--threads", type=int, help="torch threads for a CPU forward (0 = all cores)")
    p.add_argument(
        "--mpp-tolerance",
        dest="mpp_tolerance",
        type=float,
        help="relative difference allowed between the tiles' and the encoder's MPP (default 0.10)",
    )
    p.add_argument("--shard", help="I/N: this job's disjoint share of the slides (default: SLURM array vars)")
    p.add_argument("--no-progress", dest="progress", action="store_const", const=False, help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from wsi_ssl.embed.config import EmbedConfig
    from wsi_ssl.embed.runner import run_embed
    from wsi_ssl.stores.encoder_dir import EncoderError
    from wsi_ssl.stores.tile_store import TileStoreError

    flags = {key: getattr(args, key, None) for key in FLAG_KEYS}
    flags["progress"] = getattr(args, "progress", None)
    cfg = load_config(EmbedConfig, args.config, parse_overrides(args.overrides), flags)
    try:
        summary = run_embed(cfg)
    except (EncoderError, TileStoreError) as exc:  # nothing was embedded: a bad --encoder or --tiles
        print(f"wsi-ssl embed: {exc}", file=sys.stderr)
        return 2
    print(f"wsi-ssl embed: {summary.line()}", file=sys.stderr)
    for slide_id, why in summary.failed.items():
        print(f"  failed {slide_id}: {why}", file=sys.stderr)
    return 0 if summary.ok else 1
