"""The FastAPI app factory: builds the server's state from a config and wires routes and middleware.

Everything expensive (encoder, models) is loaded here, once, before the first request; a bad
model or encoder path fails at startup with a message naming it, not on a user's request.
"""

from __future__ import annotations

import gc
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from wsi_ssl import __version__
from wsi_ssl.serve.access_log import AccessLog, AccessLogMiddleware
from wsi_ssl.serve.auth import SECURITY_SCHEME, ApiKeyMiddleware
from wsi_ssl.serve.catalog import Catalog
from wsi_ssl.serve.config import ServeConfig
from wsi_ssl.serve.deps import API_PREFIX, ServeState
from wsi_ssl.serve.errors import install_error_handlers
from wsi_ssl.serve.fast_routes import install_fast_routes
from wsi_ssl.serve.guards import BodyLimitMiddleware, ErrorGuardMiddleware
from wsi_ssl.serve.keys import KeyStore
from wsi_ssl.serve.models import SlideModel, load_models
from wsi_ssl.serve.routes import ROUTERS
from wsi_ssl.serve.tile_encoder import TileEncoder

OPENAPI_PATH = Path(__file__).with_name("openapi.json")
DESCRIPTION = (
    "Slide and tile embeddings of the lab's feature caches for downstream studies. "
    "Every endpoint but health needs a study's API key in the X-API-Key header; a key sees only its cohorts."
)


def build_state(config: ServeConfig) -> ServeState:
    """Load everything a config names; raises with the offending path named."""
    encoder = None
    if config.encoder is not None:
        enc = config.encoder
        encoder = TileEncoder.load(enc.path, enc.weights, device=enc.device, batch_size=enc.batch_size)
    models: dict[str, SlideModel] = load_models(dict(config.models))
    return ServeState(
        config=config,
        catalog=Catalog(dict(config.cohorts), open_files=config.open_files, mmap_features=config.mmap_features),
        keys=KeyStore(config.keys_file),
        encoder=encoder,
        models=models,
    )


def create_app(config: ServeConfig, state: ServeState | None = None) -> FastAPI:
    """The app serving ``config``; pass ``state`` to reuse already loaded encoder/models."""
    state = state or build_state(config)
    access_log = AccessLog(config.access_log, config.access_log_max_bytes, config.access_log_backups)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Everything loaded so far (torch, the encoder, models: ~400,000 objects) lives as long as
        # the server; frozen, the cyclic GC stops rescanning it, and a full collection no longer
        # stalls every request for 0.1-1 s (it did in the soak test, tests/serve/test_soak.py).
        gc.freeze()
        yield
        access_log.close()

    app = FastAPI(
        title="wsi_ssl embeddings API",
        version=__version__,
        description=DESCRIPTION,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
        lifespan=lifespan,
        # Starlette would answer "/v1/cohorts/" with a redirect to an absolute URL built from the
        # request's Host header (an open redirect behind a proxy that passes Host on); the API
        # has one spelling of each path, so a trailing slash is simply 404.
        redirect_slashes=False,
    )
    app.state.serve = state
    app.state.access_log = access_log
    install_error_handlers(app)
    # Routes go straight onto the app's router rather than through include_router: FastAPI
    # matches included routers lazily, layer by layer, which costs ~50 us per request and is
    # a third of the work for a small cached answer (see benchmarks/serve.py).
    for router in ROUTERS:
        app.router.routes.extend(router.routes)
    install_fast_routes(app)  # the slide embedding and tile pages skip FastAPI's parameter solver
    # Added innermost first: access log -> error guard -> key check -> body limit -> routes.
    limits = config.limits
    app.add_middleware(
        BodyLimitMiddleware,
        upload_paths=frozenset({f"{API_PREFIX}/embed"}),
        max_upload_bytes=limits.max_request_bytes,
        max_json_bytes=limits.max_json_bytes,
    )
    public = frozenset({f"{API_PREFIX}/health", app.openapi_url or "", app.docs_url or ""})
    app.add_middleware(ApiKeyMiddleware, keys=state.keys, public=public)
    app.add_middleware(ErrorGuardMiddleware)
    app.add_middleware(AccessLogMiddleware, access_log=access_log)
    _document_security(app)
    return app


def _document_security(app: FastAPI) -> None:
    """Declare the API-key scheme in the OpenAPI document (the middleware enforces it)."""
    base_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = base_openapi()
            schema.setdefault("components", {}).setdefault("securitySchemes", {})["APIKeyHeader"] = SECURITY_SCHEME
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def openapi_document(app: FastAPI | None = None) -> dict[str, Any]:
    """The OpenAPI document; it does not depend on the config, so any app gives the same one."""
    if app is None:
        app = create_app(ServeConfig(access_log=None, keys_file=Path("/nonexistent/keys.json")))
    return app.openapi()


def write_openapi(path: str | Path = OPENAPI_PATH) -> Path:
    """Regenerate the checked-in document (``wsi-ssl serve --write-openapi``)."""
    path = Path(path)
    path.write_text(json.dumps(openapi_document(), indent=2, sort_keys=True) + "\n")
    return path
