"""API-key authentication as a plain ASGI middleware, before routing.

Checking the key before routing means a caller without a valid key learns nothing (not which
paths exist, not which parameters are wrong): every request outside the public paths gets a
401 first. It is also cheaper than a per-route FastAPI dependency, which matters for the small
cached answers (the slide embedding), where per-request overhead is most of the cost.
The resolved key lands in the ASGI scope: routes read it with :func:`caller`, the access log
reads its id.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import Request

from wsi_ssl.serve.access_log import KEY_ID_SCOPE, ASGIApp, Receive, Scope, Send
from wsi_ssl.serve.keys import ApiKey, KeyFileError, KeyStore

API_KEY_HEADER = "X-API-Key"
KEY_SCOPE = "wsi_ssl.key"
SECURITY_SCHEME = {
    "type": "apiKey",
    "in": "header",
    "name": API_KEY_HEADER,
    "description": "The study's API key (create one with `wsi-ssl serve-keys add`)",
}
# Route option that documents the key requirement in the OpenAPI document.
SECURED: dict[str, Any] = {"security": [{"APIKeyHeader": []}]}

log = logging.getLogger("wsi_ssl.serve")
_HEADER = API_KEY_HEADER.lower().encode()


async def _send_json(send: Send, status: int, body: dict[str, str], extra: list[tuple[bytes, bytes]]) -> None:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


class ApiKeyMiddleware:
    """401 for a missing or unknown key on every path but ``public``; else records the key."""

    def __init__(self, app: ASGIApp, keys: KeyStore, public: frozenset[str]) -> None:
        self.app = app
        self.keys = keys
        self.public = public

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.public:
            await self.app(scope, receive, send)
            return
        given = next((v.decode("latin-1") for k, v in scope.get("headers", ()) if k == _HEADER), None)
        try:
            key = self.keys.lookup(given)
        except KeyFileError as exc:
            log.error("keys file error: %s", exc)
            await _send_json(
                send,
                503,
                {"error": "unavailable", "detail": "the server's keys file is unreadable; no key can be checked"},
                [],
            )
            return
        if key is None:
            detail = f"missing API key: send it in the {API_KEY_HEADER} header" if not given else "invalid API key"
            challenge = (b"www-authenticate", f'ApiKey header="{API_KEY_HEADER}"'.encode())
            await _send_json(send, 401, {"error": "unauthorized", "detail": detail}, [challenge])
            return
        scope[KEY_SCOPE] = key
        scope[KEY_ID_SCOPE] = key.key_id
        await self.app(scope, receive, send)


def caller(request: Request) -> ApiKey:
    """The key the middleware resolved for this request."""
    return request.scope[KEY_SCOPE]  # type: ignore[no-any-return]
