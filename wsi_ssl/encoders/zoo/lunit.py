"""Lunit: DINO ViT-S/8 from "Benchmarking self-supervised learning on diverse pathology datasets"."""

from wsi_ssl.encoders.preset import EncoderPreset

PRESETS: list[EncoderPreset] = []  # this family's records, collected by the registry

TRIDENT = "mahmoodlab/TRIDENT@a91fa849:trident/patch_encoder_models/load.py"

PRESETS.append(
    EncoderPreset(
        name="lunit-vits8",
        repo_id="1aurent/vit_small_patch8_224.lunit_dino",
        revision="c23bc01cfbe022bc1f2a8a9306125a07818e4eb4",
        license="Lunit non-commercial licence (card: other, lunit-non-commercial)",
        gated=False,
        builder="timm",
        arch="vit_small_patch8_224",
        kwargs={"img_size": 224, "dynamic_img_size": True},
        embed_dim=384,
        params=21_670_272,
        mpp=0.5,
        pooling="cls",
        mean=(0.70322989, 0.53606487, 0.66096631),
        std=(0.21716536, 0.26081574, 0.20723464),
        sources={
            "weights": "Lunit's own release is dino_vit_small_patch8_ep200.torch (a plain timm state dict, loads the same)",
            "kwargs": f"{TRIDENT} LunitS8InferenceEncoder: vit_small_patch8_224, img_size 224, dynamic_img_size",
            "params": "Kang et al. 2023 (CVPR): ViT-S/8; 21,670,272 is that timm architecture's count",
            "embed_dim": "timm card of 1aurent/vit_small_patch8_224.lunit_dino: num_features 384",
            "pooling": "timm forward, num_classes=0: the class token (the DINO linear-eval feature)",
            "revision": "hf.co/1aurent/vit_small_patch8_224.lunit_dino main at c23bc01c",
            "mean_std": "kaiko-ai/eva pathology/lunit.py and lunit-io/benchmark-ssl-pathology: the Lunit statistics (0.70322989, 0.53606487, 0.66096631) / "
            "(0.21716536, 0.26081574, 0.20723464), ",
            "mpp": "TRIDENT README: lunit-vits8 at 20x (0.5 um/px); pretrained on 20x and 40x TCGA tiles",
            "license": "card: non-commercial (Lunit's licence)",
        },
    )
)
