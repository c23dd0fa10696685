"""Batched MIL training vs one bag at a time, measured side by side in one process.

One training epoch of gated attention MIL over synthetic bags (default 300 bags of 500-5,000
instances of 384-d float16 features, as ``wsi-ssl embed --dtype float16`` stores them):
(a) ``wsi_ssl.mil`` batching as ``fit`` runs it: 16 bags per step, bucketed by length, packed,
    from a :class:`FeatureBank` (on a GPU the fold's features are uploaded once per fold, timed
    separately and added to the first epoch; later steps copy nothing), loss summed on the device;
(b) the same batches with ``bag_forward: per_bag`` (the forward pass bag by bag, one loss and
    one optimizer step per batch; what ``auto`` picks on a CPU for large bags);
(c) the same model trained one bag per step, the way most MIL code does: each bag copied to
    the device in its stored dtype and widened there, one optimizer step per bag.
All start from the same weights; the first-step losses are compared (batched loss = mean of the
per-bag losses of the same bags, so they must agree to float tolerance).

    nice -n 10 .venv/bin/python benchmarks/mil.py                 # CPU, or CUDA when present
    .venv/bin/python benchmarks/mil.py --bags 60                  # quick look
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from wsi_ssl.mil.bags import Bag, batch_indices, collate
from wsi_ssl.mil.config import AggregatorConfig
from wsi_ssl.mil.feature_bank import FeatureBank
from wsi_ssl.mil.model import MILModel
from wsi_ssl.mil.train import run_batch


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


class Trainer:
    """One model + optimizer, trained either batched or one bag per step; time is accumulated."""

    def __init__(self, model: MILModel, device: torch.device, mode: str = "batched") -> None:
        self.model, self.device, self.seconds, self.first = model, device, 0.0, float("nan")
        self.mode = mode
        # as ``fit`` makes it (fused on a GPU), for every method alike
        self.opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == "cuda")
        self.total = torch.zeros((), device=device)

    def _step(self, out: torch.Tensor, y: torch.Tensor) -> None:
        loss = F.cross_entropy(out, y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        if np.isnan(self.first):
            self.first = loss.item()
        self.total += loss.detach()

    def batched(self, bank: FeatureBank, batches: list[list[int]]) -> None:
        sync(self.device)
        t0 = time.perf_counter()
        for idx in batches:
            b = bank.batch(idx)
            self._step(run_batch(self.model, b, self.mode), b.target)
        sync(self.device)
        self.seconds += time.perf_counter() - t0

    def one_by_one(self, bags: list[Bag], order: list[int]) -> None:
        sync(self.device)
        t0 = time.perf_counter()
        for i in order:
            x = torch.from_numpy(bags[i].features).to(self.device).float().unsqueeze(0)
            mask = torch.ones(x.shape[:2], dtype=torch.bool, device=self.device)
            self._step(self.model(x, mask), torch.as_tensor([int(bags[i].target)], device=self.device))
        sync(self.device)
        self.seconds += time.perf_counter() - t0


class OpCounter(TorchDispatchMode):
    """Counts operators dispatched (forward, backward and optimizer): on a GPU each is a kernel
    launch or a view, and a MIL step over a bag of a few thousand tiles is launch-bound there."""

    def __init__(self) -> None:
        super().__init__()
        self.n = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        self.n += 1
        return func(*args, **(kwargs or {}))


def ops_per_epoch(
    base: MILModel, bags: list[Bag], bank: FeatureBank, batches: list[list[int]], device: torch.device
) -> tuple[int, int]:
    """Operators dispatched in one epoch, batched and one bag per step (counted on one step each)."""
    batched, single = Trainer(copy.deepcopy(base), device), Trainer(copy.deepcopy(base), device)
    batched.batched(bank, batches[:1])  # first steps create optimizer state: count a later one
    single.one_by_one(bags, batches[0][:1])
    with OpCounter() as c_batch:
        batched.batched(bank, batches[:1])
    with OpCounter() as c_single:
        single.one_by_one(bags, batches[0][1:2])
    return c_batch.n * len(batches), c_single.n * len(bags)


@torch.no_grad()
def first_step_losses(model: MILModel, bags: list[Bag], idx: list[int], device: torch.device) -> tuple[float, float]:
    b = collate([bags[i] for i in idx]).to(device)
    batched = F.cross_entropy(run_batch(model, b), b.target).item()
    singles = []
    for i in idx:
        x = torch.from_numpy(bags[i].features).to(device).float().unsqueeze(0)
        singles.append(
            F.cross_entropy(
                model(x, torch.ones(x.shape[:2], dtype=torch.bool, device=device)),
                torch.as_tensor([int(bags[i].target)], device=device),
            ).item()
        )
    return batched, float(np.mean(singles))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bags", type=int, default=300)
    ap.add_argument("--min-instances", type=int, default=500)
    ap.add_argument("--max-instances", type=int, default=5000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--hidden-dim", type=int, default=256)
    ap.add_argument("--attn-dim", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--segment", type=int, default=2, help="batches per interleaved timing segment")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(
        "cuda"
        if args.device == "auto" and torch.cuda.is_available()
        else ("cpu" if args.device == "auto" else args.device)
    )
    bags = make_bags(args.bags, args.min_instances, args.max_instances, args.dim)
    n_inst = sum(len(b) for b in bags)
    torch.manual_seed(0)
    cfg = AggregatorConfig(kind="abmil", gated=True, hidden_dim=args.hidden_dim, attn_dim=args.attn_dim, dropout=0.0)
    base = MILModel(args.dim, cfg, "classification", 2).to(device)
    rng = np.random.default_rng(0)
    batches = batch_indices([len(b) for b in bags], args.batch_size, rng, bucket=True)
    batched_loss, single_loss = first_step_losses(base, bags, batches[0], device)
    padded = sum(len(b) * max(len(bags[i]) for i in b) for b in batches)

    # warm-up (allocator, kernels) on throwaway copies
    Trainer(copy.deepcopy(base), device).batched(FeatureBank(bags, device), batches[:1])
    Trainer(copy.deepcopy(base), device).one_by_one(bags, batches[0][:2])
    sync(device)
    t0 = time.perf_counter()
    bank = FeatureBank(bags, device)  # what ``fit`` does once per fold
    sync(device)
    t_upload = time.perf_counter() - t0
    # The epoch runs in segments of a few batches, each timed batched and then one bag at a time
    # over the same bags, so both methods see the same machine load (other jobs come and go).
    batched, single = Trainer(copy.deepcopy(base), device), Trainer(copy.deepcopy(base), device)
    per_bag = Trainer(copy.deepcopy(base), device, mode="per_bag")
    for start in range(0, len(batches), args.segment):
        seg = batches[start : start + args.segment]
        batched.batched(bank, seg)
        per_bag.batched(bank, seg)
        single.one_by_one(bags, [i for b in seg for i in b])
    t_batched, t_single, first = batched.seconds, single.seconds, batched.first
    print(
        f"device {device}, torch threads {torch.get_num_threads()}; {len(bags)} bags, {n_inst:,} instances of {args.dim}-d; padding overhead {padded / n_inst - 1:.1%}"
    )
    print(
        f"first-step loss: batched {batched_loss:.6f}  mean of per-bag {single_loss:.6f}  |diff| {abs(batched_loss - single_loss):.2e} (training step: {first:.6f})"
    )
    print(
        f"one epoch, batched ({args.batch_size} bags/step), per-bag forward: {per_bag.seconds:.2f}s   "
        f"speedup x{t_single / per_bag.seconds:.2f} (first step loss {per_bag.first:.6f})"
    )
    print(
        f"one epoch: batched ({args.batch_size} bags/step) {t_batched:.2f}s   one bag per step {t_single:.2f}s   speedup x{t_single / t_batched:.2f}"
    )
    ops_batched, ops_single = ops_per_epoch(base, bags, bank, batches, device)
    print(
        f"operators dispatched per epoch: batched {ops_batched:,}, one bag per step {ops_single:,} (x{ops_single / ops_batched:.1f} fewer)"
    )
    where = "on the device" if bank.on_device else "on the host (nothing copied)"
    print(
        f"feature bank, once per fold: {bank.nbytes / 1e6:.0f} MB {where} in {t_upload:.3f}s; first epoch with it: "
        f"batched x{t_single / (t_batched + t_upload):.2f}, per-bag forward x{t_single / (per_bag.seconds + t_upload):.2f}"
    )


if __name__ == "__main__":
    main()
