"""``wsi-ssl run``: a pipeline file taken through every stage, then one report.

Modules, each importing only those listed before it (no import loop; ``tests/pipeline/
test_imports.py`` checks)::

    config     the pipeline file's typed config (load_pipeline) and where its stage configs are
    layout     the run dir: where each stage writes, and the Run the stages and report read
    stages     per stage, a completeness check from its output files and a run
    report/    report.html and the headline figures, built from the run dir's files only
    runner     Pipeline: the stages in order, complete ones skipped, then the report
    command    the ``wsi-ssl run`` subcommand (argument parsing only)

The names below are loaded on first use, so importing this package (as ``wsi-ssl --help`` does,
through ``command``) does not import the stages' and the report's dependencies.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "PipelineConfig": "wsi_ssl.pipeline.config",
    "load_pipeline": "wsi_ssl.pipeline.config",
    "STAGES": "wsi_ssl.pipeline.layout",
    "Layout": "wsi_ssl.pipeline.layout",
    "PipelineError": "wsi_ssl.pipeline.layout",
    "PipelineResult": "wsi_ssl.pipeline.layout",
    "Run": "wsi_ssl.pipeline.layout",
    "Pipeline": "wsi_ssl.pipeline.runner",
    "build_report": "wsi_ssl.pipeline.report",
    "headline": "wsi_ssl.pipeline.report.headline",
    "headline_lines": "wsi_ssl.pipeline.report.headline",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
