"""``wsi-ssl pretrain`` and ``wsi-ssl export``: argument parsing only; the work is in ``run``/``export``.

torch, timm and Lightning are imported inside the handlers so ``wsi-ssl --help`` stays instant.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

log = logging.getLogger("wsi_ssl.pretrain")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "pretrain",
        help="self-supervised pretraining (DINO / MAE) of a ViT tile encoder on tile stores",
        description="Pretrain a timm ViT on tile stores with DINO (+KoLeo, iBOT) or MAE, using Lightning. "
        "Writes checkpoints, metrics (CSV + TensorBoard), curves.png and the resolved config to --out. "
        "Rerunning with the same --out resumes the run (or says it is finished).",
    )
    p.add_argument("--config", required=True, help="YAML config, e.g. configs/pretrain/tiny_cpu.yaml")
    p.add_argument(
        "--tiles",
        nargs="+",
        default=[],
        metavar="DIR",
        help="folders of tile stores (or .zarr stores); default: data.tiles of the config",
    )
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument(
        "--resume",
        action="store_true",
        help="insist on continuing RUN_DIR/checkpoints/last.ckpt (an error when there is none); "
        "without it a rerun resumes when there is one and starts afresh when there is none",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set trainer.max_steps=500 (repeatable)",
    )
    p.add_argument("--max-steps", type=int, default=None, help="shortcut for --set trainer.max_steps=N")
    p.set_defaults(func=_pretrain)

    e = subparsers.add_parser(
        "export",
        help="write an encoder dir (Contract 2) from a pretraining run or checkpoint",
        description="Export the teacher backbone (DINO) or encoder (MAE) of RUN_DIR/checkpoints/last.ckpt, "
        "or of a given .ckpt, as model.safetensors + config.json loadable with timm alone.",
    )
    e.add_argument("run", metavar="RUN_DIR_or_CKPT")
    e.add_argument("--out", required=True, help="encoder directory to write")
    e.add_argument("--name", default="", help="encoder name recorded in config.json (default: the folder name)")
    e.set_defaults(func=_export)


def _pretrain(args: argparse.Namespace) -> int:
    from wsi_ssl.config import load_config, parse_overrides
    from wsi_ssl.pretrain.config import PretrainConfig

    cfg = load_config(
        PretrainConfig, args.config, parse_overrides(args.overrides), {"trainer.max_steps": args.max_steps}
    )
    from wsi_ssl.pretrain.module import NonFiniteLossError
    from wsi_ssl.pretrain.run import RunDirError, run_pretrain
    from wsi_ssl.stores.tile_store import TileStoreError

    try:
        run_pretrain(cfg, args.tiles, args.out, resume=args.resume)
    except NonFiniteLossError as exc:
        print(
            f"wsi-ssl pretrain: {exc}. Checkpoints in {args.out}/checkpoints are untouched; "
            "fix the config and rerun the same command to resume from the last good one.",
            file=sys.stderr,
        )
        return 1
    except (RunDirError, TileStoreError, FileNotFoundError) as exc:
        print(f"wsi-ssl pretrain: {exc}", file=sys.stderr)
        return 2
    return 0


def _export(args: argparse.Namespace) -> int:
    from wsi_ssl.pretrain.export import export_encoder

    try:
        config = export_encoder(args.run, args.out, name=args.name)
    except (FileNotFoundError, ValueError) as exc:
        print(f"wsi-ssl export: {exc}", file=sys.stderr)
        return 2
    print(
        f"exported {config.method} encoder {config.arch} (dim {config.embed_dim}, {config.steps} steps, "
        f"mpp {config.mpp}) to {args.out} sha256 {config.sha256[:12]}"
    )
    return 0
