"""The presets, one module per model family (as eva and timm arrange theirs).

Importing this package registers every preset. To add a model: add one ``register(EncoderPreset(...))``
to its family's module (or a new module listed below), write the source of every number into
``sources``, and add its state-dict manifest under ``tests/encoders/manifests/``.
"""

from wsi_ssl.encoders.zoo import (  # noqa: F401  (imported for their register() calls)
    bioptimus,
    ctranspath,
    dinov2,
    gigapath,
    histai,
    kaiko,
    lunit,
    mahmood,
    owkin,
    paige,
)
