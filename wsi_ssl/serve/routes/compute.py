"""Endpoints that run a model: embed uploaded tiles, predict with a MIL model on a cached slide."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, File, Request, UploadFile
from starlette.concurrency import run_in_threadpool

from wsi_ssl.serve.auth import SECURED, caller
from wsi_ssl.serve.catalog import SlideHandle
from wsi_ssl.serve.deps import API_PREFIX, ServeState, get_state, read_slide
from wsi_ssl.serve.encoding import NPY_MEDIA, json_response, npy_response, wants_npy
from wsi_ssl.serve.errors import ApiError, ErrorBody
from wsi_ssl.serve.keys import ApiKey
from wsi_ssl.serve.models import ModelInputError
from wsi_ssl.serve.routes.slides import CohortParam, SlideParam
from wsi_ssl.serve.schemas import Prediction, PredictRequest, TileEmbeddings
from wsi_ssl.serve.tile_encoder import decode_tile, release_memory, tile_pixels

router = APIRouter()


def _errors(extra: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses an endpoint can answer with."""
    base = {401: "missing or invalid API key", 422: "a malformed request", **extra}
    return {status: {"model": ErrorBody, "description": text} for status, text in sorted(base.items())}


@router.post(
    API_PREFIX + "/embed",
    response_model=TileEmbeddings,
    responses={
        **_errors(
            {
                400: "an empty or damaged image, or too many tiles",
                406: "the Accept header allows no offered type",
                413: "a request body, an image or the request's pixels in all over their limit",
                415: "a file that is not a PNG or JPEG image",
                503: "no encoder is loaded on this server",
            }
        ),
        200: {
            "description": f"embeddings [n, D] in upload order: JSON, or with `Accept: {NPY_MEDIA}` a float32 .npy array",
            "content": {NPY_MEDIA: {"schema": {"type": "string", "format": "binary"}}},
        },
    },
    tags=["embed"],
    summary="Embed uploaded PNG/JPEG tiles with the server's encoder",
    openapi_extra=SECURED,
)
def embed_tiles(
    request: Request,
    files: list[UploadFile] = File(description="PNG or JPEG tiles, one per part, all named 'files'"),
) -> object:
    # Any valid key may embed tiles (no cohort data is read); the middleware has checked it.
    state = get_state(request)
    npy = wants_npy(request.headers.get("accept"))
    if state.encoder is None:
        raise ApiError(503, "no encoder is loaded on this server (set 'encoder' in the serve config)")
    limits = state.config.limits
    if len(files) > limits.max_tiles_per_request:
        raise ApiError(400, f"{len(files)} tiles in one request; the limit is {limits.max_tiles_per_request}")
    tile_limits = state.encoder.limits(limits.max_image_bytes, limits.max_image_pixels, limits.max_image_scale)
    names = [upload.filename or f"files[{i}]" for i, upload in enumerate(files)]
    blobs = [upload.file.read(limits.max_image_bytes + 1) for upload in files]
    # Every header is checked before any image is decoded: a refused request decodes nothing.
    pixels = sum(tile_pixels(data, name, tile_limits) for data, name in zip(blobs, names))
    if pixels > limits.max_request_pixels:
        raise ApiError(
            413,
            f"the {len(blobs)} images are {pixels} pixels in all; the limit is {limits.max_request_pixels} "
            "pixels per request",
        )
    try:
        decoded = (decode_tile(data, name, tile_limits) for data, name in zip(blobs, names))
        embeddings = state.encoder.embed_stream(decoded, len(blobs))
    finally:
        del blobs
        release_memory()
    if npy:
        return npy_response(embeddings)
    cfg = state.encoder.config
    return json_response(
        {
            "encoder": state.encoder.name,
            "encoder_sha256": cfg.sha256,
            "dim": int(embeddings.shape[1]),
            "files": names,
            "embeddings": embeddings,
        }
    )


def _predict(state: ServeState, key: ApiKey, cohort: str, slide_id: str, model_name: str) -> dict[str, Any]:
    def run(handle: SlideHandle) -> dict[str, Any]:
        model = state.models.get(model_name)
        if model is None:
            loaded = ", ".join(sorted(state.models)) or "none"
            raise ApiError(422, f"model {model_name!r} is not loaded on this server (loaded: {loaded})")
        if handle.n_tiles == 0:
            raise ApiError(409, f"slide {slide_id!r} has no tiles to predict on")
        try:
            return handle.derived(  # type: ignore[no-any-return]
                f"predict:{model_name}",
                lambda h: model.predict(h.features(0, h.n_tiles), h.attrs.get("encoder_sha256") or None),
            )
        except ModelInputError as exc:
            raise ApiError(409, str(exc)) from None

    outputs = read_slide(state, key, cohort, slide_id, run)
    return {"cohort": cohort, "slide_id": slide_id, "model": model_name, "outputs": outputs}


@router.post(
    API_PREFIX + "/cohorts/{cohort}/slides/{slide_id}/predict",
    response_model=Prediction,
    responses=_errors(
        {
            400: "a body that cannot be parsed as JSON",
            404: "no such slide (or not visible to this key)",
            409: "the slide's features do not fit the model (dimension, encoder, no tiles)",
            413: "a body over the limit for JSON bodies (a predict body is a model name)",
            503: "the slide's feature file is being written: retry after Retry-After",
        }
    ),
    tags=["models"],
    summary="Predict with a loaded MIL model on a cached slide",
    openapi_extra=SECURED,
)
async def predict(
    request: Request,
    cohort: str = CohortParam,
    slide_id: str = SlideParam,
    body: PredictRequest = Body(),
) -> object:
    key = caller(request)
    state = get_state(request)
    result = await run_in_threadpool(_predict, state, key, cohort, slide_id, body.model)
    return json_response(result)
