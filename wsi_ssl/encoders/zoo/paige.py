"""Paige: Virchow and Virchow2 (ViT-H/14, SwiGLU). Embedding = class token ++ mean of patch tokens."""

from wsi_ssl.encoders.preset import EncoderPreset

PRESETS: list[EncoderPreset] = []  # this family's records, collected by the registry

TRIDENT = "mahmoodlab/TRIDENT@a91fa849:trident/patch_encoder_models/load.py"
PINS = "CraigMyles/raw2features@079f8775:src/raw2features/embedders/registry.yaml (third-party pin)"
_VIT_H = {
    "img_size": 224,
    "init_values": 1e-5,
    "mlp_ratio": 5.3375,
    "global_pool": "",
    "dynamic_img_size": True,
    "mlp_layer": "SwiGLUPacked",
    "act_layer": "SiLU",
}

PRESETS.append(
    EncoderPreset(
        name="virchow",
        repo_id="paige-ai/Virchow",
        revision="19eebc84ae33e79f1b2d866e6ff90ae50e522f9a",
        license="Apache-2.0",
        gated=True,
        builder="timm",
        arch="vit_huge_patch14_224",
        kwargs=dict(_VIT_H),
        embed_dim=2560,
        params=632_000_000,
        mpp=0.5,
        pooling="cls+mean_patch",
        sources={
            "kwargs": "hf.co/paige-ai/Virchow config.json model_args (img_size 224, init_values 1e-5, mlp_ratio 5.3375, "
            "global_pool '', dynamic_img_size) + the card's mlp_layer=SwiGLUPacked, act_layer=SiLU; "
            f"{TRIDENT} VirchowInferenceEncoder",
            "params": "arXiv 2408.00738: Virchow and Virchow2 share the ViT-H/14 architecture, 632 million parameters",
            "embed_dim": "card: 'embedding = torch.cat([class_token, patch_tokens.mean(1)], dim=-1)  # size: 1 x 2560'",
            "pooling": "card: class_token = output[:, 0]; patch_tokens = output[:, 1:]; concatenated",
            "mean_std": "config.json pretrained_cfg: ImageNet mean/std (bicubic, crop_pct 1.0)",
            "mpp": "card: tiles at 0.5 microns per pixel (20x)",
            "revision": PINS,
            "license": "config.json pretrained_cfg.license 'Apache 2.0' plus the card's gated terms",
        },
    )
)

PRESETS.append(
    EncoderPreset(
        name="virchow2",
        repo_id="paige-ai/Virchow2",
        revision="3158645804b69e3f3bc4439d4116edddf0840a72",
        license="CC-BY-NC-ND-4.0",
        gated=True,
        builder="timm",
        arch="vit_huge_patch14_224",
        kwargs={**_VIT_H, "reg_tokens": 4},
        embed_dim=2560,
        params=632_000_000,
        mpp=0.5,
        pooling="cls+mean_patch",
        sources={
            "kwargs": "hf.co/paige-ai/Virchow2 config.json model_args (as Virchow plus reg_tokens 4); "
            f"{TRIDENT} Virchow2InferenceEncoder; kaiko-ai/eva:.../pathology/paige.py",
            "params": "arXiv 2408.00738 abstract: 'Virchow2, a 632 million parameter vision transformer'",
            "embed_dim": "card: 1 x 2560 (class token ++ mean of the 256 patch tokens)",
            "pooling": "card: class_token = output[:, 0]; patch_tokens = output[:, 5:]  # tokens 1-4 are registers",
            "mean_std": "config.json pretrained_cfg: ImageNet mean/std (bicubic, crop_pct 1.0)",
            "mpp": "card: mixed magnification (2.0/1.0/0.5/0.25 um/px); 0.5 (20x) is TRIDENT's and the usual choice",
            "revision": PINS,
            "license": "config.json pretrained_cfg.license 'CC-BY-NC-ND-4.0'",
        },
        notes="eva pools the class token only (1280-d); the card and TRIDENT use class token ++ patch mean (2560-d).",
    )
)
