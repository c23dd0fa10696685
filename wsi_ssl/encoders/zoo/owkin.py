"""Owkin: Phikon (iBOT ViT-B/16) and Phikon-v2 (DINOv2 ViT-L/16), published in the transformers format."""

from wsi_ssl.encoders.preset import EncoderPreset

PRESETS: list[EncoderPreset] = []  # this family's records, collected by the registry

TRIDENT = "mahmoodlab/TRIDENT@a91fa849:trident/patch_encoder_models/load.py"
EVA_DOCS = "kaiko-ai/eva@73b61a79:docs/user-guide/advanced/replicate_evaluations.md"

PRESETS.append(
    EncoderPreset(
        name="phikon",
        repo_id="owkin/phikon",
        revision="cd6ea0861ccd7a242d92f4d349cf88bf5eab7053",
        license="Owkin non-commercial licence (card: other)",
        gated=False,
        builder="transformers",
        arch="ViTModel",
        kwargs={
            "model_type": "vit",
            "hidden_size": 768,
            "num_hidden_layers": 12,
            "num_attention_heads": 12,
            "intermediate_size": 3072,
            "patch_size": 16,
            "image_size": 224,
            "qkv_bias": True,
            "layer_norm_eps": 1e-12,
            "hidden_act": "gelu",
            "init_kwargs": {"add_pooling_layer": False},
        },
        embed_dim=768,
        params=86_000_000,
        mpp=0.5,
        pooling="cls",
        weights_files=("model.safetensors", "pytorch_model.bin"),
        sources={
            "kwargs": "hf.co/owkin/phikon@cd6ea086 config.json (ViTModel, layer_norm_eps 1e-12: the published outputs "
            f"use it, an open PR proposes 1e-6); {TRIDENT} PhikonInferenceEncoder: add_pooling_layer=False",
            "params": "Filiot et al. 2023 (Phikon): ViT-Base/16, 86M parameters, iBOT on 40M TCGA tiles",
            "embed_dim": "card: features = outputs.last_hidden_state[:, 0, :]  # (1, 768)",
            "pooling": "card and TRIDENT: last_hidden_state[:, 0, :], the class token after the final layer norm",
            "mean_std": f"{EVA_DOCS} and TRIDENT: ImageNet mean/std",
            "mpp": "slide2vec phikon.py supported_spacing_um=0.5 (TCGA tiles at 20x)",
            "revision": "hf.co/owkin/phikon commit whose config.json is cited above",
            "license": "card metadata: other (Owkin non-commercial)",
        },
    )
)

PRESETS.append(
    EncoderPreset(
        name="phikon-v2",
        repo_id="owkin/phikon-v2",
        revision="2ae989a9c40cffaa27f0a6cb29cc94d1d6f9a5fd",
        license="Owkin non-commercial licence (card: other)",
        gated=False,
        builder="transformers",
        arch="Dinov2Model",
        kwargs={
            "model_type": "dinov2",
            "hidden_size": 1024,
            "num_hidden_layers": 24,
            "num_attention_heads": 16,
            "mlp_ratio": 4,
            "patch_size": 16,
            "image_size": 224,
            "use_swiglu_ffn": False,
            "qkv_bias": True,
        },
        timm_equivalent={
            "arch": "vit_large_patch16_224",
            "checkpoint_filter": "hf_dinov2_to_timm",
            "kwargs": {"img_size": 224, "init_values": 1e-5, "dynamic_img_size": True},
        },
        embed_dim=1024,
        params=303_351_808,
        mpp=0.5,
        pooling="cls",
        sources={
            "kwargs": "config.json as asserted by a release manifest pinned to 2ae989a9 (Dinov2Model, hidden 1024, 24 layers, "
            "16 heads, patch 16, use_swiglu_ffn false, 439 tensors); image_size 224 is the training size",
            "params": "Filiot et al. 2024 (arXiv 2409.09173): a ViT-Large/16; 303,351,808 is that Dinov2Model's count",
            "embed_dim": "card: model(**inputs).last_hidden_state[:, 0, :]  # (1, 1024)",
            "pooling": f"card and {TRIDENT} Phikonv2InferenceEncoder: last_hidden_state[:, 0, :]",
            "mean_std": f"{EVA_DOCS}: ImageNet mean/std (the processor: bicubic 224, centre crop)",
            "mpp": f"{EVA_DOCS}: PANCAN-XL, 450M 20x histology images",
            "revision": "release manifest pin (third party)",
            "license": "card metadata: other (Owkin non-commercial)",
        },
    )
)
