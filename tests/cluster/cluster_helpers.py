"""Helpers for the multi-process and recipe tests: run ``wsi-ssl`` as separate processes.

Multi-process runs must start from a fresh interpreter (Lightning's launchers re-execute the
command line for every extra rank), so the CLI runs as ``python -m wsi_ssl.cli``, never in-process.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def cli_env(**extra: str) -> dict[str, str]:
    """This environment without any scheduler variables of the machine running the tests."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLURM_", "JOB_COMPLETION_INDEX", "PMI_", "OMPI_"))
        and k not in ("LOCAL_RANK", "RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "GROUP_RANK")
    }
    env.update(OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore", **extra)
    return env


def run_group(
    argv: list[str], env: dict[str, str], cwd: Path, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` in its own process group; on a timeout the whole group (every rank) is killed."""
    proc = subprocess.Popen(
        argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        err += f"\n[killed after {timeout} s]"
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wsi_ssl(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``wsi-ssl ARGS`` in a new process group; the result is returned (the caller asserts on it)."""
    return run_group([sys.executable, "-m", "wsi_ssl.cli", *args], env or cli_env(), ROOT, timeout)


TINY_VIT = {"img_size": 32, "patch_size": 8, "depth": 2, "embed_dim": 64, "num_heads": 2}


def tiny_encoder(out: Path, mpp: float = 1.0) -> Path:
    """An encoder dir (Contract 2): a random 2-block ViT on 32-px tiles, 'trained' at ``mpp``."""
    import timm
    import torch

    from wsi_ssl.stores.encoder_dir import EncoderConfig, save_encoder

    torch.manual_seed(0)
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0, **TINY_VIT).eval()
    cfg = EncoderConfig(
        arch="vit_tiny_patch16_224",
        model_kwargs=TINY_VIT,
        embed_dim=64,
        input_size=32,
        mean=(0.7, 0.5, 0.6),
        std=(0.2, 0.25, 0.3),
        mpp=mpp,
        method="random",
    )
    save_encoder(model, out, cfg)
    return out


# Stand-ins for the cluster's programs, put first on PATH so the recipes in docker/ run their real
# wsi-ssl commands on this machine. Each logs its command line to $SHIM_LOG.
SHIMS = {
    # srun: SLURM_NNODES x SLURM_NTASKS_PER_NODE tasks of the command, each with its task variables
    # (with SHIM_SRUN_LOG_ONLY set, it records the command line and runs nothing).
    "srun": r"""#!/bin/bash
echo "srun $*" >> "$SHIM_LOG"
[[ -z "${SHIM_SRUN_LOG_ONLY:-}" ]] || exit 0  # only record the command line
per=${SLURM_NTASKS_PER_NODE:-1}
n=$(( ${SLURM_NNODES:-1} * per ))
pids=()
for ((i = 0; i < n; i++)); do
  SLURM_PROCID=$i SLURM_LOCALID=$((i % per)) SLURM_NODEID=$((i / per)) SLURM_NTASKS=$n "$@" &
  pids+=("$!")
done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=$?; done
exit "$rc"
""",
    # apptainer exec [--nv] [--bind SRC[:DST],...]... IMAGE.sif CMD...: checks the image and binds, runs CMD.
    "apptainer": r"""#!/bin/bash
echo "apptainer $*" >> "$SHIM_LOG"
[[ "${1:-}" == exec ]] || { echo "apptainer shim: only 'exec' is known" >&2; exit 2; }
shift
while [[ $# -gt 0 ]]; do
  case "$1" in
    --nv) shift ;;
    --bind|-B)
      IFS=, read -ra binds <<< "$2"
      for b in "${binds[@]}"; do [[ -e "${b%%:*}" ]] || { echo "apptainer shim: no bind source ${b%%:*}" >&2; exit 2; }; done
      shift 2 ;;
    -*) echo "apptainer shim: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
[[ "${1:-}" == *.sif && -f "$1" ]] || { echo "apptainer shim: ${1:-} is not a .sif file" >&2; exit 2; }
shift
exec "$@"
""",
    "scontrol": """#!/bin/bash
echo "scontrol $*" >> "$SHIM_LOG"
""",
}


def install_shims(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in SHIMS.items():
        (folder / name).write_text(text)
        (folder / name).chmod(0o755)
    return folder


def shim_env(shims: Path, log: Path, **extra: str) -> dict[str, str]:
    """A clean environment whose PATH finds the shims first, then this venv's ``wsi-ssl``."""
    venv_bin = Path(sys.executable).parent
    return cli_env(PATH=f"{shims}:{venv_bin}:/usr/bin:/bin", SHIM_LOG=str(log), **extra)
