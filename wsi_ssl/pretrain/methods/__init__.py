"""Pretraining methods, one module each, behind :class:`~wsi_ssl.pretrain.methods.base.PretrainMethod`.

- ``dino.py``: DINO self-distillation with an EMA teacher and multi-crop, with the KoLeo
  regulariser and iBOT's masked-patch loss as options (``dino.koleo_weight``, ``dino.ibot_weight``).
- ``mae.py``: masked autoencoding.
- ``registry.py``: the names a config's ``method:`` may take; how to add a method.

The losses and networks they are built from stay in their own modules one level up
(``pretrain/dino.py``, ``ibot.py``, ``koleo.py``, ``mae.py``, ``heads.py``). This package
imports nothing heavy, so validating a config does not load torch.
"""

from wsi_ssl.pretrain.methods.registry import get_method, method_names, register_method

__all__ = ["get_method", "method_names", "register_method"]
