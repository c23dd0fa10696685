"""One ``wsi-ssl evaluate`` run: for each encoder (of this shard), embed the patch set (cached),
run the protocols, re-score the linear probes under each shift, and write its results; then
merge every encoder's results present in OUT into results.json, results.csv, plots and report.html.

OUT/
  cache/<key>.h5                 embeddings (wsi_ssl.evaluate.cache)
  runs/<encoder>/results.json    one encoder's figures (written last: its presence = done)
  results.json, results.csv      all encoders present, merged (wsi_ssl.evaluate.outputs)
  plots/*.png, report.html
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from wsi_ssl.config import ConfigError
from wsi_ssl.evaluate.config import EvaluateConfig
from wsi_ssl.evaluate.datasets.base import DatasetError, PatchSet, stratified_holdout
from wsi_ssl.evaluate.protocols.linear import LinearSchedule
from wsi_ssl.evaluate.protocols.metrics import spread
from wsi_ssl.evaluate.protocols.suite import Embeddings, SuiteResult, rescore, run_protocols

log = logging.getLogger(__name__)
RESULTS_VERSION = 1


def capped_indices(patches: PatchSet, splits: tuple[str, ...], cap: int | None) -> np.ndarray:
    """Patch numbers of ``splits``, at most ``cap`` of them (class-stratified, seed 0)."""
    idx = np.concatenate([patches.indices(s) for s in splits])
    if cap is None or len(idx) <= cap:
        return np.sort(idx)
    return stratified_holdout(patches.labels, idx, cap / len(idx), seed=0)


def select_patches(patches: PatchSet, cfg: EvaluateConfig) -> dict[str, np.ndarray]:
    """Patch numbers per split, after the optional stratified caps (recorded in the notes)."""
    trval = capped_indices(patches, ("train", "val"), cfg.max_train_patches)
    test = capped_indices(patches, ("test",), cfg.max_test_patches)
    if cfg.max_train_patches and len(trval) < len(patches.indices("train")) + len(patches.indices("val")):
        patches.notes.append(f"train+val capped to {len(trval)} patches (stratified, seed 0)")
    if cfg.max_test_patches and len(test) < len(patches.indices("test")):
        patches.notes.append(f"test capped to {len(test)} patches (stratified, seed 0)")
    return {
        "train": trval[patches.splits[trval] == "train"],
        "val": trval[patches.splits[trval] == "val"],
        "test": test,
    }


def _stain_normaliser(cfg: EvaluateConfig, patches: PatchSet, train_idx: np.ndarray, embedder_pixels: Any) -> Any:
    if cfg.stain_norm.method == "none":
        return ("none", None)
    from wsi_ssl.evaluate.stain_norm import StainNormalizer, median_colour_index

    if cfg.stain_norm.reference:
        from PIL import Image

        with Image.open(cfg.stain_norm.reference) as im:
            ref = np.asarray(im.convert("RGB"))
        ref_id = cfg.stain_norm.reference
    else:
        sample = train_idx[np.linspace(0, len(train_idx) - 1, min(64, len(train_idx))).astype(int)]
        images = list(embedder_pixels(sample))
        pick = median_colour_index(images)
        ref, ref_id = images[pick], f"patch {int(sample[pick])}"
    return (f"{cfg.stain_norm.method}:{ref_id}", StainNormalizer(cfg.stain_norm.method, ref))


def evaluate_encoder(spec: str, patches: PatchSet, cfg: EvaluateConfig, out: Path) -> dict[str, Any]:
    """Every figure for one encoder on ``patches``; writes ``OUT/runs/<name>/results.json``."""
    from wsi_ssl.evaluate.embedding import PatchEmbedder
    from wsi_ssl.evaluate.encoders import load_for_evaluation
    from wsi_ssl.evaluate.shifts import SHIFTS

    started = time.time()
    enc = load_for_evaluation(spec, cfg.encoder_weights, out)
    idx = select_patches(patches, cfg)
    cache_dir = cfg.cache_dir or out / "cache"
    embedder = PatchEmbedder(
        enc,
        patches,
        cache_dir,
        batch_size=cfg.batch_size,
        device=cfg.device,
        workers=cfg.workers,
        progress=cfg.progress,
    )
    name, fn = _stain_normaliser(cfg, patches, idx["train"], embedder.pixels)
    embedder.stain_name, embedder.stain_fn = name, fn
    feats = {s: embedder.features(i) for s, i in idx.items()}
    labels = {s: patches.labels[i] for s, i in idx.items()}
    emb = Embeddings(
        feats["train"],
        labels["train"],
        feats["val"],
        labels["val"],
        feats["test"],
        labels["test"],
        len(patches.classes),
    )
    suite: SuiteResult = run_protocols(
        emb,
        cfg.seeds,
        cfg.protocols,
        LinearSchedule(**cfg.linear.model_dump()),
        cfg.knn.k,
        cfg.fewshot.shots,
    )
    robustness: dict[str, Any] = {}
    if suite.probes and cfg.robustness.shifts:
        clean = suite.protocols["linear"]["per_seed"]
        robustness = {"clean": spread(clean), "shifts": {}}
        for shift in cfg.robustness.shifts:
            shifted = embedder.features(idx["test"], shift, SHIFTS[shift])
            per_seed = rescore(suite.probes, shifted, labels["test"], emb.n_classes)
            drops = [{k: c[k] - s[k] for k in s} for c, s in zip(clean, per_seed, strict=True)]
            robustness["shifts"][shift] = {"metrics": spread(per_seed), "drop": spread(drops), "per_seed": per_seed}
    index = None
    if patches.sites is not None:
        from wsi_ssl.evaluate.robustness_index import robustness_index

        every = np.concatenate([idx["train"], idx["val"], idx["test"]])
        x = np.concatenate([feats["train"], feats["val"], feats["test"]])
        index = {
            "value": robustness_index(x, patches.labels[every], patches.sites[every], cfg.robustness.index_k),
            "k": cfg.robustness.index_k,
        }
    result = {
        "version": RESULTS_VERSION,
        "encoder": {
            "name": enc.name,
            "spec": spec,
            "sha256": enc.sha256,
            "arch": enc.config.arch,
            "method": enc.config.method,
            "embed_dim": enc.config.embed_dim,
            "input_size": enc.config.input_size,
            "mpp": enc.config.mpp,
        },
        "dataset": {**patches.summary(), "evaluated": {s: len(i) for s, i in idx.items()}},
        "seeds": list(cfg.seeds),
        "stain_norm": name,
        "protocols": suite.protocols,
        "confusion_matrix": suite.confusion,
        "robustness": robustness,
        "robustness_index": index,
        "seconds": round(time.time() - started, 1),
    }
    failed = int(getattr(fn, "failed", 0) or 0)
    if failed:
        result["stain_norm_failed_patches"] = failed  # patches with too little tissue, left as they were
    run_dir = out / "runs" / enc.name
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = run_dir / ".results.json.partial"
    tmp.write_text(json.dumps(result, indent=2))
    tmp.replace(run_dir / "results.json")
    return result


def run_evaluate(cfg: EvaluateConfig) -> Path:
    """Evaluate this shard's encoders, then (re)write the merged outputs; returns OUT."""
    from wsi_ssl.evaluate.datasets import load_dataset
    from wsi_ssl.evaluate.outputs import write_outputs
    from wsi_ssl.shard import parse_shard

    missing = [k for k in ("encoders", "dataset", "data", "out") if not getattr(cfg, k)]
    if missing:
        flags = {"encoders": "--encoder", "dataset": "--dataset", "data": "--data", "out": "--out"}
        raise ConfigError(f"missing {', '.join(flags[m] for m in missing)}")
    assert cfg.out is not None and cfg.data is not None and cfg.dataset is not None
    if cfg.threads:
        import torch

        torch.set_num_threads(cfg.threads)
    try:
        patches = load_dataset(cfg.dataset, cfg.data, cfg.mpp)
    except KeyError as exc:
        raise ConfigError(str(exc.args[0])) from None
    except DatasetError as exc:
        raise ConfigError(str(exc)) from None
    try:
        shard = parse_shard(cfg.shard)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    mine = shard.select(cfg.encoders, key=str)
    log.info(
        "%s: %s; %d of %d encoders in shard %s",
        cfg.dataset,
        patches.summary()["patches"],
        len(mine),
        len(cfg.encoders),
        shard,
    )
    cfg.out.mkdir(parents=True, exist_ok=True)
    for spec in mine:
        r = evaluate_encoder(spec, patches, cfg, cfg.out)
        lin = r["protocols"].get("linear", {}).get("metrics", {}).get("balanced_accuracy")
        if lin:
            log.info("%s: linear probe balanced accuracy %.3f +- %.3f", r["encoder"]["name"], lin["mean"], lin["std"])
    write_outputs(cfg.out)
    return cfg.out
