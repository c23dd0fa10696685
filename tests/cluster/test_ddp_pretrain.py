"""Two-process DDP pretraining on CPU (gloo), started by the SLURM recipe itself.

``docker/slurm_pretrain_multinode.sh`` runs as submitted, with ``srun`` and ``apptainer``
replaced by shims (``cluster_helpers.SHIMS``): srun starts two tasks with SLURM's task variables
and Lightning's SLURMEnvironment joins them, as on a cluster node. What multi-process training
must get right, checked from the outside: each rank reads its own tiles (the two ranks' reads are
disjoint), and one checkpoint, one summary and one exportable encoder come out (rank 0 writes).
The first submission starts afresh (no --resume: the old script exited 2 here); a resubmission
passes --resume.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml
from cluster_helpers import ROOT, free_port, install_shims, run_group, shim_env
from helpers import make_store, tiny_config

from wsi_ssl.pretrain.export import export_encoder

# Imported by every rank's interpreter (via PYTHONPATH): each tile a rank's loader reads is
# appended to trace/rank<SLURM_PROCID>.txt as "store:tile".
TRACE_HOOK = """
import os
if os.environ.get("WSI_SSL_TEST_TRACE"):
    import wsi_ssl.pretrain.data as _data
    _get = _data.TileDataset.__getitem__
    def _traced(self, item):
        rank = os.environ.get("SLURM_PROCID", "0")
        with open(os.path.join(os.environ["WSI_SSL_TEST_TRACE"], f"rank{rank}.txt"), "a") as fh:
            fh.write(f"{self.paths[int(self.store_idx[item])]}:{int(self.tile_idx[item])}\\n")
        return _get(self, item)
    _data.TileDataset.__getitem__ = _traced
"""

BATCH, STEPS = 4, 2
SCRIPT = ROOT / "docker" / "slurm_pretrain_multinode.sh"


def test_slurm_recipe_runs_two_rank_ddp_reading_disjoint_tiles_into_one_run(tmp_path: Path) -> None:
    tiles = tmp_path / "tiles"
    for i in range(2):
        make_store(tiles, f"slide{i}", n=20, seed=i)
    cfg = tiny_config(
        "dino",
        data={"batch_size": BATCH, "num_workers": 0, "holdout_tiles": 8},
        trainer={"max_steps": STEPS, "ckpt_every": 1, "val_every": 100, "threads": 1, "accelerator": "cpu"},
    )
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    hook, trace = tmp_path / "hook", tmp_path / "trace"
    hook.mkdir()
    trace.mkdir()
    (hook / "sitecustomize.py").write_text(TRACE_HOOK)
    (tmp_path / "wsi-ssl-gpu.sif").write_bytes(b"image")
    run, log = tmp_path / "run", tmp_path / "shims.log"
    env = shim_env(
        install_shims(tmp_path / "bin"),
        log,
        SIF=str(tmp_path / "wsi-ssl-gpu.sif"),
        DATA=str(tmp_path),
        CONFIG=str(tmp_path / "cfg.yaml"),
        TILES=str(tiles),
        RUN=str(run),
        SLURM_JOB_ID="4243",
        MASTER_PORT=str(free_port()),  # else Lightning derives the rendezvous port from the job id
        SLURM_JOB_NAME="wsi-ssl-dino",
        SLURM_NNODES="1",
        SLURM_NTASKS_PER_NODE="2",
        SLURM_NODELIST="127.0.0.1",
        PYTHONPATH=str(hook),
        WSI_SSL_TEST_TRACE=str(trace),
    )
    done = run_group(["bash", str(SCRIPT)], env, tmp_path)
    assert done.returncode == 0, done.stderr[-4000:]
    first = log.read_text().splitlines()
    assert first[0].startswith("srun apptainer exec --nv --bind ") and "--resume" not in first[0]
    assert "trainer.num_nodes=1 --set trainer.devices=2 --set trainer.strategy=ddp" in first[0]

    reads = {p.name: p.read_text().split() for p in sorted(trace.glob("rank*.txt"))}
    assert sorted(reads) == ["rank0.txt", "rank1.txt"], f"not two ranks: {sorted(reads)}\n{done.stderr[-2000:]}"
    r0, r1 = reads["rank0.txt"], reads["rank1.txt"]
    # Each rank drew at least its STEPS batches (the loader may fetch one ahead), all within epoch 0,
    # where the sampler gives the ranks disjoint slices of one permutation.
    assert len(r0) >= STEPS * BATCH and len(r1) >= STEPS * BATCH
    assert len(set(r0)) == len(r0) and len(set(r1)) == len(r1)
    assert not set(r0) & set(r1), "the two ranks read the same tiles"

    ckpts = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert ckpts == ["last.ckpt", f"step-{STEPS:07d}.ckpt"], ckpts
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == STEPS and summary["tiles_train"] == 32
    assert [p.name for p in (run / "logs").iterdir()] == ["v0"]
    config = export_encoder(run, tmp_path / "enc")  # in this process: one interpreter start less
    assert config.steps == STEPS and (tmp_path / "enc" / "model.safetensors").is_file()

    # Resubmitted: a checkpoint exists now, so --resume is passed (tests/pretrain runs that path).
    env.update(SHIM_SRUN_LOG_ONLY="1")
    again = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-4000:]
    assert f"--out {run} --resume --set" in log.read_text().splitlines()[-1]
