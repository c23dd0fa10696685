"""What routes share: the server's state object and the cohort-scoping rules."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from fastapi import Request

from wsi_ssl.serve.catalog import (
    READ_ERRORS,
    RETRY_DELAY_S,
    Catalog,
    FeatureFileBusy,
    SlideHandle,
    SlideNotFound,
)
from wsi_ssl.serve.config import ServeConfig
from wsi_ssl.serve.errors import ApiError
from wsi_ssl.serve.keys import ApiKey, KeyStore
from wsi_ssl.serve.models import ModelInputError, SlideModel
from wsi_ssl.serve.tile_encoder import TileEncoder

T = TypeVar("T")
API_PREFIX = "/v1"  # bump for an incompatible change; routes carry it in full so logs show it


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


def open_slide(state: ServeState, key: ApiKey, cohort: str, slide_id: str) -> SlideHandle:
    """The slide's handle if the key may see it; a slide outside the key's cohorts is 'not found'."""
    if not key.sees(cohort):
        raise SlideNotFound(slide_id)
    return state.catalog.open(cohort, slide_id)


def visible_cohort(state: ServeState, key: ApiKey, cohort: str) -> str:
    if cohort not in state.catalog.cohorts or not key.sees(cohort):
        raise ApiError(404, f"cohort {cohort!r} not found")
    return cohort


def read_slide(state: ServeState, key: ApiKey, cohort: str, slide_id: str, read: Callable[[SlideHandle], T]) -> T:
    """``read(handle)`` on the slide's current file version, retried once if the file changed.

    A read that fails, or that the file changed under (its stamp differs afterwards), is run
    once more on a freshly opened handle (a file replaced by rename needs no retry: the old
    handle read the whole old version); a second failure is FeatureFileBusy (a 503 with
    Retry-After), since a file that opened fine and then failed is being rewritten. Errors the
    read raises on purpose (ApiError, a model's input errors) pass through untouched.
    """
    handle = open_slide(state, key, cohort, slide_id)
    try:
        result = read(handle)
        if handle.read_one_version():
            return result
        problem = "the file changed while it was read"
    except (ApiError, SlideNotFound, FeatureFileBusy, ModelInputError):
        raise
    except READ_ERRORS as exc:
        problem = str(exc)
    state.catalog.forget(handle)
    time.sleep(RETRY_DELAY_S)
    handle = open_slide(state, key, cohort, slide_id)
    try:
        result = read(handle)
    except (ApiError, SlideNotFound, FeatureFileBusy, ModelInputError):
        raise
    except READ_ERRORS as exc:
        raise FeatureFileBusy(slide_id, str(exc)) from None
    if not handle.read_one_version():
        raise FeatureFileBusy(slide_id, problem)
    return result
