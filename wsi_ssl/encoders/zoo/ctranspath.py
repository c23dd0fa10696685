"""CTransPath (Wang et al. 2022): Swin-T with a convolutional stem, SRCL-pretrained on TCGA and PAIP."""

from wsi_ssl.encoders.preset import EncoderPreset

PRESETS: list[EncoderPreset] = []  # this family's records, collected by the registry

TRIDENT = "mahmoodlab/TRIDENT@a91fa849:trident/patch_encoder_models/load.py"

PRESETS.append(
    EncoderPreset(
        name="ctranspath",
        repo_id="1aurent/swin_tiny_patch4_window7_224.CTransPath",
        revision="59c740e4ed91dda4ebe094b64e4cd2e015c31810",
        license="GPL-3.0 (non-commercial academic use, per TransPath)",
        gated=False,
        builder="timm",
        arch="swin_tiny_patch4_window7_224",
        kwargs={"embed_layer": "ConvStem"},
        embed_dim=768,
        params=27_520_038,
        mpp=1.0,
        pooling="mean_patch",
        checkpoint_filter="timm_swin",
        sources={
            "kwargs": "Xiyue-Wang/TransPath ctran.py: swin_tiny_patch4_window7_224(embed_layer=ConvStem), head removed; "
            f"{TRIDENT} CTransPathInferenceEncoder (same, strict except attention-mask buffers)",
            "params": "Swin-T with the ConvStem: 27.5M (TransPath README's ctranspath.pth); counted here headless",
            "embed_dim": "TransPath get_features.py: model.head = nn.Identity() -> 768",
            "pooling": "Swin's head: layer norm, then the mean over all spatial positions (no class token)",
            "mean_std": f"TransPath get_features.py and {TRIDENT}: ImageNet mean/std",
            "mpp": "Xiyue-Wang/TransPath README recommends 1.0 um/px (10x); TRIDENT runs ctranspath with '--mag 10'",
            "revision": "hf.co/1aurent/swin_tiny_patch4_window7_224.CTransPath at 59c740e4",
            "license": "Xiyue-Wang/TransPath LICENSE: GPL-3.0",
        },
        notes="The original ctranspath.pth (TransPath layout, downsampling at a stage's end) and the timm-layout "
        "conversion both load: timm's own Swin checkpoint converter renumbers the former.",
    )
)
