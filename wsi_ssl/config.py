"""Typed configs loaded from YAML, with command-line overrides.

Every stage declares its config as a pydantic model (``extra="forbid"``), so a typo in a key or
a value out of range stops the run *before* any work starts, with a message naming the key.
Precedence, lowest to highest: the model's defaults, the YAML file, ``--set key=value``
overrides, then dedicated CLI flags.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from wsi_ssl.resources import resolve_config_path

if TYPE_CHECKING:
    from wsi_ssl.storage.paths import AnyPath

T = TypeVar("T", bound=BaseModel)


class ConfigError(ValueError):
    """A config file or override that cannot be turned into a valid typed config."""


class StrictModel(BaseModel):
    """Base for every config section: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    node = tree
    parts = dotted.split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = {}
            node[part] = child
        if not isinstance(child, dict):
            raise ConfigError(f"override {dotted!r}: {part!r} is not a section")
        node = child
    node[parts[-1]] = value


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """Turn ``["a.b=1", "c=[1, 2]"]`` into a nested dict; values are parsed as YAML scalars/lists."""
    tree: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key=value (for example tissue.min_area_um2=5000)")
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key:
            raise ConfigError(f"override {item!r} has an empty key")
        _set_dotted(tree, key, yaml.safe_load(raw) if raw.strip() else None)
    return tree


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML mapping; ``configs/...`` and ``pipelines/...`` fall back to the packaged copies."""
    path = resolve_config_path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys, got {type(data).__name__}")
    return data


def format_validation_error(exc: ValidationError, source: str) -> str:
    lines = [f"invalid config ({source}):"]
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "<root>"
        got = err.get("input")
        got_txt = "" if isinstance(got, dict) else f" (got {got!r})"
        lines.append(f"  {key}: {err['msg']}{got_txt}")
    return "\n".join(lines)


def load_config(
    model: type[T],
    path: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    flags: Mapping[str, Any] | None = None,
) -> T:
    """Build a validated config: defaults <- YAML file <- overrides <- flags (None flags are ignored).

    ``flags`` maps dotted keys to values from dedicated CLI options; a flag left at None means
    "not given" and does not override the file.
    """
    data: dict[str, Any] = read_yaml(path) if path else {}
    data = _merge(data, dict(overrides or {}))
    flag_tree: dict[str, Any] = {}
    for key, value in (flags or {}).items():
        if value is not None:
            _set_dotted(flag_tree, key, value)
    data = _merge(data, flag_tree)
    source = str(path) if path else "defaults"
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from None


def dump_config(cfg: BaseModel, path: str | AnyPath) -> None:
    """Write the resolved config next to a run's outputs, so a run says exactly what it did."""
    from wsi_ssl.storage.paths import as_path  # a run's folder may be an object-storage URL

    as_path(path).write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
