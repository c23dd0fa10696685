"""The API's routers, one module per group of endpoints; each route carries the ``/v1`` prefix in full."""

from __future__ import annotations

from fastapi import APIRouter

from wsi_ssl.serve.routes import compute, meta, slides

ROUTERS: tuple[APIRouter, ...] = (meta.router, slides.router, compute.router)
