"""The pretraining methods by name: the values ``method:`` may take in a pretrain config.

Adding a method is one module in ``wsi_ssl/pretrain/methods/`` with a :class:`PretrainMethod`
subclass, one line in ``_BUILT_IN`` (or :func:`register_method` from outside the package), its
hyperparameter section in ``wsi_ssl/pretrain/config.py`` when it has any, and its test.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wsi_ssl.pretrain.lazy_registry import LazyRegistry

if TYPE_CHECKING:
    from wsi_ssl.pretrain.methods.base import PretrainMethod

_BUILT_IN = {
    "dino": "wsi_ssl.pretrain.methods.dino:DINOMethod",  # with its iBOT and KoLeo options
    "mae": "wsi_ssl.pretrain.methods.mae:MAEMethod",
}

METHODS: LazyRegistry[type[PretrainMethod]] = LazyRegistry("pretraining method", _BUILT_IN)


def register_method(name: str, target: str) -> None:
    """Make ``method: name`` mean the class at ``target`` (``"package.module:Class"``)."""
    METHODS.register(name, target)


def method_names() -> list[str]:
    return METHODS.names()


def get_method(name: str) -> type[PretrainMethod]:
    """The method class; a KeyError names the known methods."""
    return METHODS.get(name)
