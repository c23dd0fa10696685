"""ASGI middleware that bounds what one request may cost, and turns every surprise into a plain 500.

``BodyLimitMiddleware`` counts request body bytes as they stream in, so a chunked upload (no
``Content-Length``) is stopped at the limit just like a declared one; a declared length over
the limit is refused before any byte is read. The limit is per endpoint: the upload endpoint
takes ``max_request_bytes`` of multipart, every other body (a predict body is a model name)
``max_json_bytes``, because parsing and validating a large JSON body holds the event loop and
so every other client (a 12 MB body of a million keys took 9 s).

``ErrorGuardMiddleware`` answers an exception that nothing else handled with a short 500 and
one log line, and does not let it reach the server (which would log a long traceback and
drop the connection).
"""

from __future__ import annotations

import json
import logging
import traceback

from wsi_ssl.serve.access_log import ASGIApp, Message, Receive, Scope, Send
from wsi_ssl.serve.errors import INTERNAL_ERROR_DETAIL, BodyTooLarge

log = logging.getLogger("wsi_ssl.serve")


async def send_json(send: Send, status: int, body: dict[str, str], extra: tuple[tuple[bytes, bytes], ...] = ()) -> None:
    """A complete JSON response sent straight through ASGI (used before or outside routing)."""
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


class BodyLimitMiddleware:
    """413 for a body over its endpoint's limit, whether declared in Content-Length or streamed."""

    def __init__(self, app: ASGIApp, upload_paths: frozenset[str], max_upload_bytes: int, max_json_bytes: int) -> None:
        self.app = app
        self.upload_paths = upload_paths
        self.max_upload_bytes = max_upload_bytes
        self.max_json_bytes = max_json_bytes

    def limit_for(self, path: str) -> int:
        return self.max_upload_bytes if path in self.upload_paths else self.max_json_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        chunked = False
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and (not value.isdigit() or int(value) > limit):
                size = f"{int(value)} bytes" if value.isdigit() else "of an invalid length"
                await send_json(send, 413, _too_large(f"request body is {size}; the limit is {limit} bytes"))
                return
            if name == b"transfer-encoding":
                chunked = True
        if not chunked:
            # The server delivers no more body than Content-Length declares (checked above), and
            # none without it: only a chunked body needs counting, so the common request pays nothing.
            await self.app(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(f"request body is more than {limit} bytes; the limit is {limit} bytes")
            return message

        try:
            await self.app(scope, counting_receive, send)
        except BodyTooLarge as exc:
            # Raised from receive() inside code that does not turn it into a 413 itself.
            await send_unless_started(send, 413, _too_large(exc.detail))


def _too_large(detail: str) -> dict[str, str]:
    return {"error": "too_large", "detail": detail}


class ErrorGuardMiddleware:
    """A short 500 and one log line for any exception no handler took; the connection stays up."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except Exception as exc:  # noqa: BLE001 - this is the last line of defence, by design
            if scope["type"] != "http":
                raise
            log.error(one_line(exc, scope))
            await send_unless_started(send, 500, {"error": "internal_error", "detail": INTERNAL_ERROR_DETAIL})


async def send_unless_started(send: Send, status: int, body: dict[str, str]) -> None:
    """Send an error response, unless one has started (then the server closes the connection).

    Asking the server beats wrapping ``send`` on every request to track it: that would cost
    each request a closure call per message, for the rare request that fails.
    """
    try:
        await send_json(send, status, body)
    except Exception:  # noqa: BLE001 - "response already started": nothing more can be said
        pass


def one_line(exc: BaseException, scope: Scope) -> str:
    """``unhandled RuntimeError on GET /path at file.py:12 in func: message`` (path capped)."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno} in {frames[-1].name}" if frames else ""
    path = str(scope.get("path", ""))[:200]
    message = " ".join(str(exc).split())[:500]
    return f"unhandled {type(exc).__name__} on {scope.get('method')} {path}{where}: {message}"
