"""``wsi-ssl evaluate``: frozen-encoder evaluation on a labelled patch set, with stain robustness.

Only argparse here; torch and the protocols are imported inside ``run``. Exit code 0 when every
encoder of the shard was evaluated, 2 for a bad config, dataset or encoder.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from wsi_ssl.config import load_config, parse_overrides

FLAG_KEYS = ("encoder_weights", "dataset", "data", "mpp", "out", "cache_dir", "shard", "device", "threads")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="score encoders on a labelled patch set: linear probe, kNN, few-shot, stain robustness",
        description="Embed a labelled patch set (crc, bach, mhist, pcam, folder or csv) with each --encoder "
        "(cached), score a linear probe, kNN and few-shot logistic regression over several seeds, re-score the "
        "probe under stain and scanner shifts, and write OUT/results.json, results.csv, plots and report.html.",
    )
    p.add_argument(
        "--encoder",
        dest="encoders",
        action="append",
        help="encoder dir, zoo preset, timm name (with --encoder-weights) or a pretraining run/checkpoint; repeatable",
    )
    p.add_argument(
        "--encoder-weights", dest="encoder_weights", help="weights file for a timm name ('random' for a baseline)"
    )
    p.add_argument("--dataset", help="crc, bach, mhist, pcam, folder or csv")
    p.add_argument("--data", help="the dataset's folder (or the CSV for --dataset csv)")
    p.add_argument("--mpp", type=float, help="microns per pixel of the patches (needed for folder and csv)")
    p.add_argument("--out", help="output folder")
    p.add_argument("--config", help="YAML config (see configs/evaluate/default.yaml)")
    p.add_argument("--set", dest="overrides", action="append", metavar="KEY=VALUE", help="override a config key")
    p.add_argument("--cache-dir", dest="cache_dir", help="embedding cache folder (default OUT/cache)")
    p.add_argument("--shard", help="I/N: this job's share of the encoders (default: SLURM array vars)")
    p.add_argument("--device", help="auto (default), cpu, cuda, cuda:N")
    p.add_argument("--threads", type=int, help="torch CPU threads (0 = default)")
    p.add_argument("--no-progress", dest="progress", action="store_const", const=False, help="no progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from wsi_ssl.evaluate.config import EvaluateConfig
    from wsi_ssl.evaluate.runner import run_evaluate
    from wsi_ssl.stores.encoder_dir import EncoderError

    flags = {key: getattr(args, key, None) for key in FLAG_KEYS}
    flags["encoders"] = args.encoders
    flags["progress"] = getattr(args, "progress", None)
    cfg = load_config(EvaluateConfig, args.config, parse_overrides(args.overrides), flags)
    try:
        out = run_evaluate(cfg)
    except (EncoderError, FileNotFoundError) as exc:
        print(f"wsi-ssl evaluate: {exc}", file=sys.stderr)
        return 2
    print(f"wsi-ssl evaluate: wrote {out / 'results.json'}, results.csv and report.html", file=sys.stderr)
    return 0
