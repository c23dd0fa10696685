"""``wsi-ssl mil train`` and ``wsi-ssl mil predict`` (torch is imported only when they run)."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from wsi_ssl.shard import SHARD_HELP

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
        "--shard", help=SHARD_HELP.replace("process only shard I", "train only folds I, I+N, ... (shard I)")
    )
    tr.add_argument(
        "--merge",
        action="store_true",
        help="after a sharded run: train nothing, gather every fold's model into predictions and metrics",
    )
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
    pr.add_argument(
        "--omics", default=None, help="per-patient omics table (runs trained with data.omics; default: the run's)"
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

    from wsi_ssl.mil.cv import FoldNotTrainedError
    from wsi_ssl.mil.experiment import summary_line, train_run
    from wsi_ssl.mil.splits import SplitError
    from wsi_ssl.mil.table import SlideTableError
    from wsi_ssl.shard import parse_shard
    from wsi_ssl.stores.features import FeatureFileError

    if cfg.train.num_threads:
        torch.set_num_threads(cfg.train.num_threads)
    try:
        if args.merge and args.shard:
            raise ValueError("--merge gathers every shard's folds: give it without --shard")
        shard = None if args.merge else parse_shard(args.shard)
    except ValueError as exc:
        print(f"wsi-ssl mil train: {exc}", file=sys.stderr)
        return 2
    try:
        from wsi_ssl.mil.loading import MODEL_JSON
        from wsi_ssl.storage.rundir import local_run_dir

        with local_run_dir(args.out, last=MODEL_JSON) as out:  # an s3:// URL: published on return
            result = train_run(cfg, args.features, args.slides, out, args.slides_dir, shard, args.merge)
    except (SlideTableError, SplitError, FeatureFileError, FoldNotTrainedError) as exc:
        print(f"wsi-ssl mil train: {exc}", file=sys.stderr)
        return 2
    if result.trained_folds is not None:
        folds = ", ".join(map(str, result.trained_folds)) or "none (more shards than folds)"
        print(f"shard {shard}: trained fold(s) {folds}; once every shard is done, gather them with --merge")
        return 0
    print(summary_line(result))
    from wsi_ssl.mil.clinical.compare import comparison_line

    line = comparison_line(result.metrics)
    if line:
        print(line)
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
        from wsi_ssl.mil.loading import MODEL_JSON
        from wsi_ssl.storage.rundir import fetched_run_dir

        with fetched_run_dir(args.model, MODEL_JSON, ModelDirError) as model:  # an s3:// URL: a local copy
            df = predict_run(
                model,
                args.features,
                args.out,
                args.slides,
                args.batch_size,
                str(device),
                args.max_bags_in_memory,
                args.omics,
            )
    except (ModelDirError, SlideTableError, FeatureFileError) as exc:
        print(f"wsi-ssl mil predict: {exc}", file=sys.stderr)
        return 2
    print(f"predicted {len(df)} bag(s) -> {args.out}")
    return 0
