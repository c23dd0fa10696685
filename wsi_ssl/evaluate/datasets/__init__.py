"""Labelled patch sets for ``wsi-ssl evaluate``: the common :class:`PatchSet` and the loaders."""

from wsi_ssl.evaluate.datasets.base import DatasetError, PatchSet, complete_splits
from wsi_ssl.evaluate.datasets.registry import dataset_kinds, load_dataset, register_dataset

__all__ = ["DatasetError", "PatchSet", "complete_splits", "dataset_kinds", "load_dataset", "register_dataset"]
