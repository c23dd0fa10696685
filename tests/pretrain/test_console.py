"""A normal run's console: our lines and the progress bar, no Lightning tips or third-party warnings."""

from __future__ import annotations

import logging
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import yaml
from helpers import make_store, tiny_config

from wsi_ssl.console import quiet_lightning

# What Lightning and torch printed on a tiny CPU run (and, on GPUs, the Tensor Core hint).
NOISE = (
    "Tip:",
    "litlogger",
    "litmodels",
    "GPU available",
    "TPU available",
    "You are using a CUDA device",
    "LeafSpec",
    "is not resumable",
    "exists and is not empty",
    "Restoring states",
    "weights_only",
    "`Trainer.fit` stopped",
    "site-packages",  # any warning raised in a third-party module shows its path
)


def _pretrain(args: list[str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "wsi_ssl.cli", "pretrain", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_a_tiny_run_and_its_resume_print_no_lightning_noise(tmp_path: Path) -> None:
    for i in range(2):
        make_store(tmp_path / "tiles", f"slide{i}", n=24, seed=i)
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(tiny_config("dino", data={"holdout_tiles": 4})))
    args = ["--config", str(cfg), "--tiles", str(tmp_path / "tiles"), "--out", str(tmp_path / "run")]
    first = _pretrain([*args, "--max-steps", "2"])
    resumed = _pretrain([*args, "--max-steps", "3"])  # mid-epoch resume into a non-empty checkpoint dir
    for err in (first, resumed):
        assert not [n for n in NOISE if n in err], err
        assert "pretrain done: dino" in err
    assert "resuming" in resumed and "at step 2 of 3" in resumed


def test_only_the_known_noise_is_dropped_and_only_inside() -> None:
    import lightning.pytorch  # noqa: F401  (points Lightning's rank-zero messages at its logger)
    from lightning.fabric.utilities.rank_zero import rank_zero_info
    from lightning_utilities.core import rank_zero

    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    source = rank_zero.log  # the logger every rank_zero_info goes to (Fabric's and the Trainer's)
    handler, level = Keep(), source.level
    source.addHandler(handler)
    source.setLevel(logging.INFO)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")  # every warning shows, unless quiet_lightning drops it
            with quiet_lightning():
                rank_zero_info("You are using a CUDA device ('NVIDIA H100') that has Tensor Cores.")
                rank_zero_info("Initializing distributed: GLOBAL_RANK: 0, MEMBER: 1/2")
                warnings.warn("`isinstance(treespec, LeafSpec)` is deprecated, use ...", FutureWarning, stacklevel=1)
                warnings.warn("some other deprecation", FutureWarning, stacklevel=1)
        rank_zero_info("You are using a CUDA device ('NVIDIA H100') that has Tensor Cores.")
    finally:
        source.removeHandler(handler)
        source.setLevel(level)
    assert seen == [
        "Initializing distributed: GLOBAL_RANK: 0, MEMBER: 1/2",
        "You are using a CUDA device ('NVIDIA H100') that has Tensor Cores.",
    ]
    assert [str(w.message) for w in caught] == ["some other deprecation"]


@pytest.mark.parametrize("name", ["lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"])
def test_the_filter_is_removed_afterwards(name: str) -> None:
    before = list(logging.getLogger(name).filters)
    with quiet_lightning():
        assert len(logging.getLogger(name).filters) == len(before) + 1
    assert logging.getLogger(name).filters == before
