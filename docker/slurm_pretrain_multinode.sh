#!/bin/bash
# DINO pretraining on 2 nodes x 4 GPUs through Lightning: srun starts one task per GPU and
# Lightning reads the SLURM environment (no launcher of ours). Submit the same script again to
# go on: a run with a checkpoint is resumed (--resume is passed only then, so the first
# submission starts afresh).
#
# Time limit: SLURM sends SIGUSR1 to every task 5 minutes before it (--signal); Lightning's
# SLURMEnvironment (auto_requeue) then saves RUN/checkpoints/hpc_ckpt_N.ckpt and runs
# `scontrol requeue`, and the requeued job resumes from that checkpoint. scontrol runs inside the
# container, so bind the site's Slurm client in with SLURM_BINDS (comma-separated paths, e.g.
# /usr/bin/scontrol,/etc/slurm,/usr/lib64/slurm,/run/munge); without it the checkpoint is still
# written at the signal and a resubmission continues from it.
#
# The image is a .sif file built once from the wsi-ssl GPU image (docs/cluster.md), never pulled:
#   podman save -o wsi-ssl-gpu.tar localhost/wsi-ssl:gpu && apptainer build wsi-ssl-gpu.sif docker-archive://wsi-ssl-gpu.tar
#SBATCH --job-name=wsi-ssl-dino
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=4
#SBATCH --gpus-per-node=4
#SBATCH --cpus-per-task=12
#SBATCH --mem=0
#SBATCH --time=48:00:00
#SBATCH --signal=USR1@300
#SBATCH --requeue
#SBATCH --open-mode=append
set -euo pipefail
SIF=${SIF:-$PWD/wsi-ssl-gpu.sif}              # the image, built once
DATA=${DATA:-/data}                           # bound into the container at the same path
CONFIG=${CONFIG:-configs/pretrain/dino_vit_small.yaml}  # packaged configs resolve inside the image
TILES=${TILES:-$DATA/cohort/tiles}
RUN=${RUN:-$DATA/runs/dino_vits}
if [[ ! -f "$SIF" ]]; then
  echo "slurm_pretrain_multinode.sh: no image at $SIF; build it once (see the header) or set SIF" >&2
  exit 2
fi
binds=(--bind "$DATA")
if [[ -n "${SLURM_BINDS:-}" ]]; then
  binds+=(--bind "$SLURM_BINDS")
fi
resume=()
if [[ -f "$RUN/checkpoints/last.ckpt" ]] || compgen -G "$RUN/checkpoints/hpc_ckpt_*.ckpt" >/dev/null; then
  resume=(--resume)
fi
srun apptainer exec --nv "${binds[@]}" "$SIF" \
  wsi-ssl pretrain --config "$CONFIG" --tiles "$TILES" --out "$RUN" "${resume[@]}" \
  --set trainer.num_nodes="$SLURM_NNODES" --set trainer.devices="$SLURM_NTASKS_PER_NODE" --set trainer.strategy=ddp
