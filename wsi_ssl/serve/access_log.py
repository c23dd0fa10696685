"""The access log: one JSON line per request (time, key id, endpoint, cohort, slide, status).

Written by a plain ASGI middleware (no per-request Request objects, so it costs microseconds)
that reads what routing and authentication left in the ASGI scope. The key itself is never
written, only the key id that the auth dependency resolved it to; a request whose key was
missing or wrong is logged with ``key_id: null``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable, MutableMapping, TextIO

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Where the auth dependency leaves the resolved key id for this middleware to pick up.
KEY_ID_SCOPE = "wsi_ssl.key_id"

log = logging.getLogger("wsi_ssl.serve.access")


class AccessLog:
    """Appends JSON lines to a file (or to the ``wsi_ssl.serve.access`` logger when no file)."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path else None
        self._lock = threading.Lock()
        self._file: TextIO | None = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8", buffering=1)

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, separators=(",", ":"))
        if self._file is None:
            log.info(line)
            return
        with self._lock:
            self._file.write(line + "\n")

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


class AccessLogMiddleware:
    """Logs every HTTP request after its response started (or it failed), whatever the outcome."""

    def __init__(self, app: ASGIApp, access_log: AccessLog) -> None:
        self.app = app
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.access_log.write(_record(scope, status, time.perf_counter() - started))


def _record(scope: Scope, status: int, seconds: float) -> dict[str, Any]:
    route = scope.get("route")
    params = scope.get("path_params") or {}
    return {
        "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
        "key_id": scope.get(KEY_ID_SCOPE),
        "method": scope.get("method"),
        "endpoint": getattr(route, "path", None) or scope.get("path"),
        "cohort": params.get("cohort"),
        "slide": params.get("slide_id"),
        "status": status,
        "ms": round(seconds * 1000, 2),
    }
