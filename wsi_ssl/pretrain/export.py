"""``wsi-ssl export``: turn a training checkpoint into an encoder directory (Contract 2).

Only the backbone leaves: the EMA teacher for DINO (the better and more stable network), the
encoder for MAE. The saved kwargs are exactly those the backbone was built with, so
``load_encoder`` (timm only) rebuilds it and gives the same embeddings.
"""

from __future__ import annotations

from pathlib import Path

from wsi_ssl.stores.encoder_dir import EncoderConfig, save_encoder

CHECKPOINT_DIR = "checkpoints"
LAST_CHECKPOINT = "last.ckpt"


def find_checkpoint(run_or_ckpt: str | Path) -> Path:
    """The checkpoint file itself, or ``RUN_DIR/checkpoints/last.ckpt``."""
    p = Path(run_or_ckpt)
    if p.is_file():
        return p
    if p.is_dir():
        last = p / CHECKPOINT_DIR / LAST_CHECKPOINT
        if last.is_file():
            return last
        found = sorted((p / CHECKPOINT_DIR).glob("*.ckpt")) if (p / CHECKPOINT_DIR).is_dir() else []
        if found:
            return found[-1]
        raise FileNotFoundError(f"{p}: no checkpoints in {p / CHECKPOINT_DIR}; is this a `wsi-ssl pretrain` run dir?")
    raise FileNotFoundError(f"no run dir or checkpoint at {p}")


def export_encoder(run_or_ckpt: str | Path, out_dir: str | Path, name: str = "") -> EncoderConfig:
    """Write the backbone of a checkpoint as an encoder dir; returns the written config."""
    import torch

    from wsi_ssl.pretrain.heads import backbone_kwargs, init_record
    from wsi_ssl.pretrain.module import PretrainModule

    ckpt = find_checkpoint(run_or_ckpt)
    try:
        module = PretrainModule.load_from_checkpoint(
            str(ckpt), map_location="cpu", weights_only=False, load_init_weights=False
        )
        step = int(torch.load(str(ckpt), map_location="cpu", weights_only=False).get("global_step", 0))
    except (RuntimeError, KeyError, EOFError) as exc:
        raise ValueError(f"{ckpt}: not a readable wsi-ssl pretrain checkpoint ({exc})") from None
    cfg = module.cfg
    backbone = module.encoder().eval()
    config = EncoderConfig(
        arch=cfg.backbone.arch,
        model_kwargs=backbone_kwargs(cfg.backbone),
        embed_dim=int(backbone.num_features),  # type: ignore[arg-type]
        input_size=cfg.crops.global_size,
        mean=cfg.augment.mean,
        std=cfg.augment.std,
        mpp=module.tile_mpp,
        method=cfg.method,
        steps=step,
        name=name,
        init_from=init_record(cfg.backbone),
        pooling=_pooling_of(cfg.backbone.init),
        source_checkpoint=str(ckpt.resolve()),
    )
    return save_encoder(backbone, out_dir, config)


def _pooling_of(preset_name: str | None) -> str | None:
    """A continued preset keeps its published pooling (Virchow's class token ++ patch mean, say)."""
    if not preset_name:
        return None
    from wsi_ssl.encoders.registry import get_preset

    return get_preset(preset_name).pooling
