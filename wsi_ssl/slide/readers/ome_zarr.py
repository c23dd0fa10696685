"""OME-Zarr (NGFF 0.4 and 0.5) images, read through zarr itself.

An OME-Zarr image is a zarr group whose ``multiscales`` metadata lists its pyramid (one array per
level) with named axes (``t``, ``c``, ``z``, ``y``, ``x``) and per-level scale transforms, whose
``y``/``x`` scales are the pixel size in the axis unit. Brightfield means a ``c`` axis of 3 (RGB)
or 1 (grey, shown as RGB); more channels are refused as fluorescence by ``sniff``. ``t`` and ``z``
are read at index 0. Reads slice only the chunks a region covers, so memory stays bounded.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from wsi_ssl.slide.readers.base import ReaderBase
from wsi_ssl.slide.readers.registry import register_reader
from wsi_ssl.slide.sniff import FileFacts, ome_multiscales

_UNIT_UM = {"micrometer": 1.0, "nanometer": 1e-3, "millimeter": 1e3, "centimeter": 1e4, "meter": 1e6}


@register_reader("ome-zarr")  # only for folders it claims, or when named
class OmeZarrReader(ReaderBase):
    """An OME-Zarr group (a ``*.zarr`` folder with ``multiscales`` metadata)."""

    _arrays: list[Any]
    _axes: list[str]
    _ms: dict[str, Any]

    @classmethod
    def claims(cls, facts: FileFacts) -> bool:
        return facts.format == "ome-zarr"

    def _open(self) -> None:
        import zarr

        ms = ome_multiscales(self.path)
        if ms is None:
            raise ValueError("not an OME-Zarr image (no multiscales metadata)")
        self._ms = ms
        self._axes = [a["name"] if isinstance(a, dict) else str(a) for a in ms.get("axes", ["t", "c", "z", "y", "x"])]
        if "x" not in self._axes or "y" not in self._axes:
            raise ValueError(f"OME-Zarr axes {self._axes} have no y/x")
        self._arrays = [zarr.open_array(str(self.path / d["path"]), mode="r") for d in ms["datasets"]]

    def _read_properties(self) -> dict[str, str]:
        return {"ome-zarr.version": str(self._ms.get("version", "")), "ome-zarr.axes": ",".join(self._axes)}

    def _vendor(self) -> str:
        return "ome-zarr"

    def _metadata_mpp(self) -> float | None:
        axes = self._ms.get("axes", [])
        unit = axes[self._axes.index("x")].get("unit", "micrometer") if axes and isinstance(axes[0], dict) else None
        for t in self._ms["datasets"][0].get("coordinateTransformations", []):
            if t.get("type") == "scale" and unit in _UNIT_UM:
                return float(t["scale"][self._axes.index("x")]) * _UNIT_UM[unit]
        return None

    def _level_geometry(self) -> list[tuple[tuple[int, int], float]]:
        ix, iy = self._axes.index("x"), self._axes.index("y")
        w0 = int(self._arrays[0].shape[ix])
        return [((int(a.shape[ix]), int(a.shape[iy])), w0 / int(a.shape[ix])) for a in self._arrays]

    def _read_raw(self, x0: int, y0: int, level: int, width: int, height: int) -> np.ndarray:
        arr = self._arrays[level]
        ds = self.levels[level].downsample
        lx, ly = int(round(x0 / ds)), int(round(y0 / ds))
        ix, iy = self._axes.index("x"), self._axes.index("y")
        out = np.full((height, width, 3), 255, np.uint8)  # outside the image is glass
        sx0, sy0 = max(lx, 0), max(ly, 0)
        sx1, sy1 = min(lx + width, int(arr.shape[ix])), min(ly + height, int(arr.shape[iy]))
        if sx1 <= sx0 or sy1 <= sy0:
            return out
        index: list[Any] = []
        for name in self._axes:
            index.append(slice(sy0, sy1) if name == "y" else slice(sx0, sx1) if name == "x" else slice(None))
            if name not in ("x", "y", "c"):
                index[-1] = 0
        block = np.asarray(arr[tuple(index)])
        kept = [a for a in self._axes if a in ("c", "y", "x")]
        block = np.moveaxis(block, [kept.index("y"), kept.index("x")], [0, 1])
        if block.ndim == 2:
            block = block[..., None]
        if block.shape[2] == 1:
            block = np.repeat(block, 3, axis=2)
        out[sy0 - ly : sy1 - ly, sx0 - lx : sx1 - lx] = block[..., :3].astype(np.uint8, copy=False)
        return out
