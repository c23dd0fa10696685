"""The time-limit signal of a SLURM job: Lightning checkpoints into the run and requeues; the
requeued run continues from that checkpoint.

``slurm_pretrain_multinode.sh`` asks SLURM for SIGUSR1 before the time limit. Here the signal is
sent from inside step 3 of a run that sees SLURM's variables, with ``scontrol`` a shim that
records the requeue. The requeued job is then played as SLURM would: the same command, on a run
whose later checkpoints were never written (the job was killed right after the signal).
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path
from typing import Any

import pytest
from cluster_helpers import install_shims
from helpers import make_store, tiny_config

from wsi_ssl.pretrain.config import PretrainConfig
from wsi_ssl.pretrain.monitor import MonitorCallback
from wsi_ssl.pretrain.resume import find_resume_point
from wsi_ssl.pretrain.run import run_pretrain

SLURM = {
    "SLURM_JOB_ID": "4242",
    "SLURM_JOB_NAME": "wsi-ssl-dino",
    "SLURM_NTASKS": "1",
    "SLURM_NTASKS_PER_NODE": "1",
    "SLURM_NNODES": "1",
    "SLURM_PROCID": "0",
    "SLURM_LOCALID": "0",
    "SLURM_NODEID": "0",
    "SLURM_NODELIST": "127.0.0.1",
}


def test_time_limit_signal_checkpoints_requeues_and_the_requeued_run_resumes_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    tiles = tmp_path / "tiles"
    make_store(tiles, "slide0", n=24, seed=0)
    log = tmp_path / "shims.log"
    monkeypatch.setenv("PATH", f"{install_shims(tmp_path / 'bin')}:{os.environ['PATH']}")
    monkeypatch.setenv("SHIM_LOG", str(log))
    for key, value in SLURM.items():
        monkeypatch.setenv(key, value)
    cfg = PretrainConfig.model_validate(
        tiny_config("dino", trainer={"max_steps": 5, "ckpt_every": 100, "val_every": 100, "accelerator": "cpu"})
    )

    original = MonitorCallback.on_train_batch_end

    def time_limit_at_step_3(self: MonitorCallback, trainer: Any, *args: Any) -> None:
        original(self, trainer, *args)
        if trainer.global_step == 3:
            os.kill(os.getpid(), signal.SIGUSR1)  # what `#SBATCH --signal=USR1@300` sends

    monkeypatch.setattr(MonitorCallback, "on_train_batch_end", time_limit_at_step_3)
    run = run_pretrain(cfg, [str(tiles)], tmp_path / "run")
    ckpts = run / "checkpoints"
    assert (ckpts / "hpc_ckpt_1.ckpt").is_file(), sorted(p.name for p in ckpts.iterdir())
    assert log.read_text().splitlines() == ["scontrol requeue 4242"]
    # A finished run's last.ckpt is further along than the signal's checkpoint: it is the one resumed.
    point = find_resume_point(ckpts, ckpts / "last.ckpt", must_resume=False)
    assert point is not None and point.path.name == "last.ckpt" and point.step == 5

    # The requeued job: killed right after the signal, so only the signal's checkpoint is there.
    for path in [ckpts / "last.ckpt", run / "summary.json"]:
        path.unlink()
    monkeypatch.setattr(MonitorCallback, "on_train_batch_end", original)
    with caplog.at_level(logging.INFO, logger="wsi_ssl.pretrain"):
        run_pretrain(cfg, [str(tiles)], run)
    assert "resuming" in caplog.text and "at step 3 of 5 (hpc_ckpt_1.ckpt)" in caplog.text
    assert (run / "summary.json").is_file()
    point = find_resume_point(ckpts, ckpts / "last.ckpt", must_resume=False)
    assert point is not None and point.path.name == "last.ckpt" and point.step == 5
