#!/bin/bash
# Tile a cohort with a SLURM job array: each task takes a disjoint, deterministic shard of the
# slides (wsi-ssl reads SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT), writes its own
# manifest.shard-I-of-N.csv, and skips stores already complete, so resubmitting resumes.
#SBATCH --job-name=wsi-ssl-tile
#SBATCH --array=0-15
#SBATCH --cpus-per-task=16
#SBATCH --mem=32G
#SBATCH --time=04:00:00
set -euo pipefail
SLIDES=${SLIDES:-/data/cohort/slides}
OUT=${OUT:-/data/cohort/tiles}
apptainer exec --bind /data docker://wsi-ssl:cpu \
  wsi-ssl tile "$SLIDES" --out "$OUT" --workers "$SLURM_CPUS_PER_TASK" --mpp 0.5 --tile-size 224 --no-progress
