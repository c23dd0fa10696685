"""Throughput of ``wsi-ssl embed`` against the bare forward of the same model, side by side.

End-to-end: the ``embed`` command (read the JPEG-in-zarr tiles, decode, preprocess, forward,
write the h5), timed from the call to the return, including loading the encoder and starting
the DataLoader workers. Baseline: the same model's forward on the same tiles, already decoded,
preprocessed and in memory as one tensor, same batch size, same thread count, same process.
Bare and embed runs alternate (bare, embed, bare, ..., bare) and each embed run is held against
the mean of the bare runs either side of it, so load from other processes drifting over time
hits both alike; the last line is the median ratio (1.0 = loading and writing cost nothing).

    nice -n 10 .venv/bin/python benchmarks/embed.py --model vit_small_patch16_224 --tiles 192
    nice -n 10 .venv/bin/python benchmarks/embed.py --model kaiko-vitb16 --tiles 96   # any zoo preset

``--model`` is a timm name (saved as an encoder dir) or a zoo preset (``wsi-ssl encoders list``):
a preset gets random weights written in its upstream layout into a temporary Hugging Face cache,
and ``embed --encoder PRESET`` finds them there offline, as it would the published weights.

Tiles are real H&E (../shared/data/patches, flipped/rotated/shifted into ``--tiles`` distinct
tiles) when present, else smooth synthetic colour noise; the store's codec is JPEG q90 as
``wsi-ssl tile`` writes it. The Python interpreter's own start-up (imports) is not included;
it is printed separately once.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PATCHES = ROOT.parent / "shared" / "data" / "patches" / "nct_crc_he_100k_9samples"


def source_tiles(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` distinct RGB tiles: real patches under random flips, rotations and rolls."""
    bases: list[np.ndarray] = []
    if PATCHES.is_dir():
        import tifffile

        bases = [np.asarray(tifffile.imread(p))[..., :3] for p in sorted(PATCHES.glob("*.tif"))]
    if not bases:
        small = rng.integers(0, 256, size=(9, size // 8, size // 8, 3), dtype=np.uint8)
        bases = [np.repeat(np.repeat(b, 8, 0), 8, 1) for b in small]
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    for i in range(n):
        b = bases[i % len(bases)]
        b = np.rot90(b, k=int(rng.integers(4)))
        b = b[::-1] if rng.random() < 0.5 else b
        b = np.roll(b, shift=(int(rng.integers(size)), int(rng.integers(size))), axis=(0, 1))
        out[i] = b[:size, :size]
    return out


def write_stores(folder: Path, tiles: np.ndarray, n_slides: int, mpp: float = 0.5) -> None:
    from wsi_ssl.stores.tile_store import TileArraysSpec, create_tile_arrays, mark_complete, store_path, write_tiles

    for s, part in enumerate(np.array_split(tiles, n_slides)):
        path = store_path(folder, f"slide{s:02d}")
        n, t = len(part), part.shape[1]
        coords = np.stack([np.arange(n) * t, np.zeros(n)], 1).astype(np.int64)
        attrs = {
            "slide_id": path.stem,
            "source_path": "bench",
            "backend": "bench",
            "mpp": mpp,
            "slide_mpp": mpp / 2,
            "level": 0,
            "downsample": 2.0,
            "tile_size": t,
            "stride": t,
        }
        create_tile_arrays(path, TileArraysSpec(n, t, shard_tiles=64), coords, np.ones(n, np.float32), attrs)
        for start in range(0, n, 64):
            write_tiles(path, start, part[start : start + 64])
        mark_complete(path)


def random_preset(name: str, cache: Path) -> None:
    """Random weights for preset ``name``, laid out in ``cache`` as ``hf download`` lays the real ones."""
    import torch
    from safetensors.torch import save_file

    from wsi_ssl.encoders.builders import build_backbone
    from wsi_ssl.encoders.registry import get_preset

    preset = get_preset(name)
    snap = cache / f"models--{preset.repo_id.replace('/', '--')}" / "snapshots" / (preset.revision or "0" * 40)
    snap.mkdir(parents=True)
    backbone = build_backbone(preset)
    if preset.builder == "transformers":
        backbone.save_pretrained(str(snap))  # type: ignore[operator]
    else:
        state = {k: v.contiguous() for k, v in backbone.state_dict().items()}
        file = snap / preset.weights_files[0]
        if file.suffix == ".safetensors":
            save_file(state, str(file))
        else:
            torch.save(state, file)
    # As hf download leaves them: each file a link to blobs/<sha256 of its bytes>.
    blobs = snap.parents[1] / "blobs"
    blobs.mkdir()
    for file in list(snap.iterdir()):
        digest = hashlib.sha256(file.read_bytes()).hexdigest()
        file.rename(blobs / digest)
        file.symlink_to(blobs / digest)


def bare_forward(model: object, x: torch.Tensor, batch: int, device: str = "cpu", precision: str = "fp32") -> float:  # noqa: F821
    """Tiles/s of the model alone: batches already decoded and preprocessed (on the device for a GPU)."""
    import contextlib

    import torch

    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    x = x.to(device)
    cast = torch.autocast(device_type=torch.device(device).type, dtype=dtype) if dtype else contextlib.nullcontext()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    with torch.inference_mode(), cast:
        for start in range(0, len(x), batch):
            model(x[start : start + batch])  # type: ignore[operator]
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return len(x) / (time.perf_counter() - t0)


def embed_run(argv: list[str]) -> tuple[float, float]:
    """Run ``wsi-ssl embed ARGV`` as the command does; returns (wall seconds, loop seconds)."""
    from wsi_ssl.config import load_config
    from wsi_ssl.embed.command import FLAG_KEYS, register
    from wsi_ssl.embed.config import EmbedConfig
    from wsi_ssl.embed.runner import run_embed

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["embed", *argv])
    t0 = time.perf_counter()
    flags = {key: getattr(args, key) for key in FLAG_KEYS} | {"progress": args.progress}
    summary = run_embed(load_config(EmbedConfig, None, None, flags))
    seconds = time.perf_counter() - t0
    if not summary.ok or summary.slides != args_slides(argv):
        sys.exit(f"embed did not finish every slide: {summary.line()} {summary.failed}")
    return seconds, summary.seconds


def args_slides(argv: list[str]) -> int:
    from wsi_ssl.stores.tile_store import find_tile_stores

    return len(find_tile_stores(argv[argv.index("--tiles") + 1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="vit_small_patch16_224", help="timm ViT or zoo preset, random weights")
    ap.add_argument("--tiles", type=int, default=192)
    ap.add_argument("--slides", type=int, default=3)
    ap.add_argument("--tile-size", type=int, default=224)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0, help="torch threads for both (0 = all cores)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu", help="cpu or cuda (the GPU figures)")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    args = ap.parse_args()

    t_import = time.perf_counter()
    import lightning.fabric  # noqa: F401  (imported by the command; counted here, not in its time)
    import timm
    import torch

    from wsi_ssl.embed.preprocess import Preprocess
    from wsi_ssl.embed.runner import _cpu_threads
    from wsi_ssl.encoders.load import load_encoder
    from wsi_ssl.encoders.registry import is_preset
    from wsi_ssl.stores.encoder_dir import EncoderConfig, save_encoder
    from wsi_ssl.stores.tile_store import TileStore, find_tile_stores

    print(f"imports (paid once per process, not in either figure): {time.perf_counter() - t_import:.1f} s")
    threads = _cpu_threads(args.threads)
    torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="embed-bench-") as tmp_name:
        tmp = Path(tmp_name)
        if is_preset(args.model):
            os.environ["HF_HOME"], os.environ["HF_HUB_OFFLINE"] = str(tmp / "hf"), "1"
            os.environ.pop("HF_HUB_CACHE", None)
            random_preset(args.model, tmp / "hf" / "hub")
            encoder = args.model
        else:
            model = timm.create_model(args.model, pretrained=False, num_classes=0).eval()
            pcfg = model.pretrained_cfg
            cfg = EncoderConfig(
                arch=args.model,
                embed_dim=model.num_features,
                input_size=pcfg["input_size"][-1],
                mean=pcfg["mean"],
                std=pcfg["std"],
                mpp=0.5,
                method="random",
            )
            save_encoder(model, tmp / "encoder", cfg)
            encoder = str(tmp / "encoder")
        model, cfg = load_encoder(encoder)
        write_stores(tmp / "tiles", source_tiles(args.tiles, args.tile_size, rng), args.slides, cfg.mpp or 0.5)
        pre = Preprocess.from_encoder_config(cfg)
        stores = [TileStore(p) for p in find_tile_stores(tmp / "tiles")]
        x = torch.cat([pre(torch.from_numpy(s.tiles())) for s in stores])  # decoded, preprocessed, in memory
        model = model.to(args.device)
        run = dict(device=args.device, precision=args.precision)
        bare_forward(model, x[: args.batch_size], args.batch_size, **run)  # warm-up, for the baseline's benefit
        print(
            f"{args.model} on {args.device} at {args.precision}, {len(x)} tiles of {args.tile_size} px in {args.slides} stores, batch {args.batch_size}, "
            f"{threads} torch threads, {args.workers} worker(s)"
        )
        # bare, embed, bare, embed, ..., bare: each embed run is held against the mean of the bare
        # runs either side of it, so load from other processes drifting over time hits both alike.
        bares = [bare_forward(model, x, args.batch_size, **run)]
        ratios, loop_ratios = [], []
        for r in range(args.repeats):
            wall, loop = embed_run(
                [
                    "--tiles",
                    str(tmp / "tiles"),
                    "--encoder",
                    encoder,
                    "--out",
                    str(tmp / f"out{r}"),
                    "--batch-size",
                    str(args.batch_size),
                    "--workers",
                    str(args.workers),
                    "--device",
                    args.device,
                    "--precision",
                    args.precision,
                    "--threads",
                    str(threads),
                    "--no-progress",
                ]
            )
            bares.append(bare_forward(model, x, args.batch_size, **run))
            bare = (bares[-2] + bares[-1]) / 2
            e2e, steady = len(x) / wall, len(x) / loop
            ratios.append(e2e / bare)
            loop_ratios.append(steady / bare)
            print(
                f"repeat {r}: bare forward {bare:.2f} tiles/s (mean of {bares[-2]:.2f}, {bares[-1]:.2f}); "
                f"wsi-ssl embed {e2e:.2f} tiles/s end-to-end, {steady:.2f} tiles/s in its loop "
                f"(without encoder loading and set-up); ratio {e2e / bare:.3f}"
            )
        print(f"loop-only ratio (median): {statistics.median(loop_ratios):.3f}")
        print(f"ratio end-to-end / bare forward (median of {len(ratios)}): {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
