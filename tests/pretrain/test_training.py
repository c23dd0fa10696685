"""Training through the public interfaces: losses fall, resume continues, export round-trips, errors are clear."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import make_store, tiny_config

from wsi_ssl.config import ConfigError, load_config
from wsi_ssl.encoders.load import load_encoder
from wsi_ssl.pretrain import command
from wsi_ssl.pretrain.config import PretrainConfig
from wsi_ssl.pretrain.export import export_encoder
from wsi_ssl.pretrain.module import NonFiniteLossError, PretrainModule
from wsi_ssl.pretrain.monitor import Embedder
from wsi_ssl.pretrain.run import RunDirError, run_pretrain


def _losses_on_fixed_batch(cfg_dict: dict, steps: int) -> list[float]:
    """Student steps against a frozen teacher and centre: the targets stay fixed, so the loss must fall.

    (With EMA and centring on, DINO's loss on one batch is not monotone: the centre flattens the
    teacher's targets, which raises the cross-entropy even as the student learns.)
    """
    torch.manual_seed(0)
    module = PretrainModule(PretrainConfig.model_validate(cfg_dict).model_dump(mode="json"))
    for loss_name in ("dino_loss", "ibot_loss"):
        if hasattr(module, loss_name):
            getattr(module, loss_name).center_momentum = 1.0
    opt = module.configure_optimizers()
    tiles = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    losses = []
    for _ in range(steps):
        torch.manual_seed(123)  # the same views every step: a fixed batch
        out = module.losses(tiles)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(float(out["loss"].detach()))
    return losses


@pytest.mark.parametrize(
    "cfg",
    [
        tiny_config("dino", dino={"teacher_temp_warmup_steps": 0}),
        tiny_config("dino", dino={"teacher_temp_warmup_steps": 0, "koleo_weight": 0.1, "ibot_weight": 1.0}),
        tiny_config("mae"),
    ],
    ids=["dino", "dino+koleo+ibot", "mae"],
)
def test_loss_is_finite_and_decreases_on_a_fixed_batch(cfg: dict) -> None:
    losses = _losses_on_fixed_batch(cfg, 12)
    assert all(np.isfinite(losses))
    assert np.mean(losses[-3:]) < np.mean(losses[:3]), losses


@pytest.fixture(scope="module")
def tiles_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiles")
    for i in range(3):
        make_store(folder, f"slide{i}", n=24, seed=i)
    return folder


def _run(cfg: dict, tiles: Path, out: Path, resume: bool = False) -> Path:
    return run_pretrain(PretrainConfig.model_validate(cfg), [str(tiles)], out, resume=resume)


def test_run_resume_export_round_trip(tiles_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    _run(tiny_config("dino", trainer={"max_steps": 2}), tiles_dir, run)
    assert (run / "checkpoints" / "last.ckpt").is_file() and (run / "curves.png").is_file()
    assert (run / "config.yaml").is_file() and list((run / "tb").glob("v0/events.*"))

    # Resume to 4 steps: the module restarts at step 2, not 0, and schedules continue from there.
    seen: list[int] = []
    original = PretrainModule.on_train_batch_start

    def spy(self: PretrainModule, batch: object, batch_idx: int) -> None:
        original(self, batch, batch_idx)
        seen.append(int(self.global_step))

    PretrainModule.on_train_batch_start = spy  # type: ignore[method-assign]
    try:
        _run(tiny_config("dino", trainer={"max_steps": 4}), tiles_dir, run, resume=True)
    finally:
        PretrainModule.on_train_batch_start = original  # type: ignore[method-assign]
    assert seen == [2, 3]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 4 and "monitor/rankme_teacher" in summary["monitor_last"]
    assert len(list((run / "logs").glob("v*/metrics.csv"))) == 2

    # Export writes Contract 2; timm alone rebuilds it with the teacher's exact embeddings.
    enc = tmp_path / "encoder"
    config = export_encoder(run, enc)
    assert config.method == "dino" and config.steps == 4 and config.mpp == 1.0 and config.input_size == 32
    model, loaded_cfg = load_encoder(enc)
    teacher = PretrainModule.load_from_checkpoint(str(run / "checkpoints" / "last.ckpt"), map_location="cpu").teacher
    tiles = torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8)
    embed = Embedder(32, loaded_cfg.mean, loaded_cfg.std)
    assert torch.equal(embed(model, tiles, torch.device("cpu")), embed(teacher, tiles, torch.device("cpu")))


def test_a_run_cut_by_its_time_cap_says_so(tiles_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A wall-clock cap that ends the run before max_steps is not a finished training: the summary,
    the log and the pipeline report say how many steps ran."""
    run = tmp_path / "run"
    with caplog.at_level(logging.WARNING, logger="wsi_ssl.pretrain.run"):
        _run(tiny_config("dino", trainer={"max_steps": 50, "max_minutes": 1e-4}), tiles_dir, run)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["stopped_by_max_minutes"] and summary["steps"] < summary["max_steps"] == 50
    assert f"after {summary['steps']} of 50 steps" in caplog.text and "trainer.max_minutes" in caplog.text


def test_a_rerun_resumes_and_names_what_changed(
    tiles_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run = tmp_path / "run"
    _run(tiny_config("dino", trainer={"max_steps": 2}), tiles_dir, run)
    config_before = (run / "config.yaml").read_text()
    # Networks the checkpoint cannot fill: refused with the changed key, before the run dir changes.
    with pytest.raises(RunDirError, match=r"dino.out_dim: 64 -> 32"):
        _run(tiny_config("dino", dino={"out_dim": 32}, trainer={"max_steps": 3}), tiles_dir, run)
    assert (run / "config.yaml").read_text() == config_before
    # The same call again (no resume=True) continues from last.ckpt; a new LR is named and used.
    with caplog.at_level(logging.INFO, logger="wsi_ssl.pretrain"):
        _run(tiny_config("dino", optim={"lr": 5e-4}, trainer={"max_steps": 3}), tiles_dir, run)
    assert "resuming" in caplog.text and "at step 2 of 3" in caplog.text
    assert "trainer.max_steps: 2 -> 3" in caplog.text and "optim.lr: 0.001 -> 0.0005" in caplog.text
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and "optim.lr" in warned[0] and "max_steps" not in warned[0]
    assert json.loads((run / "summary.json").read_text())["steps"] == 3
    module = PretrainModule.load_from_checkpoint(str(run / "checkpoints" / "last.ckpt"), map_location="cpu")
    assert module.cfg.optim.lr == 5e-4


def test_cli_trains_mae_and_exports(tiles_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    parser = argparse.ArgumentParser()
    command.register(parser.add_subparsers(dest="command"))
    cfg_file = tmp_path / "tiny.yaml"
    import yaml

    cfg_file.write_text(yaml.safe_dump(tiny_config("mae")))
    args = parser.parse_args(
        [
            "pretrain",
            "--config",
            str(cfg_file),
            "--tiles",
            str(tiles_dir),
            "--out",
            str(tmp_path / "run"),
            "--max-steps",
            "2",
            "--set",
            "trainer.val_every=1",
        ]
    )
    assert args.func(args) == 0
    # Rerunning the same command finds the run finished: nothing is trained or rewritten.
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    before = last.read_bytes()
    with caplog.at_level(logging.INFO, logger="wsi_ssl.pretrain"):
        assert args.func(args) == 0
    assert "is finished: 2 of trainer.max_steps=2 steps done" in caplog.text
    assert last.read_bytes() == before and len(list((tmp_path / "run" / "logs").glob("v*"))) == 1
    args = parser.parse_args(["export", str(tmp_path / "run"), "--out", str(tmp_path / "enc")])
    assert args.func(args) == 0
    model, cfg = load_encoder(tmp_path / "enc")
    assert cfg.method == "mae" and cfg.embed_dim == 64 and cfg.steps == 2


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tiles_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    _run(tiny_config("dino", trainer={"max_steps": 2}), tiles_dir, run)
    before = (run / "checkpoints" / "last.ckpt").read_bytes()
    original = PretrainModule.losses

    def nan_step(self: PretrainModule, tiles: torch.Tensor) -> dict:
        out = original(self, tiles)
        out["loss"] = out["loss"] * float("nan")
        return out

    PretrainModule.losses = nan_step  # type: ignore[method-assign]
    try:
        with pytest.raises(NonFiniteLossError, match="at step 2"):
            _run(tiny_config("dino", trainer={"max_steps": 4}), tiles_dir, run, resume=True)
    finally:
        PretrainModule.losses = original  # type: ignore[method-assign]
    assert (run / "checkpoints" / "last.ckpt").read_bytes() == before


def test_bad_inputs_are_named(tiles_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="optim.lr"):
        load_config(PretrainConfig, None, {"optim": {"lr": -1}})
    with pytest.raises(ConfigError, match="crops.local_scale"):
        load_config(PretrainConfig, None, {"crops": {"local_scale": [0.5, 0.2]}})
    with pytest.raises(RunDirError, match="--resume"):
        _run(tiny_config("dino"), tiles_dir, tmp_path / "fresh", resume=True)
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="trainer.strategy: fsdp needs GPUs"):
            _run(tiny_config("dino", trainer={"strategy": "fsdp"}), tiles_dir, tmp_path / "fsdp")
