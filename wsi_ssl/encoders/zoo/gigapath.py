"""Prov-GigaPath's tile encoder (ViT-g with 16-px patches, SwiGLU, 1536-d class token)."""

from wsi_ssl.encoders.preset import EncoderPreset

PRESETS: list[EncoderPreset] = []  # this family's records, collected by the registry

TRIDENT = "mahmoodlab/TRIDENT@a91fa849:trident/patch_encoder_models/load.py"

PRESETS.append(
    EncoderPreset(
        name="prov-gigapath",
        repo_id="prov-gigapath/prov-gigapath",
        license="prov-gigapath-license (non-commercial research)",
        gated=True,
        builder="timm",
        arch="vit_giant_patch14_dinov2",
        kwargs={
            "img_size": 224,
            "in_chans": 3,
            "patch_size": 16,
            "embed_dim": 1536,
            "depth": 40,
            "num_heads": 24,
            "init_values": 1e-5,
            "mlp_ratio": 5.33334,
            "mlp_layer": "SwiGLUPacked",
            "act_layer": "SiLU",
            "global_pool": "token",
            "dynamic_img_size": True,
        },
        embed_dim=1536,
        params=1_130_000_000,
        mpp=0.5,
        pooling="cls",
        weights_files=("pytorch_model.bin",),
        sources={
            "kwargs": f"hub config.json model_args as TRIDENT's offline loader spells them ({TRIDENT} "
            "GigaPathInferenceEncoder: patch_size 16 despite the arch name, depth 40, mlp_ratio 5.33334, strict "
            "load); SwiGLUPacked/SiLU are timm's own vit_giant_patch14_dinov2 definition, written out here",
            "params": "Xu et al. 2024 (Nature), Prov-GigaPath: a 1.13-billion-parameter tile encoder (ViT-g/14 family)",
            "embed_dim": "prov-gigapath/prov-gigapath@09d8e876:README.md: tile_encoder(sample_input) -> 1536",
            "pooling": "README: tile_encoder(x) with timm's global_pool 'token' -> class token after the final norm",
            "mean_std": "README: Resize(256, bicubic), CenterCrop(224), ImageNet Normalize",
            "mpp": "README and slide2vec gigapath.py: 256-px tiles at 0.5 um/px (20x), centre-cropped to 224",
            "license": "hf.co/prov-gigapath/prov-gigapath card metadata (license: other, prov-gigapath-license; gated)",
        },
        notes="timm < 1.0.3 ignores the hub's model_args and builds 518/patch-14 (the card warns); this preset passes them.",
    )
)
