"""Bioptimus: H-optimus-0 and H-optimus-1 (ViT-g/14, 4 registers), H0-mini (ViT-B/14 distilled)."""

from wsi_ssl.encoders.preset import EncoderPreset

PRESETS: list[EncoderPreset] = []  # this family's records, collected by the registry

TRIDENT = "mahmoodlab/TRIDENT@a91fa849:trident/patch_encoder_models/load.py"
PINS = "CraigMyles/raw2features@079f8775:src/raw2features/embedders/registry.yaml (third-party pin)"
MEAN = (0.707223, 0.578729, 0.703617)
STD = (0.211883, 0.230117, 0.177517)
_CARD_STATS = "card: transforms.Normalize(mean=(0.707223, 0.578729, 0.703617), std=(0.211883, 0.230117, 0.177517))"
_GIANT = {"img_size": 224, "init_values": 1e-5, "dynamic_img_size": False, "global_pool": "token"}

PRESETS.append(
    EncoderPreset(
        name="h-optimus-0",
        repo_id="bioptimus/H-optimus-0",
        revision="b145cc1e6c6b30d3251aa8b1f844e6974188a743",
        license="Apache-2.0",
        gated=True,
        builder="timm",
        arch="vit_giant_patch14_reg4_dinov2",
        kwargs=dict(_GIANT),
        embed_dim=1536,
        params=1_130_000_000,
        mpp=0.5,
        pooling="cls",
        mean=MEAN,
        std=STD,
        weights_files=("pytorch_model.bin",),
        sources={
            "kwargs": "card: timm.create_model('hf-hub:bioptimus/H-optimus-0', init_values=1e-5, dynamic_img_size=False); "
            f"config.json architecture vit_giant_patch14_reg4_dinov2, global_pool 'token'; {TRIDENT}",
            "params": "card: 'a 1.1B parameter vision transformer' (rounded); bioptimus/releases README: g/14, 4 registers, "
            "40 blocks, 1536 wide, which is 1.13B (the figure Prov-GigaPath gives for the same trunk)",
            "embed_dim": "card: assert features.shape == (1, 1536)",
            "pooling": "card: features = model(x), timm's class token after the final norm",
            "mean_std": _CARD_STATS,
            "mpp": "card: 224x224 tiles extracted at 0.5 um/px",
            "revision": PINS,
            "license": "card metadata 'license: apache-2.0' (access form accepted on the Hub)",
        },
    )
)

PRESETS.append(
    EncoderPreset(
        name="h-optimus-1",
        repo_id="bioptimus/H-optimus-1",
        revision="3592cb220dec7a150c5d7813fb56e68bd57473b9",
        license="CC-BY-NC-ND-4.0",
        gated=True,
        builder="timm",
        arch="vit_giant_patch14_reg4_dinov2",
        kwargs=dict(_GIANT),
        embed_dim=1536,
        params=1_130_000_000,
        mpp=0.5,
        pooling="cls",
        mean=MEAN,
        std=STD,
        sources={
            "kwargs": f"card (same call as H-optimus-0); {TRIDENT} HOptimus1InferenceEncoder",
            "params": "card: 'ViT-g/14, 1.1B' (rounded); the 4,539,151,464-byte float32 file holds 1.135B values",
            "embed_dim": "card: features of shape (1, 1536)",
            "pooling": "card: model(x), class token after the final norm",
            "mean_std": _CARD_STATS + " (same statistics as H-optimus-0)",
            "mpp": "card: 224x224 tiles at 0.5 um/px",
            "revision": PINS,
            "license": f"{PINS}: CC-BY-NC-ND-4.0, non-commercial; access by manual approval",
        },
    )
)

PRESETS.append(
    EncoderPreset(
        name="h0-mini",
        repo_id="bioptimus/H0-mini",
        revision="5b5cc0505d19ae558270045eb0df8c34df4d9609",
        license="CC-BY-NC-ND-4.0",
        gated=True,
        builder="timm",
        arch="vit_base_patch14_reg4_dinov2",
        kwargs={
            "img_size": 224,
            "init_values": 1e-5,
            "reg_tokens": 4,
            "mlp_ratio": 5.33334,
            "global_pool": "",
            "dynamic_img_size": True,
            "mlp_layer": "SwiGLUPacked",
            "act_layer": "SiLU",
        },
        embed_dim=768,
        params=86_000_000,
        mpp=0.5,
        pooling="cls",
        mean=MEAN,
        std=STD,
        sources={
            "kwargs": "config.json model_args (vit_base_patch14_reg4_dinov2, mlp_ratio 5.33334, reg_tokens 4, global_pool '') "
            "+ card's mlp_layer=SwiGLUPacked, act_layer=SiLU; the 343 MB float32 file fits 85.7M parameters",
            "params": "arXiv 2501.16239: 'an 86M-parameter ViT-B/14 distilled from H-optimus-0'",
            "embed_dim": "card: 'cls_features = output[:, 0]  # (1, 768)'",
            "pooling": f"card shows both the class token (768) and class ++ patch mean (1536); {TRIDENT} and eva default "
            "to the class token, which this preset uses",
            "mean_std": "config.json pretrained_cfg: the H-optimus statistics",
            "mpp": "TRIDENT README '--patch_size 224 --mag 20'; clemsgrs/slide2vec hoptimus.py supported_spacing_um=0.5",
            "revision": PINS,
            "license": f"{PINS}: CC-BY-NC-ND-4.0, gated",
        },
    )
)
