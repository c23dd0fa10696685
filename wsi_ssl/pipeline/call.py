"""How the pipeline runs a stage: the stage's own ``wsi-ssl`` command, in this process.

A module of its own so that stages defined outside ``stages.py`` (``wsi_ssl/evaluate/pipeline_stage.py``)
call it without importing the stage table that imports them.
"""

from __future__ import annotations

import logging

from wsi_ssl.pipeline.layout import PipelineError

log = logging.getLogger("wsi_ssl.pipeline.stages")


def call_stage(argv: list[str], what: str, ok_codes: tuple[int, ...] = (0,)) -> int:
    """Run one ``wsi-ssl`` command in this process; a bad exit code stops the pipeline."""
    from wsi_ssl.cli import main

    log.info("wsi-ssl %s", " ".join(argv))
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse errors and stages that exit with a message
        rc = exc.code if isinstance(exc.code, int) else 1
    if rc not in ok_codes:
        raise PipelineError(
            f"{what} failed (exit code {rc}); the messages above say why. "
            "Fix it and rerun the same command: finished stages are skipped."
        )
    return rc
