"""The API's routers, one module per group of endpoints, all under the ``/v1`` prefix."""

from __future__ import annotations

from fastapi import APIRouter

from wsi_ssl.serve.routes import compute, meta, slides

API_PREFIX = "/v1"


def api_router() -> APIRouter:
    router = APIRouter(prefix=API_PREFIX)
    router.include_router(meta.router)
    router.include_router(slides.router)
    router.include_router(compute.router)
    return router
