"""HistAI: Hibou-B (DINOv2 ViT-B/14 with 4 registers and SwiGLU), published in the transformers format."""

from wsi_ssl.encoders.preset import EncoderPreset

PRESETS: list[EncoderPreset] = []  # this family's records, collected by the registry

PRESETS.append(
    EncoderPreset(
        name="hibou-b",
        repo_id="histai/hibou-b",
        revision="7fdc8cce365ebfd9e7e60ee6ee9a8d4d59388f3c",
        license="Apache-2.0",
        gated=False,
        builder="transformers",
        # The repository ships its own modeling code (trust_remote_code) for DINOv2 with registers;
        # transformers' built-in Dinov2WithRegistersModel is that architecture, so no remote code runs.
        arch="Dinov2WithRegistersModel",
        kwargs={
            "model_type": "dinov2_with_registers",
            "hidden_size": 768,
            "num_hidden_layers": 12,
            "num_attention_heads": 12,
            "mlp_ratio": 4,
            "use_swiglu_ffn": True,
            "num_register_tokens": 4,
            "patch_size": 14,
            "image_size": 224,
            "layer_norm_eps": 1e-6,
            "layerscale_value": 1.0,
            "qkv_bias": True,
        },
        timm_equivalent={
            "arch": "vit_base_patch14_reg4_dinov2",
            "checkpoint_filter": "hf_dinov2_to_timm",
            "kwargs": {
                "img_size": 224,
                "init_values": 1.0,
                "mlp_ratio": 5.33334,
                "mlp_layer": "SwiGLUPacked",
                "act_layer": "SiLU",
                "dynamic_img_size": True,
            },
        },
        embed_dim=768,
        params=86_000_000,
        mpp=0.5,
        pooling="cls",
        mean=(0.7068, 0.5755, 0.722),
        std=(0.195, 0.2316, 0.1816),
        sources={
            "kwargs": "hf.co/histai/hibou-b config.json (model_type dinov2 + auto_map to its Dinov2ModelWithRegisters; "
            "hidden 768, 12 layers, use_swiglu_ffn true, num_register_tokens 4, patch 14, image 224)",
            "params": "Nechaev et al. 2024 (arXiv 2406.05074): Hibou-B, ViT-B/14, 86M parameters",
            "embed_dim": "HistAI/hibou@c453bbe4:example.ipynb: hf_output.pooler_output (1, 768)",
            "pooling": "example.ipynb and TRIDENT (hibou-L): pooler_output, which for DINOv2 is the final-normed class token",
            "mean_std": "example.ipynb: Normalize([0.7068, 0.5755, 0.7220], [0.1950, 0.2316, 0.1816]), bicubic 224",
            "mpp": "slide2vec hibou settings: 0.5 um/px",
            "revision": "hf.co/histai/hibou-b tree at 7fdc8cce",
            "license": "card metadata: apache-2.0",
        },
    )
)
