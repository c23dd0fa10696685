"""Health, the caller's cohorts, and the loaded models."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from wsi_ssl import __version__
from wsi_ssl.serve.auth import SECURED, caller
from wsi_ssl.serve.deps import API_PREFIX, get_state
from wsi_ssl.serve.encoding import json_response
from wsi_ssl.serve.errors import ErrorBody
from wsi_ssl.serve.schemas import CohortList, Health, ModelList

router = APIRouter()
UNAUTHORIZED: dict[int | str, dict[str, Any]] = {401: {"model": ErrorBody, "description": "missing or invalid API key"}}


@router.get(API_PREFIX + "/health", response_model=Health, tags=["meta"], summary="Server health (no key needed)")
async def health(request: Request) -> Health:
    state = get_state(request)
    limits = state.config.limits
    return Health(
        status="ok",
        version=__version__,
        api="v1",
        encoder=state.encoder is not None,
        models=len(state.models),
        max_page_size=limits.max_page_size,
        max_tiles_per_request=limits.max_tiles_per_request,
    )


@router.get(
    API_PREFIX + "/cohorts",
    response_model=CohortList,
    responses=UNAUTHORIZED,
    tags=["slides"],
    summary="The caller's cohorts",
    openapi_extra=SECURED,
)
def cohorts(request: Request) -> object:
    key = caller(request)
    state = get_state(request)
    visible = [name for name in sorted(state.catalog.cohorts) if key.sees(name)]
    return json_response(
        {"cohorts": [{"name": name, "n_slides": len(state.catalog.slide_ids(name))} for name in visible]}
    )


@router.get(
    API_PREFIX + "/models",
    response_model=ModelList,
    responses=UNAUTHORIZED,
    tags=["models"],
    summary="Loaded slide-level models",
    openapi_extra=SECURED,
)
async def models(request: Request) -> object:
    state = get_state(request)
    return json_response(
        {"models": [{"name": name, "meta": model.meta} for name, model in sorted(state.models.items())]}
    )
