"""What routes share: the server's state object and the API-key dependency."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request, Security
from fastapi.security import APIKeyHeader

from wsi_ssl.serve.access_log import KEY_ID_SCOPE
from wsi_ssl.serve.catalog import Catalog, SlideHandle, SlideNotFound
from wsi_ssl.serve.config import ServeConfig
from wsi_ssl.serve.errors import ApiError
from wsi_ssl.serve.keys import ApiKey, KeyStore
from wsi_ssl.serve.models import SlideModel
from wsi_ssl.serve.tile_encoder import TileEncoder

API_PREFIX = "/v1"  # bump for an incompatible change; routes carry it in full so logs show it
API_KEY_HEADER = "X-API-Key"
_key_header = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    description="The study's API key (create one with `wsi-ssl serve-keys add`)",
)


@dataclass
class ServeState:
    """Everything a request may need, built once by the app factory."""

    config: ServeConfig
    catalog: Catalog
    keys: KeyStore
    encoder: TileEncoder | None = None
    models: dict[str, SlideModel] = field(default_factory=dict)

    def embedding_model(self) -> SlideModel | None:
        """The model whose ``embedding`` output is the slide's aggregator embedding, if any."""
        if self.config.embedding_model is not None:
            return self.models[self.config.embedding_model]
        for model in self.models.values():
            if "embedding" in (model.meta.get("outputs") or {}):
                return model
        return None


def get_state(request: Request) -> ServeState:
    return request.app.state.serve  # type: ignore[no-any-return]


async def require_key(request: Request, key: str | None = Security(_key_header)) -> ApiKey:
    """The caller's key record; 401 for a missing or unknown key. Records the key id for the access log."""
    found = get_state(request).keys.lookup(key)
    if found is None:
        detail = f"missing API key: send it in the {API_KEY_HEADER} header" if not key else "invalid API key"
        raise ApiError(401, detail, headers={"WWW-Authenticate": f'ApiKey header="{API_KEY_HEADER}"'})
    request.scope[KEY_ID_SCOPE] = found.key_id
    return found


def open_slide(state: ServeState, key: ApiKey, cohort: str, slide_id: str) -> SlideHandle:
    """The slide's handle if the key may see it; a slide outside the key's cohorts is 'not found'."""
    if not key.sees(cohort):
        raise SlideNotFound(slide_id)
    return state.catalog.open(cohort, slide_id)


def visible_cohort(state: ServeState, key: ApiKey, cohort: str) -> str:
    if cohort not in state.catalog.cohorts or not key.sees(cohort):
        raise ApiError(404, f"cohort {cohort!r} not found")
    return cohort
