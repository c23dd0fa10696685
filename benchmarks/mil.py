"""Batched, padded MIL training vs one bag at a time, measured side by side in one process.

One training epoch of gated attention MIL over synthetic bags (default 300 bags of 500-5,000
instances of 384-d features): (a) ``wsi_ssl.mil`` batching (16 bags per step, bucketed by
length, padded with a mask), (b) the same model trained one bag per step, the way most MIL code
does. Both start from the same weights; the first-step losses are compared (batched loss = mean
of the per-bag losses of the same bags, so they must agree to float tolerance).

    nice -n 10 .venv/bin/python benchmarks/mil.py                 # CPU, or CUDA when present
    .venv/bin/python benchmarks/mil.py --bags 60 --epochs 1       # quick look
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import torch
import torch.nn.functional as F

from wsi_ssl.mil.bags import Bag, batch_indices, collate
from wsi_ssl.mil.config import AggregatorConfig
from wsi_ssl.mil.model import MILModel


def make_bags(n: int, lo: int, hi: int, dim: int, seed: int = 0) -> list[Bag]:
    rng = np.random.default_rng(seed)
    bags = []
    for i in range(n):
        size = int(rng.integers(lo, hi + 1))
        x = rng.standard_normal((size, dim), dtype=np.float32)
        label = i % 2
        if label:
            x[: size // 20, :8] += 1.5
        bags.append(Bag(key=str(i), patient_id=str(i), features=x.astype(np.float16), target=np.asarray(label)))
    return bags


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def epoch_batched(model: MILModel, bags: list[Bag], batches: list[list[int]], device: torch.device) -> tuple[float, float]:
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    first = float("nan")
    sync(device)
    t0 = time.perf_counter()
    for step, idx in enumerate(batches):
        b = collate([bags[i] for i in idx]).to(device)
        loss = F.cross_entropy(model(b.x, b.mask), b.target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step == 0:
            first = loss.item()
    sync(device)
    return time.perf_counter() - t0, first


def epoch_one_by_one(model: MILModel, bags: list[Bag], order: list[int], device: torch.device) -> float:
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    sync(device)
    t0 = time.perf_counter()
    for i in order:
        x = torch.from_numpy(bags[i].features.astype(np.float32)).unsqueeze(0).to(device)
        mask = torch.ones(x.shape[:2], dtype=torch.bool, device=device)
        y = torch.as_tensor([int(bags[i].target)], device=device)
        loss = F.cross_entropy(model(x, mask), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    sync(device)
    return time.perf_counter() - t0


@torch.no_grad()
def first_step_losses(model: MILModel, bags: list[Bag], idx: list[int], device: torch.device) -> tuple[float, float]:
    b = collate([bags[i] for i in idx]).to(device)
    batched = F.cross_entropy(model(b.x, b.mask), b.target).item()
    singles = []
    for i in idx:
        x = torch.from_numpy(bags[i].features.astype(np.float32)).unsqueeze(0).to(device)
        singles.append(F.cross_entropy(model(x, torch.ones(x.shape[:2], dtype=torch.bool, device=device)), torch.as_tensor([int(bags[i].target)], device=device)).item())
    return batched, float(np.mean(singles))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bags", type=int, default=300)
    ap.add_argument("--min-instances", type=int, default=500)
    ap.add_argument("--max-instances", type=int, default=5000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else ("cpu" if args.device == "auto" else args.device))
    bags = make_bags(args.bags, args.min_instances, args.max_instances, args.dim)
    n_inst = sum(len(b) for b in bags)
    torch.manual_seed(0)
    cfg = AggregatorConfig(kind="abmil", gated=True, hidden_dim=256, attn_dim=128, dropout=0.0)
    base = MILModel(args.dim, cfg, "classification", 2).to(device)
    rng = np.random.default_rng(0)
    batches = batch_indices([len(b) for b in bags], args.batch_size, rng, bucket=True)
    order = [i for b in batches for i in b]  # the same bags in the same order, one per step
    batched_loss, single_loss = first_step_losses(base, bags, batches[0], device)
    padded = sum(len(b) * max(len(bags[i]) for i in b) for b in batches)

    # warm-up (allocator, kernels), then the measured epochs, batched first then one by one
    epoch_batched(copy.deepcopy(base), bags, batches[:2], device)
    epoch_one_by_one(copy.deepcopy(base), bags, order[:4], device)
    t_batched, first = epoch_batched(copy.deepcopy(base), bags, batches, device)
    t_single = epoch_one_by_one(copy.deepcopy(base), bags, order, device)
    print(f"device {device}, torch threads {torch.get_num_threads()}; {len(bags)} bags, {n_inst:,} instances of {args.dim}-d; padding overhead {padded / n_inst - 1:.1%}")
    print(f"first-step loss: batched {batched_loss:.6f}  mean of per-bag {single_loss:.6f}  |diff| {abs(batched_loss - single_loss):.2e} (training step: {first:.6f})")
    print(f"one epoch: batched ({args.batch_size} bags/step) {t_batched:.2f}s   one bag per step {t_single:.2f}s   speedup x{t_single / t_batched:.2f}")


if __name__ == "__main__":
    main()
