"""Cached slides: list, metadata, slide-level embedding, and paginated tile embeddings."""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from wsi_ssl.serve.auth import SECURED, caller
from wsi_ssl.serve.catalog import SlideHandle
from wsi_ssl.serve.config import MAX_PAGE_LIMIT, MAX_SLIDE_ID, LimitsConfig
from wsi_ssl.serve.deps import API_PREFIX, ServeState, get_state, open_slide, read_slide, visible_cohort
from wsi_ssl.serve.encoding import (
    JSON_MEDIA,
    NPY_MEDIA,
    json_bytes,
    json_response,
    npy_response,
    tile_records_filled,
    wants_npy,
)
from wsi_ssl.serve.errors import ApiError, ErrorBody
from wsi_ssl.serve.keys import ApiKey
from wsi_ssl.serve.models import ModelInputError
from wsi_ssl.serve.schemas import SlideEmbedding, SlideList, SlideMeta, TilePage

router = APIRouter(tags=["slides"])

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "bad pagination"},
    401: {"model": ErrorBody, "description": "missing or invalid API key"},
    404: {"model": ErrorBody, "description": "no such slide or cohort (or not visible to this key)"},
    406: {"model": ErrorBody, "description": "the Accept header allows no offered type"},
    422: {"model": ErrorBody, "description": "a parameter of the wrong type or range"},
    503: {"model": ErrorBody, "description": "the slide's feature file is being written: retry after Retry-After"},
}
CohortParam = Path(description="cohort name", max_length=128)
SlideParam = Path(
    description=f"slide id (the feature file's stem; at most {MAX_SLIDE_ID} characters, as '<id>.h5' must fit "
    "a 255-byte file name)",
    max_length=MAX_SLIDE_ID,
)
OffsetParam = Query(0, ge=0, le=2**31 - 1, description="index of the first item")
LimitParam = Query(None, ge=1, le=MAX_PAGE_LIMIT, description="page size (server default when omitted)")


def page_bounds(
    offset: int, limit: int | None, total: int, limits: LimitsConfig, what: str
) -> tuple[int, int, int, int | None]:
    """(start, stop, limit, next_offset) of a page, or a 400 naming the bad parameter."""
    limit = limits.default_page_size if limit is None else limit
    if limit > limits.max_page_size:
        raise ApiError(400, f"limit {limit} exceeds this server's maximum page size of {limits.max_page_size} {what}")
    if offset > total:
        raise ApiError(400, f"offset {offset} is past the end: there are {total} {what}")
    stop = min(offset + limit, total)
    return offset, stop, limit, (stop if stop < total else None)


@router.get(
    API_PREFIX + "/cohorts/{cohort}/slides",
    response_model=SlideList,
    responses=ERRORS,
    summary="Slides of a cohort (paginated)",
    openapi_extra=SECURED,
)
def list_slides(
    request: Request,
    cohort: str = CohortParam,
    offset: int = OffsetParam,
    limit: int | None = LimitParam,
) -> object:
    key = caller(request)
    state = get_state(request)
    visible_cohort(state, key, cohort)
    ids = state.catalog.slide_ids(cohort)
    start, stop, limit, nxt = page_bounds(offset, limit, len(ids), state.config.limits, "slides")
    return json_response(
        {
            "cohort": cohort,
            "offset": start,
            "limit": limit,
            "total": len(ids),
            "next_offset": nxt,
            "slides": ids[start:stop],
        }
    )


def _meta(handle: SlideHandle) -> dict[str, Any]:
    attrs = handle.attrs
    mpp, tile_size = attrs.get("mpp"), attrs.get("tile_size")
    return {
        "cohort": handle.cohort,
        "slide_id": handle.slide_id,
        "n_tiles": handle.n_tiles,
        "dim": handle.dim,
        "dtype": handle.dtype,
        "encoder": str(attrs["encoder"]) if attrs.get("encoder") not in (None, "") else None,
        "encoder_sha256": str(attrs["encoder_sha256"]) if attrs.get("encoder_sha256") not in (None, "") else None,
        "mpp": float(mpp) if isinstance(mpp, (int, float)) and not isinstance(mpp, bool) else None,
        "tile_size": int(tile_size)
        if isinstance(tile_size, (int, float)) and not isinstance(tile_size, bool)
        else None,
        "attrs": attrs,
    }


async def _handle(state: ServeState, key: ApiKey, cohort: str, slide_id: str) -> SlideHandle:
    """The slide's handle: from the cache on the event loop, else opened in a worker thread."""
    if key.sees(cohort):
        handle = state.catalog.peek(cohort, slide_id)
        if handle is not None:
            return handle
    return await run_in_threadpool(open_slide, state, key, cohort, slide_id)


@router.get(
    API_PREFIX + "/cohorts/{cohort}/slides/{slide_id}",
    response_model=SlideMeta,
    responses=ERRORS,
    summary="One slide's metadata",
    openapi_extra=SECURED,
)
async def slide_meta(
    request: Request,
    cohort: str = CohortParam,
    slide_id: str = SlideParam,
) -> object:
    key = caller(request)
    handle = await _handle(get_state(request), key, cohort, slide_id)
    return json_response(_meta(handle))


def _embedding_body(state: ServeState, handle: SlideHandle) -> bytes:
    """The embedding response, computed once per file version (reads every tile once)."""
    aggregator = None
    model = state.embedding_model()
    if model is not None and handle.n_tiles > 0:
        try:
            outputs = model.predict(handle.features(0, handle.n_tiles), handle.attrs.get("encoder_sha256") or None)
        except ModelInputError:
            outputs = {}  # the slide does not fit the aggregator; the mean is still served
        if "embedding" in outputs:
            aggregator = {"model": model.name, "embedding": outputs["embedding"]}
    mean = handle.mean_embedding()
    body = {
        "cohort": handle.cohort,
        "slide_id": handle.slide_id,
        "n_tiles": handle.n_tiles,
        "dim": handle.dim,
        "mean": mean,
        "aggregator": aggregator,
    }
    return json_bytes(body)


@router.get(
    API_PREFIX + "/cohorts/{cohort}/slides/{slide_id}/embedding",
    response_model=SlideEmbedding,
    responses=ERRORS,
    summary="Slide-level embedding: mean of tiles, and the aggregator's where a model is loaded",
    openapi_extra=SECURED,
)
async def slide_embedding(
    request: Request,
    cohort: str = CohortParam,
    slide_id: str = SlideParam,
) -> object:
    key = caller(request)
    state = get_state(request)
    handle = await _handle(state, key, cohort, slide_id)
    body = handle.cached("embedding_json")
    if body is None:
        body = await run_in_threadpool(
            read_slide,
            state,
            key,
            cohort,
            slide_id,
            lambda h: h.derived("embedding_json", lambda h2: _embedding_body(state, h2)),
        )
    return Response(body, media_type=JSON_MEDIA)


@router.get(
    API_PREFIX + "/cohorts/{cohort}/slides/{slide_id}/tiles",
    response_model=TilePage,
    responses={
        **ERRORS,
        200: {
            "description": f"a page of tiles: JSON, or with `Accept: {NPY_MEDIA}` one structured .npy array "
            "with fields `coords` (int64 [2]) and `features` ([D]); pagination in X-Total-Count, X-Offset, X-Next-Offset",
            "content": {NPY_MEDIA: {"schema": {"type": "string", "format": "binary"}}},
        },
    },
    summary="Tile embeddings with coordinates (paginated; JSON or .npy by Accept)",
    openapi_extra=SECURED,
)
def slide_tiles(
    request: Request,
    cohort: str = CohortParam,
    slide_id: str = SlideParam,
    offset: int = OffsetParam,
    limit: int | None = LimitParam,
) -> object:
    key = caller(request)
    state = get_state(request)
    npy = wants_npy(request.headers.get("accept"))
    return read_slide(state, key, cohort, slide_id, lambda handle: _tile_page(state, handle, offset, limit, npy))


def _tile_page(state: ServeState, handle: SlideHandle, offset: int, limit: int | None, npy: bool) -> Response:
    cohort, slide_id = handle.cohort, handle.slide_id
    start, stop, limit, nxt = page_bounds(offset, limit, handle.n_tiles, state.config.limits, "tiles")
    coords = handle.coords[start:stop]
    if npy:
        headers = {
            "X-Total-Count": str(handle.n_tiles),
            "X-Offset": str(start),
            "X-Next-Offset": "" if nxt is None else str(nxt),
        }
        page = tile_records_filled(
            coords, np.dtype(handle.dtype), handle.dim, lambda out: handle.copy_features_into(start, stop, out)
        )
        return npy_response(page, headers=headers)
    features = handle.features(start, stop) if stop > start else np.zeros((0, handle.dim), dtype=handle.dtype)
    return json_response(
        {
            "cohort": cohort,
            "slide_id": slide_id,
            "offset": start,
            "limit": limit,
            "total": handle.n_tiles,
            "next_offset": nxt,
            "dim": handle.dim,
            "coords": coords,
            "features": features,
        }
    )
