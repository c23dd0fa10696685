"""One JSON error shape for every failure, so clients and the fuzz test can rely on it.

Every 4xx names the problem (which parameter, which limit, which file) in ``detail``; ``error``
is a stable machine-readable code. Unexpected exceptions become a 500 with a generic message
and one line in the server log (``guards.ErrorGuardMiddleware``); the caller never sees a
traceback or a server path. A feature file that is being rewritten is a 503 with
``Retry-After``: the server is fine, the file is busy.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from wsi_ssl.serve.catalog import FeatureFileBusy, SlideNotFound
from wsi_ssl.stores.features import FeatureFileError

log = logging.getLogger("wsi_ssl.serve")
INTERNAL_ERROR_DETAIL = "internal server error; the server log has the details"
RETRY_AFTER_S = 1

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    503: "unavailable",
}


class ErrorBody(BaseModel):
    """The body of every error response."""

    error: str
    detail: str


class ApiError(Exception):
    """Raised by route code to answer with ``status`` and a message naming the problem."""

    def __init__(
        self, status: int, detail: str, code: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.code = code or _STATUS_CODES.get(status, "error")
        self.headers = headers


class BodyTooLarge(StarletteHTTPException):
    """Raised while a body streams in past its limit; an HTTPException so FastAPI's body parsing
    passes it on (it turns other errors into a 400) and it is answered as a 413."""

    def __init__(self, detail: str) -> None:
        super().__init__(413, detail)


def not_found(what: str) -> ApiError:
    return ApiError(404, f"{what} not found", "not_found")


def error_response(status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status, headers=headers)


def _describe_validation(errors: list[dict[str, Any]]) -> str:
    parts = []
    for err in errors[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ())) or "request"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return "; ".join(parts) + more


def install_error_handlers(app: FastAPI) -> None:
    """Route every exception type the server can meet to the one error shape."""

    async def api_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return error_response(exc.status, exc.code, exc.detail, exc.headers)

    async def validation_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return error_response(422, "invalid_request", _describe_validation(list(exc.errors())))

    async def http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = _STATUS_CODES.get(exc.status_code, "error")
        return error_response(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))

    async def slide_not_found(_: Request, exc: Exception) -> JSONResponse:
        return error_response(404, "not_found", f"slide {exc.args[0]!r} not found")

    async def bad_feature_file(_: Request, exc: Exception) -> JSONResponse:
        log.error("feature file error: %s", exc)
        return error_response(
            500, "unreadable_feature_file", "the slide's feature file cannot be read; the server log names it"
        )

    async def busy_feature_file(_: Request, exc: Exception) -> JSONResponse:
        log.warning("%s", exc)
        return error_response(
            503,
            "unavailable",
            f"slide {exc.args[0]!r}: its feature file is being written; retry in {RETRY_AFTER_S} s",
            {"Retry-After": str(RETRY_AFTER_S)},
        )

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(SlideNotFound, slide_not_found)
    app.add_exception_handler(FeatureFileBusy, busy_feature_file)
    app.add_exception_handler(FeatureFileError, bad_feature_file)
