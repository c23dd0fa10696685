"""Response bodies: JSON via orjson (numpy arrays serialised natively) or ``.npy`` by Accept header.

A 1,000-tile page of 768-d float32 features is ~3 MB as ``.npy`` and ~8 MB as JSON; building
either must cost little next to sending it, hence orjson (no per-float Python objects) and a
single copy into a structured array for ``.npy``.

The ``.npy`` tile page is one structured array, so a single ``np.load`` (no pickle) gives both
halves: ``page["coords"]`` is int64 ``[n, 2]`` and ``page["features"]`` is ``[n, D]`` in the
file's dtype (float32 or float16).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
from fastapi import Response

from wsi_ssl.serve.errors import ApiError

JSON_MEDIA = "application/json"
NPY_MEDIA = "application/x-npy"
_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def _media_ranges(accept: str) -> list[tuple[str, float]]:
    ranges = []
    for part in accept.split(","):
        fields = [f.strip() for f in part.split(";")]
        media = fields[0].lower()
        if not media:
            continue
        q = 1.0
        for param in fields[1:]:
            if param.startswith("q="):
                try:
                    q = float(param[2:])
                except ValueError:
                    q = 0.0
        ranges.append((media, q))
    return ranges


def wants_npy(accept: str | None, npy_allowed: bool = True) -> bool:
    """True when the client prefers ``.npy``; a 406 when it accepts neither JSON nor ``.npy``."""
    if not accept:
        return False
    best_json = best_npy = 0.0
    for media, q in _media_ranges(accept):
        if media in (JSON_MEDIA, "application/*", "*/*"):
            best_json = max(best_json, q if media == JSON_MEDIA else q * 0.99)
        if npy_allowed and media in (NPY_MEDIA, "application/octet-stream"):
            best_npy = max(best_npy, q)
    if best_json == 0.0 and best_npy == 0.0:
        offered = f"{JSON_MEDIA} or {NPY_MEDIA}" if npy_allowed else JSON_MEDIA
        raise ApiError(406, f"cannot answer with any type in Accept: {accept!r}; this endpoint offers {offered}")
    return best_npy > best_json


def json_bytes(payload: Any) -> bytes:
    """JSON of plain values and numpy arrays (NaN/inf become null, as JSON has neither)."""
    return orjson.dumps(payload, option=_JSON_OPTIONS)


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json_bytes(payload), status_code=status, media_type=JSON_MEDIA, headers=headers)


def npy_buffer(dtype: np.dtype, length: int) -> tuple[bytearray, np.ndarray]:
    """A ``.npy`` file in memory for a 1-D array of ``length`` items, and that array as a view into it.

    Filling the view fills the file: the response body is written once, with no further copy
    (``np.save`` into a BytesIO and ``getvalue()`` would copy a 3 MB page twice more).
    """
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": (length,)}
    )
    head = header.getvalue()
    buf = bytearray(len(head) + length * dtype.itemsize)
    buf[: len(head)] = head
    return buf, np.frombuffer(buf, dtype=dtype, count=length, offset=len(head))


def npy_bytes(array: np.ndarray) -> bytes:
    """The array in NumPy's ``.npy`` format (what ``np.save`` writes, never pickled)."""
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


def npy_response(array: np.ndarray | bytearray, headers: dict[str, str] | None = None) -> Response:
    """An ``.npy`` response from an array, or from a buffer made by :func:`npy_buffer`."""
    body = memoryview(array) if isinstance(array, bytearray) else npy_bytes(array)
    return Response(body, media_type=NPY_MEDIA, headers=headers)


def tile_records(coords: np.ndarray, features: np.ndarray) -> bytearray:
    """Coords and features side by side as one structured ``.npy`` array (the tile page).

    Returns the whole ``.npy`` file; ``np.load`` of it gives records with fields ``coords``
    (int64 [2]) and ``features`` ([D], the file's dtype).
    """
    feats = np.ascontiguousarray(features, dtype=features.dtype.newbyteorder("<"))

    def fill(out: np.ndarray) -> None:
        out[:] = feats.view(np.uint8).reshape(len(feats), -1)

    return tile_records_filled(coords, features.dtype, int(features.shape[1]), fill)


def tile_records_filled(coords: np.ndarray, dtype: np.dtype, dim: int, fill: Callable[[np.ndarray], None]) -> bytearray:
    """The tile page with its features written by ``fill(out)`` into ``out``, the page's feature
    bytes as a (strided) uint8 ``[n, dim * itemsize]`` view: a reader that can copy straight from
    the file (serve/feature_rows.py) writes each feature byte once."""
    dtype = np.dtype([("coords", "<i8", (2,)), ("features", np.dtype(dtype).newbyteorder("<"), (dim,))])
    buf, records = npy_buffer(dtype, len(coords))
    # Copy as bytes, row by row: assigning to the structured fields directly goes through
    # numpy's per-element field transfer and costs ~3x the h5 read of the page.
    rows = records.view(np.uint8).reshape(len(coords), dtype.itemsize)
    rows[:, :16] = np.ascontiguousarray(coords, dtype="<i8").view(np.uint8).reshape(len(coords), 16)
    fill(rows[:, 16:])
    return buf
