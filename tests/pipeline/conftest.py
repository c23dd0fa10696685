"""A tiny quickstart run shared by the pipeline tests: stopped after tiling, resumed, rerun.

The three runs happen once per session (they cost the suite's pipeline budget once) and their
printed output is kept, so each test asserts on one aspect without re-running stages.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path

import pytest

TINY = Path(__file__).with_name("tiny.yaml")


@dataclass
class TinyRuns:
    root: Path
    stopped: str  # output of `wsi-ssl run tiny.yaml --stop-after tile`
    stopped_rc: int
    resumed: str  # the next run: resumes at pretraining and finishes
    resumed_rc: int
    rerun: str  # a third run: every stage skipped
    rerun_rc: int


def run_cli(argv: list[str]) -> tuple[int, str]:
    """``wsi-ssl`` in this process, with what it printed to stdout."""
    from wsi_ssl.cli import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(argv)
    return rc, buf.getvalue()


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory: pytest.TempPathFactory) -> TinyRuns:
    root = tmp_path_factory.mktemp("pipeline") / "run"
    base = ["run", str(TINY), "--out", str(root)]
    stopped_rc, stopped = run_cli(base + ["--stop-after", "tile"])
    resumed_rc, resumed = run_cli(base)
    rerun_rc, rerun = run_cli(base)
    return TinyRuns(root, stopped, stopped_rc, resumed, resumed_rc, rerun, rerun_rc)
