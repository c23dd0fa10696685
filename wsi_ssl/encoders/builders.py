"""Presets -> models: a registry of builders (timm, transformers) with one interface each.

``build_backbone`` makes the architecture only (random weights, or on the ``meta`` device for
counting parameters at no cost); ``load_preset`` finds the weights on local disk, loads them
strictly (a missing or misshapen key is an error, never a silent partial load) and wraps the
backbone with the preset's pooling.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from wsi_ssl.encoders.model import PooledEncoder
from wsi_ssl.encoders.preset import EncoderPreset
from wsi_ssl.encoders.timm_layers import resolve_timm_kwargs
from wsi_ssl.encoders.weights import WeightsSource, find_weights
from wsi_ssl.stores.encoder_dir import EncoderConfig, EncoderError, read_state_dict

StateFilter = Callable[[dict[str, torch.Tensor], nn.Module], dict[str, torch.Tensor]]
# Upstream key layouts that differ from the model timm builds: name -> "module:function" of the
# converter the architecture's own library ships (presets name one; imported when used).
CHECKPOINT_FILTERS: dict[str, str] = {
    # Swin checkpoints of the original layout (downsample at a stage's end, attention-mask buffers),
    # as TransPath saved CTransPath; timm's own converter, a no-op on timm-layout checkpoints.
    "timm_swin": "timm.models.swin_transformer:checkpoint_filter_fn",
    # DINOv2-family checkpoints in transformers' layout, as the timm model of the same computation.
    "hf_dinov2_to_timm": "wsi_ssl.encoders.convert:dinov2_hf_to_timm",
}


def checkpoint_filter(name: str) -> StateFilter:
    import importlib

    module, _, fn = CHECKPOINT_FILTERS[name].partition(":")
    return getattr(importlib.import_module(module), fn)  # type: ignore[no-any-return]


TRANSFORMERS_EXTRA = "pip install 'wsi_ssl[transformers]'"


class Builder(Protocol):
    """How one family of checkpoints becomes a backbone: build it, count its prefix tokens, load it."""

    def build(self, preset: EncoderPreset, config_json: Path | None = None) -> nn.Module: ...
    def num_prefix_tokens(self, backbone: nn.Module) -> int: ...
    def load(self, preset: EncoderPreset, source: WeightsSource) -> nn.Module: ...


class TimmBuilder:
    """timm architectures; the checkpoint is the timm state dict (as timm's hub loader expects)."""

    def build(self, preset: EncoderPreset, config_json: Path | None = None, skip_init: bool = False) -> nn.Module:
        import timm

        kwargs = resolve_timm_kwargs(preset.kwargs)
        if skip_init:  # weights are loaded right after; a ViT-B's random init alone costs ~1 s on a CPU
            try:
                return timm.create_model(preset.arch, pretrained=False, num_classes=0, weight_init="skip", **kwargs)
            except TypeError:
                pass  # an architecture without the switch (Swin): built the ordinary way
        try:
            return timm.create_model(preset.arch, pretrained=False, num_classes=0, **kwargs)
        except Exception as exc:  # unknown arch or kwargs in this timm version
            raise EncoderError(f"preset {preset.name}: timm cannot build {preset.arch!r}: {exc}") from None

    def num_prefix_tokens(self, backbone: nn.Module) -> int:
        return int(getattr(backbone, "num_prefix_tokens", 0))

    def load(self, preset: EncoderPreset, source: WeightsSource) -> nn.Module:
        backbone = self.build(preset, skip_init=True)
        load_backbone_state(backbone, read_checkpoint(source), preset, ", ".join(str(f) for f in source.files))
        return backbone


class ModuleBuilder(TimmBuilder):
    """A model class of our own (``arch`` = ``"package.module:Class"``) that pools by itself (CONCH v1.5)."""

    def build(self, preset: EncoderPreset, config_json: Path | None = None, skip_init: bool = False) -> nn.Module:
        import importlib

        module_name, _, class_name = preset.arch.partition(":")
        cls = getattr(importlib.import_module(module_name), class_name)
        return cls(**preset.kwargs)


class TransformersBuilder:
    """Models published in the transformers format, loaded with transformers' own ``from_pretrained``.

    Going through ``from_pretrained`` (never a hand-made key mapping) keeps the checkpoint's own key
    names working across transformers versions, which rename modules and convert old checkpoints
    on load. ``preset.kwargs`` holds the architecture fields of the published ``config.json``;
    when that file sits beside the weights it is used, after checking it describes this model.
    """

    def config(self, preset: EncoderPreset, config_json: Path | None = None) -> Any:
        transformers = import_transformers(preset.name)
        fields = {k: v for k, v in preset.kwargs.items() if k not in ("model_type", "init_kwargs")}
        if config_json is not None:
            published = json.loads(config_json.read_text())
            differ = {
                k: (v, published[k])
                for k, v in fields.items()
                if k in IDENTITY_FIELDS and k in published and published[k] != v
            }
            if differ:
                raise EncoderError(
                    f"preset {preset.name}: {config_json} does not describe this model; "
                    f"(preset, file) differ in {differ}"
                )
            known = transformers.AutoConfig.for_model(preset.kwargs["model_type"]).to_dict()
            fields = {**{k: v for k, v in published.items() if k in known and k not in NOT_COPIED}, **fields}
        return transformers.AutoConfig.for_model(preset.kwargs["model_type"], **fields)

    def build(self, preset: EncoderPreset, config_json: Path | None = None) -> nn.Module:
        transformers = import_transformers(preset.name)
        init_kwargs = dict(preset.kwargs.get("init_kwargs", {}))
        return getattr(transformers, preset.arch)(self.config(preset, config_json), **init_kwargs)

    def num_prefix_tokens(self, backbone: nn.Module) -> int:
        config = backbone.config  # type: ignore[attr-defined]
        return 1 + int(getattr(config, "num_register_tokens", 0) or 0)

    def load(self, preset: EncoderPreset, source: WeightsSource) -> nn.Module:
        import tempfile

        transformers = import_transformers(preset.name)
        cls = getattr(transformers, preset.arch)
        init_kwargs = dict(preset.kwargs.get("init_kwargs", {}))
        with tempfile.TemporaryDirectory(prefix="wsi_ssl_weights_") as tmp:
            folder = _checkpoint_folder(source, Path(tmp))
            try:
                model, info = cls.from_pretrained(
                    str(folder),
                    config=self.config(preset, source.config_json),
                    local_files_only=True,
                    output_loading_info=True,
                    **init_kwargs,
                )
            except (OSError, ValueError, RuntimeError) as exc:
                raise EncoderError(f"preset {preset.name}: transformers cannot load {folder}: {exc}") from None
        problems = {what: info.get(what) for what in ("missing_keys", "mismatched_keys") if info.get(what)}
        if problems:
            raise EncoderError(
                f"preset {preset.name}: {', '.join(str(f) for f in source.files)} does not fit "
                f"{preset.arch}: {problems}"
            )
        return model


# Fields that say which model a config.json describes; any other field is taken from the file.
IDENTITY_FIELDS = (
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "patch_size",
    "use_swiglu_ffn",
    "num_register_tokens",
    "mlp_ratio",
    "intermediate_size",
)
NOT_COPIED = (
    "architectures",
    "auto_map",
    "model_type",
    "transformers_version",
    "torch_dtype",
    "dtype",
    "_name_or_path",
)
BUILDERS: dict[str, Builder] = {"timm": TimmBuilder(), "transformers": TransformersBuilder(), "module": ModuleBuilder()}


def _checkpoint_folder(source: WeightsSource, tmp: Path) -> Path:
    """A folder ``from_pretrained`` reads: the weights' own, or links named as transformers expects."""
    parent = source.files[0].parent
    standard = {"model.safetensors", "pytorch_model.bin"}
    if len(source.files) > 1 or source.files[0].name in standard:
        return parent
    suffix = ".safetensors" if source.files[0].suffix == ".safetensors" else ".bin"
    (tmp / ("model.safetensors" if suffix == ".safetensors" else "pytorch_model.bin")).symlink_to(
        source.files[0].resolve()
    )
    return tmp


def import_transformers(preset_name: str) -> Any:
    try:
        import transformers
    except ImportError:
        raise EncoderError(
            f"preset {preset_name} is published in the Hugging Face transformers format, which is "
            f"not installed; install the optional extra: {TRANSFORMERS_EXTRA}"
        ) from None
    transformers.logging.set_verbosity_error()  # its load reports are checked here, not printed
    transformers.utils.logging.disable_progress_bar()
    return transformers


def build_backbone(
    preset: EncoderPreset, device: str | torch.device = "cpu", config_json: Path | None = None
) -> nn.Module:
    """The preset's architecture with random weights; ``device="meta"`` allocates nothing."""
    with torch.device(device):
        return BUILDERS[preset.builder].build(preset, config_json)


def wrap(backbone: nn.Module, preset: EncoderPreset) -> PooledEncoder:
    return PooledEncoder(backbone, preset.builder, preset.pooling, BUILDERS[preset.builder].num_prefix_tokens(backbone))


def build_encoder(
    preset: EncoderPreset, device: str | torch.device = "cpu", config_json: Path | None = None
) -> PooledEncoder:
    return wrap(build_backbone(preset, device, config_json), preset)


def load_preset(preset: EncoderPreset, weights: str | Path | None = None) -> tuple[PooledEncoder, EncoderConfig]:
    """The preset with its weights from ``weights`` (file or folder) or the HF cache, in eval mode."""
    source = find_weights(preset, weights)
    backbone = BUILDERS[preset.builder].load(preset, source)
    return wrap(backbone, preset).eval(), preset_config(preset, source)


def read_checkpoint(source: WeightsSource) -> dict[str, torch.Tensor]:
    state: dict[str, torch.Tensor] = {}
    for path in source.files:
        state.update(read_state_dict(path))
    return state


def load_backbone_state(backbone: nn.Module, state: dict[str, torch.Tensor], preset: EncoderPreset, where: str) -> None:
    """Strict load: every backbone key present with its shape; a classifier head may be left over."""
    if preset.checkpoint_filter:
        state = checkpoint_filter(preset.checkpoint_filter)(state, backbone)
    own = backbone.state_dict()
    wrong = [
        f"{k}: {tuple(v.shape)} in the file, {tuple(own[k].shape)} in the model"
        for k, v in state.items()
        if k in own and tuple(v.shape) != tuple(own[k].shape)
    ]
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own and not k.startswith(("head.", "fc.", "classifier."))]
    if wrong or missing or unexpected:
        raise EncoderError(
            f"preset {preset.name}: {where} does not fit {preset.arch}: "
            + "; ".join(
                f"{what} {items[:4]}{' ...' if len(items) > 4 else ''}"
                for what, items in (("misshapen", wrong), ("missing", missing), ("unexpected", unexpected))
                if items
            )
        )
    backbone.load_state_dict({k: v for k, v in state.items() if k in own}, strict=True)


def preset_config(preset: EncoderPreset, source: WeightsSource | None = None) -> EncoderConfig:
    """The Contract 2 config of a preset, so feature files and the API record which model made them."""
    return EncoderConfig(
        arch=preset.arch,
        model_kwargs=dict(preset.kwargs),
        embed_dim=preset.embed_dim,
        input_size=preset.input_size,
        mean=preset.mean,
        std=preset.std,
        mpp=preset.mpp,
        method="preset",
        sha256=source.sha256() if source is not None else "",
        name=preset.name,
        builder=preset.builder,
        pooling=preset.pooling,
        preset=preset.name,
        revision=(source.revision if source is not None and source.revision else preset.revision) or "",
        source=preset.repo_id,
    )


def backbone_from_config(config: EncoderConfig) -> nn.Module:
    """The backbone an encoder config (Contract 2) describes, random weights, for any builder."""
    if config.builder == "timm":
        from wsi_ssl.encoders.timm_build import build_timm_model

        return build_timm_model(config)
    if config.builder not in BUILDERS:
        raise EncoderError(f"unknown builder {config.builder!r} in the encoder config; known: {', '.join(BUILDERS)}")
    # Presets and configs carry the same three facts (builder, arch, kwargs): build through the preset path.
    stand_in = EncoderPreset(
        name=config.name or config.arch,
        repo_id="",
        license="",
        gated=False,
        builder=config.builder,  # type: ignore[arg-type]
        arch=config.arch,
        embed_dim=config.embed_dim,
        params=0,
        mpp=config.mpp,
        pooling=config.pooling or "cls",
        sources={k: "encoder dir config.json" for k in ("params", "embed_dim", "mpp", "pooling", "mean_std")},
        kwargs=dict(config.model_kwargs),
    )
    return BUILDERS[config.builder].build(stand_in)


def encoder_from_config(config: EncoderConfig, backbone: nn.Module) -> nn.Module:
    """The backbone with the config's pooling (a timm model without one pools with its own head)."""
    if not config.pooling:
        return backbone
    return PooledEncoder(backbone, config.builder, config.pooling, BUILDERS[config.builder].num_prefix_tokens(backbone))
