"""wsi_ssl: a pathology foundation-model pipeline.

Four stages, each a `wsi-ssl` command, that meet only through files (see docs/contracts.md):
tile (slides -> zarr tile stores), pretrain (tile stores -> encoder dir),
embed (tile stores + encoder -> h5 feature cache), mil (feature cache + slide table -> models).
"""

__version__ = "0.1.0"
