"""The fast routes in front of the slide-embedding and tile endpoints answer exactly as FastAPI's own.

Every request below goes to the app twice: as built (fast routes first) and with the fast routes
removed (FastAPI's routes only). Status, body and the headers a client reads must be identical,
for valid requests and for every kind of bad one the fast path hands back to FastAPI.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from wsi_ssl.serve.fast_routes import FastGetRoute

BASE = "/v1/cohorts/A/slides/a1"
REQUESTS = [
    ("GET", f"{BASE}/embedding", {}),
    ("GET", "/v1/cohorts/A/slides/a2/embedding", {}),  # no tiles
    ("GET", "/v1/cohorts/B/slides/b1/embedding", {}),  # another study's slide: 404 like a missing one
    ("GET", "/v1/cohorts/A/slides/nope/embedding", {}),
    ("GET", "/v1/cohorts/" + "c" * 129 + "/slides/a1/embedding", {}),  # name over its length limit
    ("GET", "/v1/cohorts/A/slides/" + "s" * 256 + "/embedding", {}),
    ("HEAD", f"{BASE}/embedding", {}),
    ("POST", f"{BASE}/embedding", {}),
    ("GET", f"{BASE}/tiles", {}),
    ("GET", f"{BASE}/tiles?offset=5&limit=7", {}),
    ("GET", f"{BASE}/tiles?offset=5&limit=7", {"Accept": "application/x-npy"}),
    ("GET", f"{BASE}/tiles?offset=007&limit=3&unknown=x", {}),
    ("GET", f"{BASE}/tiles?offset=37", {}),  # empty last page
    ("GET", f"{BASE}/tiles?offset=38", {}),  # past the end
    ("GET", f"{BASE}/tiles?limit=21", {}),  # over the server's page size
    ("GET", f"{BASE}/tiles?limit=0", {}),
    ("GET", f"{BASE}/tiles?limit=5001", {}),
    ("GET", f"{BASE}/tiles?offset=-1", {}),
    ("GET", f"{BASE}/tiles?offset=+3", {}),
    ("GET", f"{BASE}/tiles?offset=%203", {}),
    ("GET", f"{BASE}/tiles?offset=1.0", {}),
    ("GET", f"{BASE}/tiles?offset=abc", {}),
    ("GET", f"{BASE}/tiles?offset=", {}),
    ("GET", f"{BASE}/tiles?offset=99999999999", {}),
    ("GET", f"{BASE}/tiles?offset=1&offset=2", {}),
    ("GET", f"{BASE}/tiles?offset=%D9%A3", {}),  # a non-ASCII digit
    ("GET", f"{BASE}/tiles", {"Accept": "image/png"}),
]


def _answer(client: TestClient, method: str, path: str, headers: dict[str, str]) -> tuple[Any, ...]:
    r = client.request(method, path, headers=headers)
    kept = {k: r.headers.get(k) for k in ("content-type", "x-total-count", "x-offset", "x-next-offset", "allow")}
    return r.status_code, r.content, kept


@pytest.mark.parametrize(("method", "path", "extra"), REQUESTS)
def test_fast_routes_answer_like_fastapi(
    app: Any, keys: dict[str, Any], method: str, path: str, extra: dict[str, str]
) -> None:
    headers = {"X-API-Key": keys["A"], **extra}
    assert isinstance(app.router.routes[0], FastGetRoute)
    with TestClient(app) as client:
        fast = _answer(client, method, path, headers)
        routes = list(app.router.routes)
        app.router.routes[:] = [r for r in routes if not isinstance(r, FastGetRoute)]
        try:
            plain = _answer(client, method, path, headers)
        finally:
            app.router.routes[:] = routes
    assert fast == plain


def test_fast_routes_are_used_for_plain_requests(
    app: Any, keys: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastapi.routing import APIRoute

    calls: list[str] = []
    original = APIRoute.handle

    async def spy(self: APIRoute, scope: Any, receive: Any, send: Any) -> None:
        calls.append(self.path)
        await original(self, scope, receive, send)

    monkeypatch.setattr(APIRoute, "handle", spy)
    with TestClient(app) as client:
        headers = {"X-API-Key": keys["A"]}
        assert client.get(f"{BASE}/embedding", headers=headers).status_code == 200
        assert client.get(f"{BASE}/tiles?offset=2&limit=3", headers=headers).status_code == 200
        assert calls == []  # neither went through FastAPI's parameter solver
        assert client.get(f"{BASE}/tiles?offset=abc", headers=headers).status_code == 422
        assert calls == ["/v1/cohorts/{cohort}/slides/{slide_id}/tiles"]
