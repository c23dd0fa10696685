"""The presets, one module per model family (as eva and timm arrange theirs).

Each family module holds a ``PRESETS`` list of records and imports nothing of the registry, which
collects them from the modules listed here. To add a model: append one ``EncoderPreset(...)`` to
its family's ``PRESETS`` (or add a module below), write the source of every number into
``sources``, and add its state-dict manifest under ``tests/encoders/manifests/``.
"""

from wsi_ssl.encoders.preset import EncoderPreset
from wsi_ssl.encoders.zoo import (
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

FAMILIES = (bioptimus, ctranspath, dinov2, gigapath, histai, kaiko, lunit, mahmood, owkin, paige)


def all_presets() -> list[EncoderPreset]:
    return [preset for family in FAMILIES for preset in family.PRESETS]
