"""DINOv2 (Meta): natural-image references, to see what pathology pretraining adds on a cohort.

Built at the published 518-px position grid, so the checkpoint loads exactly as released; timm
resamples the position embedding for the 224-px tiles at each forward, as DINOv2 itself does.
"""

from wsi_ssl.encoders.preset import EncoderPreset

PRESETS: list[EncoderPreset] = []  # this family's records, collected by the registry

_COMMON = {
    "embed_dim": "DINOv2 (Oquab et al. 2023) and the timm cards: class token after the final norm",
    "pooling": "timm's forward with num_classes=0 (global_pool 'token'): the class token, as DINOv2's linear eval",
    "mean_std": "timm pretrained_cfg: ImageNet mean/std",
    "mpp": "natural images: no microns per pixel, so embed does not check the tiles' MPP",
    "license": "facebookresearch/dinov2 LICENSE (Apache-2.0); the timm card says the same",
}

PRESETS.append(
    EncoderPreset(
        name="dinov2-vits14",
        repo_id="timm/vit_small_patch14_dinov2.lvd142m",
        revision="0686a689726076609b20e80d263cb5aa7be945f5",
        license="Apache-2.0",
        gated=False,
        builder="timm",
        arch="vit_small_patch14_dinov2",
        kwargs={"img_size": 518, "dynamic_img_size": True},
        embed_dim=384,
        params=22_100_000,
        mpp=None,
        pooling="cls",
        sources={
            **_COMMON,
            "kwargs": "hf.co/timm/vit_small_patch14_dinov2.lvd142m: img_size 518, pos_embed [1, 1370, 384]",
            "params": "timm card of the DINOv2 ViT-S/14 (with and without registers): 'Params (M): 22.1'",
            "revision": "a commit of hf.co/timm/vit_small_patch14_dinov2.lvd142m (its file history)",
        },
    )
)

PRESETS.append(
    EncoderPreset(
        name="dinov2-vitl14",
        repo_id="timm/vit_large_patch14_dinov2.lvd142m",
        revision="48430325ec5b028c4cd538616390e41adc2e1bd4",
        license="Apache-2.0",
        gated=False,
        builder="timm",
        arch="vit_large_patch14_dinov2",
        kwargs={"img_size": 518, "dynamic_img_size": True},
        embed_dim=1024,
        params=304_400_000,
        mpp=None,
        pooling="cls",
        sources={
            **_COMMON,
            "kwargs": "hf.co/timm/vit_large_patch14_dinov2.lvd142m: img_size 518, pos_embed [1, 1370, 1024]",
            "params": "hf.co/timm/vit_large_patch14_dinov2.lvd142m card: 'Params (M): 304.4'",
            "revision": "the repository's 'Add model' commit (model.safetensors, config.json)",
        },
    )
)
