"""``wsi-ssl mil train`` and ``wsi-ssl mil predict`` (torch is imported only when they run)."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    mil = subparsers.add_parser("mil", help="slide-level MIL models: cross-validated training and prediction")
    sub = mil.add_subparsers(dest="mil_command", metavar="ACTION")
    mil.set_defaults(func=lambda args: (mil.print_help(), 2)[1])

    tr = sub.add_parser(
        "train", help="K-fold cross-validated training; writes models, predictions, metrics, plots, heatmaps"
    )
    tr.add_argument("--config", required=False, help="YAML config (configs/mil/*.yaml); defaults when omitted")
    tr.add_argument("--features", required=True, help="folder of <slide_id>.h5 feature files (ours, CLAM or TRIDENT)")
    tr.add_argument("--slides", required=True, help="slide table CSV: slide_id, patient_id, targets (Contract 4)")
    tr.add_argument(
        "--out", required=True, help="run dir to write (an existing one resumes at the first unfinished fold)"
    )
    tr.add_argument("--slides-dir", default=None, help="folder of slide files for heatmap thumbnails (<slide_id>.*)")
    tr.add_argument("--folds", type=int, default=None, help="override eval.folds")
    tr.add_argument("--epochs", type=int, default=None, help="override train.epochs")
    tr.add_argument("--device", default=None, help="override train.device (auto, cpu, cuda)")
    tr.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any config key, e.g. aggregator.kind=transformer",
    )
    tr.set_defaults(func=_train)

    pr = sub.add_parser("predict", help="score new slides with a trained run's fold-model ensemble")
    pr.add_argument("--model", required=True, help="run dir written by 'wsi-ssl mil train'")
    pr.add_argument("--features", required=True, help="folder of <slide_id>.h5 feature files")
    pr.add_argument("--out", required=True, help="predictions CSV to write")
    pr.add_argument(
        "--slides", default=None, help="optional slide table (slide_id, patient_id) to choose slides and group patients"
    )
    pr.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:1 ...")
    pr.add_argument("--batch-size", type=int, default=8, help="bags per forward pass")
    pr.add_argument(
        "--max-bags-in-memory", type=int, default=256, help="bags read at a time: bounds memory on any cohort size"
    )
    pr.set_defaults(func=_predict)


def _train(args: argparse.Namespace) -> int:
    from wsi_ssl.config import load_config, parse_overrides
    from wsi_ssl.mil.config import MilConfig

    cfg = load_config(
        MilConfig,
        args.config,
        parse_overrides(args.set),
        {"eval.folds": args.folds, "train.epochs": args.epochs, "train.device": args.device},
    )
    import torch

    from wsi_ssl.mil.experiment import summary_line, train_run
    from wsi_ssl.mil.splits import SplitError
    from wsi_ssl.mil.table import SlideTableError
    from wsi_ssl.stores.features import FeatureFileError

    if cfg.train.num_threads:
        torch.set_num_threads(cfg.train.num_threads)
    try:
        result = train_run(cfg, args.features, args.slides, args.out, args.slides_dir)
    except (SlideTableError, SplitError, FeatureFileError) as exc:
        print(f"wsi-ssl mil train: {exc}", file=sys.stderr)
        return 2
    print(summary_line(result))
    return 0


def _predict(args: argparse.Namespace) -> int:
    from wsi_ssl.mil.loading import ModelDirError
    from wsi_ssl.mil.predict import predict_run
    from wsi_ssl.mil.table import SlideTableError
    from wsi_ssl.mil.train import pick_device
    from wsi_ssl.stores.features import FeatureFileError

    if args.batch_size < 1 or args.max_bags_in_memory < 1:
        print("wsi-ssl mil predict: --batch-size and --max-bags-in-memory must be at least 1", file=sys.stderr)
        return 2
    try:
        device = pick_device(args.device)
    except RuntimeError as exc:
        print(f"wsi-ssl mil predict: --device {args.device!r}: {exc}", file=sys.stderr)
        return 2
    try:
        df = predict_run(
            args.model, args.features, args.out, args.slides, args.batch_size, str(device), args.max_bags_in_memory
        )
    except (ModelDirError, SlideTableError, FeatureFileError) as exc:
        print(f"wsi-ssl mil predict: {exc}", file=sys.stderr)
        return 2
    print(f"predicted {len(df)} bag(s) -> {args.out}")
    return 0
