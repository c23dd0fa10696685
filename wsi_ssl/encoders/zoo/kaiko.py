"""kaiko.ai: the "towards large pathology FMs" ViTs (timm) and Midnight-12k (DINOv2 ViT-g, transformers)."""

from wsi_ssl.encoders.preset import EncoderPreset

PRESETS: list[EncoderPreset] = []  # this family's records, collected by the registry

TRIDENT = "mahmoodlab/TRIDENT@a91fa849:trident/patch_encoder_models/load.py"
EVA = "kaiko-ai/eva@73b61a79:src/eva/vision/models/networks/backbones/pathology/kaiko.py"
KAIKO_STATS = (0.5, 0.5, 0.5)


def _kaiko_vit(name: str, arch: str, revision: str, embed_dim: int, params: int, params_source: str) -> EncoderPreset:
    return EncoderPreset(
        name=name,
        repo_id=f"1aurent/{arch}.kaiko_ai_towards_large_pathology_fms",
        revision=revision,
        license="Kaiko Non-Commercial Public License v1",
        gated=False,
        builder="timm",
        arch=arch,
        kwargs={"img_size": 224, "dynamic_img_size": True},
        embed_dim=embed_dim,
        params=params,
        mpp=0.5,
        pooling="cls",
        mean=KAIKO_STATS,
        std=KAIKO_STATS,
        sources={
            "kwargs": f"{TRIDENT} KaikoInferenceEncoder: hf-hub:1aurent/{arch}.kaiko_ai_towards_large_pathology_fms, "
            "img_size 224, dynamic_img_size; the same weights as eva's torch.hub kaiko-ai/towards_large_pathology_fms",
            "params": params_source,
            "embed_dim": f"{EVA}: the class token of a {arch.split('_')[1]} ViT ({embed_dim})",
            "pooling": f"{EVA} and TRIDENT: timm's forward with num_classes=0, the class token after the final norm",
            "mean_std": f"{TRIDENT} get_constants('kaiko'): mean (0.5, 0.5, 0.5), std (0.5, 0.5, 0.5)",
            "mpp": "Aben et al. 2024 (arXiv 2404.15217): TCGA tiles at several magnifications; eva and TRIDENT "
            "evaluate at 0.5 um/px (20x)",
            "license": "hf.co/1aurent card metadata: other, kaiko-non-commercial (Kaiko Non-Commercial Public License v1)",
            "revision": "the 1aurent repository's 'Add model' commit, which uploaded model.safetensors",
        },
    )


PRESETS.append(
    _kaiko_vit(
        "kaiko-vits16",
        "vit_small_patch16_224",
        "48560ea39969fe44b7b2ab057de01484243a7d43",
        384,
        21_665_664,
        "Aben et al. 2024 (arXiv 2404.15217): ViT-S16 (22M, rounded); 21,665,664 is the timm "
        "vit_small_patch16_224 backbone's count, headless",
    )
)
PRESETS.append(
    _kaiko_vit(
        "kaiko-vitb16",
        "vit_base_patch16_224",
        "797c524a94c7fdae8ea33064d0ac6966ed8956bb",
        768,
        85_798_656,
        "Aben et al. 2024 (arXiv 2404.15217): ViT-B16 (86M, rounded); 85,798,656 is the timm "
        "vit_base_patch16_224 backbone's count, headless",
    )
)

PRESETS.append(
    EncoderPreset(
        name="midnight-12k",
        repo_id="kaiko-ai/midnight",
        revision="adc6b15679c981cce6f9b018bbad09d16eeeda9f",
        license="MIT",
        gated=False,
        builder="transformers",
        arch="Dinov2Model",
        kwargs={
            "model_type": "dinov2",
            "hidden_size": 1536,
            "num_hidden_layers": 40,
            "num_attention_heads": 24,
            "mlp_ratio": 4,
            "use_swiglu_ffn": True,
            "patch_size": 14,
            "image_size": 224,
            "qkv_bias": True,
        },
        timm_equivalent={
            "arch": "vit_giant_patch14_dinov2",
            "checkpoint_filter": "hf_dinov2_to_timm",
            "kwargs": {"img_size": 224, "dynamic_img_size": True},
        },
        embed_dim=3072,
        params=1_130_000_000,
        mpp=0.5,
        pooling="cls+mean_patch",
        mean=KAIKO_STATS,
        std=KAIKO_STATS,
        sources={
            "kwargs": "config.json as a release manifest pinned to adc6b156 asserts it (Dinov2Model, hidden 1536, 40 layers, "
            "24 heads, patch 14, use_swiglu_ffn true, 727 tensors); card base_model facebook/dinov2-giant",
            "params": "Karasikov et al. 2025 (arXiv 2504.05186): ViT-g/14 (1.1B); the DINOv2 ViT-g/14 count is 1.13B",
            "embed_dim": "card: extract_classification_embedding -> torch.cat([cls, patch mean]) on 1536-d tokens = 3072",
            "pooling": "kaiko-ai/Midnight@e48dce15:README.md: cls_embedding, patch_embeddings = tensor[:, 0, :], "
            "tensor[:, 1:, :]; torch.cat([cls_embedding, patch_embeddings.mean(1)], dim=-1)",
            "mean_std": "card: 'trained on 224x224 images normalized with a mean of (0.5, 0.5, 0.5) and a standard "
            "deviation of (0.5, 0.5, 0.5)'",
            "mpp": f"{TRIDENT} runs it at 20x (0.5 um/px); trained on TCGA at 0.25-2 um/px",
            "revision": "hf.co/kaiko-ai/midnight README blame at adc6b156",
            "license": "card metadata: license mit",
        },
        notes="TRIDENT's and eva's default is the class token alone (1536-d); the card's classification embedding, "
        "used here, is class token ++ patch mean (3072-d).",
    )
)
