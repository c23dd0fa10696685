#!/bin/bash
# Tile a cohort with a SLURM job array. Each task takes a disjoint, deterministic shard of the
# slides (wsi-ssl reads SLURM_ARRAY_TASK_ID / _MIN / _STEP / _COUNT, so only --array below sets
# the number of shards), writes its own manifest.shard-I-of-N.csv and skips stores already
# complete, so resubmitting the array resumes it. Then merge the shard manifests once:
#
#   jid=$(sbatch --parsable docker/slurm_tile_array.sh)
#   sbatch --dependency=afterany:"$jid" docker/slurm_tile_merge.sh
#
# The image is a .sif file built once from the wsi-ssl CPU image (docs/cluster.md), never pulled:
#   podman save -o wsi-ssl-cpu.tar localhost/wsi-ssl:cpu && apptainer build wsi-ssl-cpu.sif docker-archive://wsi-ssl-cpu.tar
#SBATCH --job-name=wsi-ssl-tile
#SBATCH --array=0-15
#SBATCH --cpus-per-task=16
#SBATCH --mem=32G
#SBATCH --time=04:00:00
#SBATCH --requeue
set -euo pipefail
SIF=${SIF:-$PWD/wsi-ssl-cpu.sif}          # the image, built once
DATA=${DATA:-/data}                       # bound into the container at the same path
SLIDES=${SLIDES:-$DATA/cohort/slides}     # folder of slides, or a CSV slide_id,path[,mpp]
OUT=${OUT:-$DATA/cohort/tiles}
MPP=${MPP:-0.5}
TILE_SIZE=${TILE_SIZE:-224}
if [[ ! -f "$SIF" ]]; then
  echo "slurm_tile_array.sh: no image at $SIF; build it once (see the header) or set SIF" >&2
  exit 2
fi
apptainer exec --bind "$DATA" "$SIF" \
  wsi-ssl tile "$SLIDES" --out "$OUT" --workers "${SLURM_CPUS_PER_TASK:-1}" \
  --mpp "$MPP" --tile-size "$TILE_SIZE" --no-progress
