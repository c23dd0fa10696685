"""Mahmood Lab: UNI (ViT-L/16), UNI2-h (ViT-H/14, 8 registers, SwiGLU) and CONCH v1.5's vision tower."""

from wsi_ssl.encoders.preset import EncoderPreset

PRESETS: list[EncoderPreset] = []  # this family's records, collected by the registry

UNI_README = "mahmoodlab/UNI@42715efc:README.md"
TRIDENT = "mahmoodlab/TRIDENT@a91fa849:trident/patch_encoder_models/load.py"
PINS = "CraigMyles/raw2features@079f8775:src/raw2features/embedders/registry.yaml (third-party pin)"

PRESETS.append(
    EncoderPreset(
        name="uni",
        repo_id="MahmoodLab/UNI",
        revision="b55a5ec6cade1a39edfe6534189a9b8ca7a022f0",
        license="CC-BY-NC-ND-4.0",
        gated=True,
        builder="timm",
        arch="vit_large_patch16_224",
        kwargs={"img_size": 224, "patch_size": 16, "init_values": 1e-5, "dynamic_img_size": True},
        embed_dim=1024,
        params=303_350_784,
        mpp=0.5,
        pooling="cls",
        weights_files=("pytorch_model.bin",),
        sources={
            "kwargs": f"{UNI_README} (local load: vit_large_patch16_224, img_size=224, patch_size=16, init_values=1e-5, "
            f"dynamic_img_size=True, strict load); {TRIDENT} UNIInferenceEncoder",
            "params": "the card gives the architecture (ViT-L/16) but no count; 303,350,784 is that architecture's "
            "count, and the strict load in the authors' loader pins it",
            "embed_dim": f"{UNI_README}: 'feature_emb = model(image)' [1, 1024]",
            "pooling": f"{UNI_README}: model(image) with num_classes=0 is timm's class token after the final norm",
            "mean_std": f"{UNI_README} and mahmoodlab/UNI:uni/get_encoder/get_encoder.py: ImageNet Normalize",
            "mpp": "TRIDENT README: uni_v1 '--patch_size 256 --mag 20' (20x, 0.5 um/px, resized to 224)",
            "revision": PINS,
            "license": f"{UNI_README} 'License and Terms of Use' (CC-BY-NC-ND 4.0, Hub registration required)",
        },
        notes="TRIDENT reads 256-px tiles at 20x and resizes them to 224; the card resizes and centre-crops.",
    )
)

PRESETS.append(
    EncoderPreset(
        name="uni2-h",
        repo_id="MahmoodLab/UNI2-h",
        revision="d517a8dd47902dd7c308b3c36f63bce47e7b9a43",
        license="CC-BY-NC-ND-4.0",
        gated=True,
        builder="timm",
        arch="vit_giant_patch14_224",
        kwargs={
            "img_size": 224,
            "patch_size": 14,
            "depth": 24,
            "num_heads": 24,
            "init_values": 1e-5,
            "embed_dim": 1536,
            "mlp_ratio": 2.66667 * 2,
            "no_embed_class": True,
            "mlp_layer": "SwiGLUPacked",
            "act_layer": "SiLU",
            "reg_tokens": 8,
            "dynamic_img_size": True,
        },
        embed_dim=1536,
        params=681_394_176,
        mpp=0.5,
        pooling="cls",
        weights_files=("pytorch_model.bin",),
        sources={
            "kwargs": f"{UNI_README} UNI2-h timm_kwargs (verbatim: mlp_ratio 2.66667*2, SwiGLUPacked, SiLU, reg_tokens 8, "
            f"no_embed_class True); {TRIDENT} UNIv2InferenceEncoder; kaiko-ai/eva:.../pathology/mahmood.py",
            "params": "681M: the count of the architecture the card's kwargs build (ViT-h/14-reg8 in the README table)",
            "embed_dim": f"{UNI_README}: 'feature_emb = model(image) # [1, 1536]'",
            "pooling": f"{UNI_README}: model(image), timm's class token after the final norm (registers are not pooled)",
            "mean_std": f"{UNI_README}: Resize(224), CenterCrop(224), ImageNet Normalize",
            "mpp": "TRIDENT README: uni_v2 '--patch_size 256 --mag 20' (0.5 um/px)",
            "revision": PINS,
            "license": f"{UNI_README} License section (CC-BY-NC-ND 4.0, Hub registration and agreement)",
        },
    )
)

PRESETS.append(
    EncoderPreset(
        name="conch-v1.5",
        repo_id="MahmoodLab/conchv1_5",
        license="CC-BY-NC-ND-4.0",
        gated=True,
        builder="module",
        arch="wsi_ssl.encoders.layers.conch:ConchVisionTower",
        kwargs={
            "trunk_kwargs": {"img_size": 224, "patch_size": 16, "init_values": 1.0, "dynamic_img_size": True},
            "embed_dim": 768,
            "pooler_heads": 8,
            "pooler_queries": 1,
        },
        embed_dim=768,
        params=306_109_184,
        mpp=0.5,
        pooling="model",
        input_size=448,
        weights_files=("pytorch_model_vision.bin",),
        sources={
            "kwargs": "MahmoodLab/TITAN conch_v1_5 (ConchConfig: patch 16, context_dim 1024, embed_dim 768, depth 24, "
            "heads 16, pooler_n_queries_contrast 1), copied in lingxitong/MIL_BASELINE@8c85c413:"
            f"feature_extractor/clam_base_utils/utils/build_conch_v1_5.py; {TRIDENT} Conchv15InferenceEncoder",
            "params": "the card names a ViT-L vision encoder without a count; 306,109,184 is the trunk (303,350,784) plus "
            "the attention pool and its norms, the tensors of pytorch_model_vision.bin (strict load upstream)",
            "embed_dim": "TITAN return_conch(): 768-d features (attn_pool_contrast query 0 -> ln_contrast)",
            "pooling": "learned attention pool over all trunk tokens, then ln_contrast; no projection, no L2 norm",
            "mean_std": f"{TRIDENT}: Resize(448), CenterCrop(448), ImageNet mean/std",
            "mpp": "TRIDENT README: conch_v15 on 512-px tiles at 20x (0.5 um/px), resized to 448",
            "license": "hf.co/MahmoodLab/conchv1_5 card (cc-by-nc-nd-4.0, gated)",
        },
        notes="The checkpoint's position embedding is a 14x14 grid; at 448 px timm resamples it to 28x28 per forward "
        "(bicubic), where TITAN resamples by scale factor and TRIDENT once at load (bilinear): equal up to "
        "interpolation rounding.",
    )
)
