"""The access log: one JSON line per request (time, key id, endpoint, cohort, slide, status).

Written by a plain ASGI middleware (no per-request Request objects, so it costs microseconds)
that reads what routing and authentication left in the ASGI scope. Records go through a queue
to one writer thread, so no request waits on the disk. The writer wakes at most every
``FLUSH_INTERVAL_S`` and writes and flushes everything queued meanwhile (so a line reaches the
file within ~50 ms, and under load the writer takes the GIL 20 times a second rather than once
per request); ``close`` drains the queue before returning. The key itself is never
written, only the key id that the auth middleware resolved it to; a request whose key was
missing or wrong is logged with ``key_id: null``.

The log is bounded, because anyone who can reach the port can write to it: the file is
created owner-only (mode 600, like the keys file: it says which study read what), every
string field is cut to ``MAX_FIELD_CHARS`` (a 100 KB path sent without a key is logged as
its first 256 characters and its length), and the file is rotated by size
(``access_log_max_bytes``, keeping ``access_log_backups`` old files as ``.1`` .. ``.N``).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple, TextIO

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

FLUSH_INTERVAL_S = 0.05
MAX_FIELD_CHARS = 256

# Where the auth middleware leaves the resolved key id for this middleware to pick up.
KEY_ID_SCOPE = "wsi_ssl.key_id"

log = logging.getLogger("wsi_ssl.serve.access")


class RequestRecord(NamedTuple):
    """One request as the middleware saw it; turned into a JSON line by the writer thread."""

    time: float  # seconds since the epoch
    key_id: str | None
    method: str | None
    endpoint: str | None
    cohort: str | None
    slide: str | None
    status: int
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {
            "time": datetime.fromtimestamp(self.time, timezone.utc).isoformat(timespec="milliseconds"),
            "key_id": cap(self.key_id),
            "method": cap(self.method),
            "endpoint": cap(self.endpoint),
            "cohort": cap(self.cohort),
            "slide": cap(self.slide),
            "status": self.status,
            "ms": round(self.seconds * 1000, 2),
        }


def cap(value: Any) -> Any:
    """A string field cut to MAX_FIELD_CHARS, saying how long it was; other values unchanged."""
    if isinstance(value, str) and len(value) > MAX_FIELD_CHARS:
        return f"{value[:MAX_FIELD_CHARS]}...(truncated, {len(value)} chars)"
    return value


def _open_private(path: Path) -> TextIO:
    """Open for appending, creating the file owner-only (and tightening an existing one)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.fchmod(fd, 0o600)
    except OSError:  # not ours to change; it was created by someone else
        pass
    return os.fdopen(fd, "a", encoding="utf-8")


class AccessLog:
    """Appends JSON lines to a file (or to the ``wsi_ssl.serve.access`` logger when no file)."""

    def __init__(self, path: str | Path | None, max_bytes: int = 50 * 1024 * 1024, backups: int = 5) -> None:
        self.path = Path(path) if path else None
        self.max_bytes = max_bytes
        self.backups = backups
        self._queue: queue.SimpleQueue[RequestRecord | dict[str, Any] | threading.Event | None] = queue.SimpleQueue()
        self._file: TextIO | None = None
        self._size = 0
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = _open_private(self.path)
            self._size = self._file.tell()
        self._thread = threading.Thread(target=self._run, name="wsi-ssl-access-log", daemon=True)
        self._thread.start()

    def write(self, record: RequestRecord | dict[str, Any]) -> None:
        """Queue one record; returns at once (formatting happens in the writer thread)."""
        self._queue.put(record)

    def sync(self, timeout: float = 10.0) -> None:
        """Wait until every record queued so far is in the file."""
        done = threading.Event()
        self._queue.put(done)
        done.wait(timeout)

    def close(self) -> None:
        """Write what is queued, then stop the writer and close the file."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=10)

    def _run(self) -> None:
        stop = False
        while not stop:
            batch = [self._queue.get()]
            if batch[0] is not None:
                time.sleep(FLUSH_INTERVAL_S)  # let a batch gather
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            lines = []
            events = []
            for item in batch:
                if item is None:
                    stop = True
                elif isinstance(item, threading.Event):
                    events.append(item)
                else:
                    record = item.to_json() if isinstance(item, RequestRecord) else item
                    lines.append(json.dumps(record, separators=(",", ":")))
            self._emit(lines)
            for event in events:
                event.set()
        if self._file is not None:
            self._file.close()

    def _emit(self, lines: list[str]) -> None:
        if not lines:
            return
        if self._file is None:
            for line in lines:
                log.info(line)
            return
        try:
            chunk: list[str] = []
            for line in lines:
                n = len(line) + 1  # json.dumps writes ASCII: characters are bytes
                if self._size + n > self.max_bytes and self._size > 0:
                    self._write(chunk)
                    chunk = []
                    self._rotate()
                chunk.append(line)
                self._size += n
            self._write(chunk)
        except OSError as exc:  # a full disk must not take the server down; say so in the server log
            log.error("cannot write the access log %s: %s", self.path, exc)

    def _write(self, lines: list[str]) -> None:
        if lines and self._file is not None:
            self._file.write("\n".join(lines) + "\n")
            self._file.flush()

    def _rotate(self) -> None:
        """access.log -> access.log.1 -> ... -> access.log.N (the oldest dropped), then a new file."""
        assert self.path is not None and self._file is not None
        self._file.close()
        if self.backups > 0:
            for i in range(self.backups - 1, 0, -1):
                older = self.path.with_name(f"{self.path.name}.{i}")
                if older.exists():
                    os.replace(older, self.path.with_name(f"{self.path.name}.{i + 1}"))
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        else:
            self.path.unlink(missing_ok=True)
        self._file = _open_private(self.path)
        self._size = 0


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


def _record(scope: Scope, status: int, seconds: float) -> RequestRecord:
    route = scope.get("route")
    params = scope.get("path_params") or {}
    return RequestRecord(
        time.time(),
        scope.get(KEY_ID_SCOPE),
        scope.get("method"),
        getattr(route, "path", None) or scope.get("path"),
        params.get("cohort"),
        params.get("slide_id"),
        status,
        seconds,
    )
