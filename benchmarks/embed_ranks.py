"""Two-rank CPU embedding (Lightning Fabric, gloo) against one rank: same tiles, same features.

Writes tile stores of uneven sizes (real H&E patches from ../shared/data when present, as in
``benchmarks/embed.py``) and a randomly initialised timm ViT as an encoder dir, then runs
``wsi-ssl embed --device cpu`` twice as separate processes, with ``--devices 1`` and
``--devices 2``, one torch thread per process, and compares every feature file. Prints each
rank's summary line (slides and tiles it embedded), the wall time of each command (including
the interpreters' start-up: on a busy 2-core machine it dominates) and whether the features are
bitwise identical.

    .venv/bin/python benchmarks/embed_ranks.py --tiles 1000 --slides 6
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from embed import source_tiles, write_stores  # noqa: E402  (benchmarks/embed.py)


def write_encoder(out: Path, arch: str, size: int) -> None:
    import timm
    import torch

    from wsi_ssl.stores.encoder_dir import EncoderConfig, save_encoder

    torch.manual_seed(0)
    kwargs = {"img_size": size, "patch_size": 16}
    model = timm.create_model(arch, pretrained=False, num_classes=0, **kwargs).eval()
    cfg = EncoderConfig(arch=arch, model_kwargs=kwargs, embed_dim=model.num_features, input_size=size, mpp=0.5)
    save_encoder(model, out, cfg)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiles", type=int, default=1000)
    ap.add_argument("--slides", type=int, default=6)
    ap.add_argument("--tile-size", type=int, default=64)
    ap.add_argument("--model", default="vit_tiny_patch16_224")
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()
    import h5py

    with tempfile.TemporaryDirectory(prefix="embed_ranks_") as tmp:
        root = Path(tmp)
        rng = np.random.default_rng(0)
        tiles = source_tiles(args.tiles, args.tile_size, rng)
        write_stores(root / "tiles", tiles, args.slides)
        write_encoder(root / "enc", args.model, args.tile_size)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "JOB_COMPLETION_INDEX"))}
        env["OMP_NUM_THREADS"] = "1"
        for devices in ("1", "2"):
            cmd = [sys.executable, "-m", "wsi_ssl.cli", "embed", "--tiles", str(root / "tiles"), "--encoder"]
            cmd += [str(root / "enc"), "--out", str(root / f"ranks{devices}"), "--device", "cpu", "--devices", devices]
            cmd += ["--threads", "1", "--workers", "0", "--batch-size", str(args.batch_size), "--no-progress"]
            t0 = time.perf_counter()
            done = subprocess.run(cmd, env=env, capture_output=True, text=True)
            wall = time.perf_counter() - t0
            if done.returncode != 0:
                sys.exit(done.stderr[-3000:])
            for line in done.stderr.splitlines():
                if "embedded" in line:
                    print(f"--devices {devices}: {line.split(': ', 1)[1]}")
            print(f"--devices {devices}: {wall:.1f} s wall for the command")
        files = sorted(p.name for p in (root / "ranks1").glob("*.h5"))
        assert files == sorted(p.name for p in (root / "ranks2").glob("*.h5")), "different slides embedded"
        worst, n = 0.0, 0
        for name in files:
            with h5py.File(root / "ranks1" / name) as a, h5py.File(root / "ranks2" / name) as b:
                fa, fb = a["features"][:], b["features"][:]
                assert np.array_equal(a["coords"][:], b["coords"][:]), f"{name}: coords differ"
                worst = max(worst, float(np.abs(fa - fb).max()) if len(fa) else 0.0)
                n += len(fa)
        print(f"{len(files)} feature files, {n} tiles: max |1-rank - 2-rank| = {worst:g} (identical: {worst == 0.0})")


if __name__ == "__main__":
    main()
