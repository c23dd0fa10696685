"""``wsi-ssl run PIPELINE.yaml``: every stage in order, complete stages skipped, then the report.

Argument parsing only; the work is in ``wsi_ssl.pipeline.runner``. The last lines printed are the
headline figures (per task, pretrained vs random encoder), so a log's tail answers "did it work".
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from wsi_ssl.pipeline.layout import STAGES


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "run",
        help="run a whole pipeline (cohort, tile, pretrain, embed, mil, report) from one YAML file",
        description="Run the stages of PIPELINE.yaml in order, each with its own stage config, skipping every "
        "stage whose outputs are already complete (so rerunning resumes), then write OUT/report.html. "
        "Try: wsi-ssl run pipelines/quickstart.yaml",
    )
    p.add_argument("pipeline", help="pipeline YAML, e.g. pipelines/quickstart.yaml or pipelines/cohort.yaml")
    p.add_argument("--out", default=None, help="run dir (overrides the pipeline's out:)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a pipeline key, e.g. --set cohort.demo.slides=12 (repeatable)",
    )
    p.add_argument(
        "--stop-after",
        choices=STAGES,
        default=None,
        help="stop once this stage is complete (a later run resumes at the next one)",
    )
    p.add_argument(
        "--force",
        action="append",
        choices=STAGES,
        default=[],
        help="run this stage even if its outputs look complete (the stage still skips its finished work)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from wsi_ssl.pipeline.config import load_pipeline
    from wsi_ssl.pipeline.layout import PipelineError
    from wsi_ssl.pipeline.report.headline import headline_lines
    from wsi_ssl.pipeline.runner import Pipeline

    cfg = load_pipeline(args.pipeline, args.overrides, args.out)  # ConfigError -> exit 2 in cli.main
    started = time.perf_counter()
    pipe = Pipeline(cfg)
    try:
        result = pipe.run(stop_after=args.stop_after, force=tuple(args.force))
    except PipelineError as exc:
        print(f"wsi-ssl run: {exc}", file=sys.stderr)
        return 1
    minutes = (time.perf_counter() - started) / 60
    ran = [s.name for s in result.stages if s.status == "ran"]
    print(
        f"[pipeline] {len(ran)} stage(s) ran ({', '.join(ran) or 'none'}), "
        f"{len(result.stages) - len(ran)} skipped, {minutes:.1f} min; run dir {result.root}"
    )
    if result.stopped_after:
        return 0
    sys.stderr.flush()  # stage logs first: the headline must be the run's last lines, also in a log file
    print(f"[pipeline] report: {result.report}")
    for line in headline_lines(result.headline, pipe.kinds):
        print(line)
    sys.stdout.flush()
    return 0
