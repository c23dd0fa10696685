#!/bin/bash
# DINO pretraining on 2 nodes x 4 GPUs through Lightning (srun starts one task per GPU; Lightning
# reads the SLURM environment, so no launcher of ours is involved). Resubmitting the same job
# resumes the run from its last checkpoint.
#SBATCH --job-name=wsi-ssl-dino
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=4
#SBATCH --gpus-per-node=4
#SBATCH --cpus-per-task=12
#SBATCH --mem=0
#SBATCH --time=48:00:00
set -euo pipefail
srun apptainer exec --nv --bind /data docker://wsi-ssl:gpu \
  wsi-ssl pretrain --config configs/pretrain/dino_vit_small.yaml --tiles /data/cohort/tiles \
  --out /data/runs/dino_vits \
  --set trainer.num_nodes=$SLURM_NNODES --set trainer.devices=$SLURM_NTASKS_PER_NODE --set trainer.strategy=ddp
