#!/bin/bash
# Merge the shard manifests of docker/slurm_tile_array.sh into OUT/manifest.csv (the ledger the
# pipeline, the report and people read). Submit with --dependency=afterany:<array job id>; it
# exits 1 and names the shards without a manifest when some task has not run.
#SBATCH --job-name=wsi-ssl-tile-merge
#SBATCH --cpus-per-task=1
#SBATCH --mem=2G
#SBATCH --time=00:10:00
set -euo pipefail
SIF=${SIF:-$PWD/wsi-ssl-cpu.sif}
DATA=${DATA:-/data}
OUT=${OUT:-$DATA/cohort/tiles}
if [[ ! -f "$SIF" ]]; then
  echo "slurm_tile_merge.sh: no image at $SIF; build it once (see slurm_tile_array.sh) or set SIF" >&2
  exit 2
fi
apptainer exec --bind "$DATA" "$SIF" wsi-ssl tile --merge-manifests "$OUT"
