"""GeoJSON FeatureCollections in QuPath's object conventions (QuPath 0.4+ reads and writes them).

QuPath turns each Feature into an object by ``properties.objectType`` (``"annotation"``,
``"detection"``, ``"tile"``, ``"cell"``), takes its class from ``properties.classification``
(``{"name", "color": [r, g, b]}``) and its measurements from ``properties.measurements`` (a
name -> number map, shown in the measurement table and usable by *Measure > Show measurement
maps* to colour detections as a heatmap). A Feature's ``id`` is a UUID. Geometries are in
full-resolution pixels with the origin at the top-left, i.e. our level-0 coordinates.

Here: tissue and ink masks become annotation polygons (outer ring plus holes, from OpenCV's
two-level contour hierarchy), and kept tiles become square detection polygons carrying their
measurements. JSON numbers must be finite: a NaN measurement (a tile without a score) is left out.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np

TISSUE_COLOR = (0, 160, 60)
INK_COLOR = (30, 60, 220)
TILE_COLOR = (255, 200, 0)


def _feature(geometry: dict[str, Any], properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "Feature", "id": str(uuid.uuid4()), "geometry": geometry, "properties": properties}


def _classification(name: str, color: tuple[int, int, int]) -> dict[str, Any]:
    return {"name": name, "color": list(color)}


def _ring(points: np.ndarray, scale: float, width: int, height: int) -> list[list[float]] | None:
    """A closed ring in level-0 pixels from contour points (mask pixel centres), or None if
    degenerate."""
    pts = (points.reshape(-1, 2).astype(np.float64) + 0.5) * scale
    pts[:, 0] = np.clip(pts[:, 0], 0, width)
    pts[:, 1] = np.clip(pts[:, 1], 0, height)
    if len(pts) < 3:
        return None
    ring = [[round(float(x), 1), round(float(y), 1)] for x, y in pts]
    ring.append(ring[0])
    return ring


def mask_polygons(mask: np.ndarray, scale: float, width: int, height: int) -> list[list[list[list[float]]]]:
    """Polygons (outer ring, then holes) of a boolean mask; ``scale``: level-0 px per mask px."""
    if not mask.any():
        return []
    contours, hierarchy = cv2.findContours(mask.astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    polygons: list[list[list[list[float]]]] = []
    if hierarchy is None:
        return polygons
    tree = hierarchy[0]
    for i, contour in enumerate(contours):
        if tree[i][3] != -1:  # a hole: added with its parent
            continue
        outer = _ring(contour, scale, width, height)
        if outer is None:
            continue
        rings = [outer]
        child = tree[i][2]
        while child != -1:
            hole = _ring(contours[child], scale, width, height)
            if hole is not None:
                rings.append(hole)
            child = tree[child][0]
        polygons.append(rings)
    return polygons


def mask_annotations(
    mask: np.ndarray, scale: float, width: int, height: int, name: str, color: tuple[int, int, int]
) -> list[dict[str, Any]]:
    """One locked annotation per connected piece of ``mask``, classified ``name``."""
    return [
        _feature(
            {"type": "Polygon", "coordinates": rings},
            {"objectType": "annotation", "classification": _classification(name, color), "isLocked": True},
        )
        for rings in mask_polygons(mask, scale, width, height)
    ]


def tile_detections(
    coords: np.ndarray, extent: float, measurements: Mapping[str, np.ndarray], name: str = "Tile"
) -> list[dict[str, Any]]:
    """A square detection per tile (top-left ``coords`` [N, 2] and edge ``extent``, level-0 px)
    with its row of every measurement array."""
    columns = {k: np.asarray(v, dtype=np.float64) for k, v in measurements.items()}
    out = []
    for i, (x, y) in enumerate(np.asarray(coords, dtype=np.float64)):
        x1, y1 = x + extent, y + extent
        ring = [[x, y], [x1, y], [x1, y1], [x, y1], [x, y]]
        values = {k: float(v[i]) for k, v in columns.items() if math.isfinite(v[i])}
        props = {
            "objectType": "detection",
            "classification": _classification(name, TILE_COLOR),
            "measurements": values,
        }
        out.append(_feature({"type": "Polygon", "coordinates": [[[float(a), float(b)] for a, b in ring]]}, props))
    return out


def feature_collection(features: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": features}
